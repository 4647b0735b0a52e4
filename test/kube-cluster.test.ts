import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import { freePort } from './support/mosquitto.js';
import { until } from './support/wait.js';

/*
 * hearth on a real Kubernetes cluster (k3s, microk8s, kind ...): render the manifests with the
 * built CLI, apply them to a scratch namespace, wait until every Deployment is available, toggle
 * a plug through the api Service, delete the leading controller's pod and check that another
 * controller takes over. Runs only with KUBECONFIG set and HEARTH_KUBE_IMAGE naming a hearth
 * image the cluster can pull (README, "Running on Kubernetes": "The real-cluster test"); the
 * plug is `hearth sim wemo` from the same image, as a Deployment in the namespace.
 */
const run = promisify(execFile);
const image = process.env.HEARTH_KUBE_IMAGE;
const kubectlFound = await run('kubectl', ['version', '--client'], { timeout: 10_000 }).then(
  () => true,
  () => false,
);
const skipWhy = !process.env.KUBECONFIG
  ? 'KUBECONFIG is not set'
  : !kubectlFound
    ? 'kubectl is not on PATH'
    : !image
      ? 'HEARTH_KUBE_IMAGE is not set (a hearth image the cluster can pull, e.g. localhost:5000/hearth:dev)'
      : undefined;
if (skipWhy) console.warn(`skipping the real-cluster test: ${skipWhy}`);

const ns = `hearth-test-${Date.now().toString(36)}`;
const token = 'kube-test-token-0123456789';

const kubectl = async (...args: string[]) =>
  (await run('kubectl', ['-n', ns, ...args], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 })).stdout;

describe.skipIf(skipWhy)('hearth on a real Kubernetes cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-kube-'));
  let forward: ChildProcess | undefined;
  let url = '';

  const call = async (path: string, method = 'GET') => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: await res.text() };
  };
  const controllerLeader = async (): Promise<string | undefined> => {
    const c = JSON.parse((await call('/api/v1/cluster')).body) as {
      members: Array<{ id: string; role: string; host: string }>;
      leases: Array<{ name: string; holder: string; held: boolean }>;
    };
    const lease = c.leases.find((l) => l.name === 'controller' && l.held);
    return c.members.find((m) => m.id === lease?.holder)?.host;
  };

  beforeAll(async () => {
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      `timezone: UTC
http: { port: 8000, allow: [127.0.0.0/8, 10.0.0.0/8], token: "\${HEARTH_TOKEN}" }
storage: { postgres: { url: "\${HEARTH_PG_URL}" } }
mqtt: { url: mqtt://mosquitto:1883 }
cluster:
  leaseSeconds: 3
  kubernetes:
    namespace: ${ns}
    image: ${image}
    controlService: { type: NodePort }
switches:
  - { id: lamp, kind: wemo/v1, address: wemo-sim, port: 49153, pollSeconds: 0 }
`,
    );
    const env = { HEARTH_TOKEN: token, HEARTH_PG_PASSWORD: 'kubetest0123456789abcdef' };
    const out = join(dir, 'deploy');
    const rendered = await runCli(['kube', 'render', '--config', config, '--out', out, '--with-secrets'], {
      env,
    });
    expect(rendered.code, rendered.stderr).toBe(0);
    writeFileSync(
      join(dir, 'wemo.yaml'),
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: wemo-sim }
spec:
  selector: { matchLabels: { app: wemo-sim } }
  template:
    metadata: { labels: { app: wemo-sim } }
    spec:
      # The namespace enforces the restricted Pod Security level, as kube render labels it.
      securityContext: { runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }
      containers:
        - name: wemo
          image: ${image}
          args: [sim, wemo, --host, 0.0.0.0, --port, '49153']
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: { drop: [ALL] }
---
apiVersion: v1
kind: Service
metadata: { name: wemo-sim }
spec:
  selector: { app: wemo-sim }
  ports: [{ port: 49153, targetPort: 49153 }]
`,
    );
    // secret.yaml is not in the kustomization (it is git-ignored): it goes in first, on its own.
    await run('kubectl', ['apply', '-f', join(out, 'namespace.yaml'), '-f', join(out, 'secret.yaml')], {
      timeout: 120_000,
    });
    await run('kubectl', ['apply', '-k', out], { timeout: 120_000 });
    await kubectl('apply', '-f', join(dir, 'wemo.yaml'));
    await kubectl('wait', '--for=condition=available', 'deployment', '--all', '--timeout=600s');
    const port = await freePort();
    forward = spawn('kubectl', ['-n', ns, 'port-forward', 'svc/hearth-control', `${port}:8000`], {
      stdio: 'ignore',
    });
    url = `http://127.0.0.1:${port}`;
    await until(async () => (await call('/readyz')).status === 200, {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: 'the api Service to answer /readyz',
    });
  }, 900_000);

  afterAll(async () => {
    forward?.kill();
    await run('kubectl', ['delete', 'namespace', ns, '--wait=false'], { timeout: 60_000 }).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('the namespace enforces the restricted Pod Security level, which every hearth pod passes', async () => {
    const labels = JSON.parse(await kubectl('get', 'namespace', ns, '-o', 'json')).metadata.labels;
    expect(labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const pods = JSON.parse(await kubectl('get', 'pods', '-o', 'json')).items as Array<{
      metadata: { name: string };
      status: { phase: string };
    }>;
    expect(pods.filter((p) => p.status.phase !== 'Running').map((p) => p.metadata.name)).toEqual([]);
  });

  it('toggles the plug through the api Service, and again after the leading controller pod is deleted', async () => {
    expect((await call('/api/v0/switches/lamp/toggle/', 'POST')).status).toBe(200);
    const leader = await controllerLeader();
    expect(leader, 'a controller leads').toBeDefined();
    await kubectl('delete', 'pod', leader as string, '--wait=false');
    const next = await until(
      async () => {
        const now = await controllerLeader();
        return now !== leader && now;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: `a controller other than ${leader} to lead` },
    );
    expect(next).not.toBe(leader);
    expect((await call('/api/v0/switches/lamp/toggle/', 'POST')).status).toBe(200);
  }, 120_000);
});
