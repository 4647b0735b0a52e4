/**
 * `hearth kube render`: the manifests of examples/cluster.yaml against committed golden files
 * (UPDATE_GOLDEN=1 rewrites them), determinism, secrets kept out, `--check`, config errors at
 * their line, and validation against the Kubernetes schemas.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { EndpointSlice } from 'kubernetes-models/discovery.k8s.io/v1/EndpointSlice';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigError } from '../src/config/errors.js';
import { durationPattern, PodMonitor, ServiceMonitor } from '../src/kube/monitoring.js';
import { podSecurityLevel, restrictedViolations } from '../src/kube/pod-security.js';
import { checkRendered, KubeRenderError, renderKube, serialise, writeRendered } from '../src/kube/render.js';
import { repoRoot, runCli } from './support/cli-run.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { until } from './support/wait.js';

const example = join(repoRoot, 'examples', 'cluster.yaml');
const golden = join(repoRoot, 'test', 'golden', 'kube');
/** The example with scheduled backups on an NFS export: its controller Deployment and ConfigMap. */
const goldenBackups = join(repoRoot, 'test', 'golden', 'kube-backups');
/** The example's broker: in the cluster, with Home Assistant's and zigbee2mqtt's users, on a LoadBalancer. */
const exampleMqtt =
  'mqtt: { inCluster: true, clients: [homeassistant, zigbee2mqtt], expose: { type: LoadBalancer } }';
const backupBlock: [string, string] = [
  'mqtt:\n  url:',
  'backup:\n  # nightly, kept a fortnight\n  every: "0 3 * * *"\n  keep: 14\nmqtt:\n  url:',
];
const nfsVolume: [string, string] = [
  `    ${exampleMqtt}\n`,
  `    ${exampleMqtt}\n    backups: { nfs: { server: nas.home.lan, path: /volume1/hearth } }\n`,
];
const exampleText = readFileSync(example, 'utf8');
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hearth-kube-'));
  dirs.push(dir);
  return dir;
}

/** A copy of the example with some text replaced, as cluster.yaml in a fresh folder. */
function configWith(replacements: Array<[string, string]> = []): string {
  let text = exampleText;
  for (const [from, to] of replacements) {
    expect(text).toContain(from);
    text = text.replace(from, to);
  }
  const file = join(tempDir(), 'cluster.yaml');
  writeFileSync(file, text);
  return file;
}

function lineOf(text: string, needle: string): number {
  const index = text.indexOf(needle);
  expect(index).toBeGreaterThanOrEqual(0);
  return text.slice(0, index).split('\n').length;
}

function renderError(file: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    renderKube(file, { env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('rendered without an error');
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The Secrets of a secret.yaml: name → stringData. */
function secretsIn(file: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const s = doc.toJS() as { metadata: { name: string }; stringData: Record<string, string> };
    out.set(s.metadata.name, s.stringData);
  }
  return out;
}

describe('hearth kube render', () => {
  it('renders examples/cluster.yaml to the golden files (UPDATE_GOLDEN=1 rewrites them)', () => {
    const files = renderKube(example, { env: {} });
    if (process.env.UPDATE_GOLDEN === '1') {
      rmSync(golden, { recursive: true, force: true });
      mkdirSync(golden, { recursive: true });
      for (const [name, text] of files) writeFileSync(join(golden, name), text);
    }
    expect(readdirSync(golden).sort()).toEqual([...files.keys()].sort());
    for (const [name, text] of files) expect(text, name).toBe(readFileSync(join(golden, name), 'utf8'));
  });

  it('renders what the brief asks for: roles, the serial agent on its node, services, policies, backends', () => {
    const files = renderKube(example, { env: {} });
    const doc = (name: string) => parse(files.get(name) as string);
    const kitchen = doc('deployment-hearth-agent-kitchen.yaml');
    expect(kitchen.spec.replicas).toBe(1);
    expect(kitchen.spec.strategy).toEqual({ type: 'Recreate' });
    const pod = kitchen.spec.template.spec;
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/hostname': 'pi-kitchen' });
    expect(pod.securityContext.supplementalGroups).toEqual([20]);
    // The coffee pot's port comes from the device plugin: no hostPath, no privilege.
    expect(pod.containers[0].resources.limits['squat.ai/serial']).toBe('1');
    expect(JSON.stringify(pod)).not.toContain('hostPath');
    expect(pod.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    // The image's entrypoint (tini, node /app/bin/hearth.js) runs these.
    expect(pod.containers[0].command).toBeUndefined();
    expect(pod.containers[0].args).toEqual([
      'start',
      '--role',
      'agent',
      '--agent',
      'kitchen',
      '--config',
      '/etc/hearth/hearth.yaml',
    ]);
    const main = doc('deployment-hearth-agent-main.yaml');
    expect(main.spec.replicas).toBe(2);
    expect(main.spec.template.spec.nodeSelector).toBeUndefined();
    const api = doc('deployment-hearth-api.yaml');
    expect(api.spec.replicas).toBe(2);
    const apiPod = api.spec.template.spec;
    expect(apiPod.topologySpreadConstraints[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(apiPod.automountServiceAccountToken).toBe(false);
    expect(apiPod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // The pods run as the image's own user (the Dockerfile's USER), so its volume is theirs.
    const user = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8').match(/^USER (\d+):(\d+)$/m);
    expect(user, 'USER uid:gid in the Dockerfile').not.toBeNull();
    expect(apiPod.securityContext.runAsUser).toBe(Number(user?.[1]));
    expect(apiPod.securityContext.runAsGroup).toBe(Number(user?.[2]));
    expect(apiPod.tolerations).toContainEqual({
      key: 'node.kubernetes.io/unreachable',
      operator: 'Exists',
      effect: 'NoExecute',
      tolerationSeconds: 30,
    });
    const container = apiPod.containers[0];
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.ports).toEqual([
      { name: 'http', containerPort: 8000, protocol: 'TCP' },
      { name: 'public', containerPort: 8080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9464, protocol: 'TCP' },
    ]);
    expect(doc('service-hearth-control.yaml').spec).toMatchObject({
      type: 'NodePort',
      ports: [{ nodePort: 30800 }],
    });
    expect(doc('ingress-hearth-public.yaml').spec.rules[0].http.paths[0].backend.service.name).toBe(
      'hearth-public',
    );
    expect(doc('poddisruptionbudget-hearth-api.yaml').spec.minAvailable).toBe(1);
    // Every agent has its budget: two replicas keep one; a pinned one may be drained.
    expect(doc('poddisruptionbudget-hearth-agent-main.yaml').spec).toEqual({
      minAvailable: 1,
      selector: {
        matchLabels: { 'app.kubernetes.io/name': 'hearth', 'app.kubernetes.io/component': 'agent-main' },
      },
    });
    expect(doc('poddisruptionbudget-hearth-agent-kitchen.yaml').spec.maxUnavailable).toBe(1);
    // No floating tag on the backends: a full version.
    for (const name of ['statefulset-postgres.yaml', 'statefulset-mosquitto.yaml']) {
      const spec = doc(name).spec.template.spec;
      for (const c of [...(spec.initContainers ?? []), ...spec.containers])
        expect(c.image, `${name}: ${c.name}`).toMatch(/^[a-z-]+:\d+\.\d+(\.\d+)?(-alpine)?$/);
    }
    expect(doc('statefulset-mosquitto.yaml').metadata.labels['app.kubernetes.io/component']).toBe('broker');
    const control = doc('networkpolicy-hearth-control.yaml').spec.ingress[0];
    expect(control.from).toContainEqual({ ipBlock: { cidr: '192.168.1.0/24' } });
    expect(control.ports).toEqual([{ protocol: 'TCP', port: 8000 }]);
    const config = doc('configmap-hearth-config.yaml').data['hearth.yaml'] as string;
    expect(config).toContain(`url: "postgres://hearth:\${HEARTH_PG_PASSWORD}@postgres:5432/hearth"`);
    expect(config).toContain('url: "mqtt://mosquitto:1883"');
    const kustomization = doc('kustomization.yaml');
    expect(kustomization.resources).toContain('statefulset-postgres.yaml');
    expect(kustomization.resources).not.toContain('secret.example.yaml');
    expect(kustomization.resources).not.toContain('secret.yaml');
  });

  it('renders an external PostgreSQL and Mosquitto as Services without selector plus EndpointSlices', () => {
    const file = configWith([
      ['postgres: { inCluster: true }', 'postgres: { external: { host: 192.168.1.5, port: 5433 } }'],
      [exampleMqtt, 'mqtt: { external: { host: 192.168.1.5 } }'],
    ]);
    const files = renderKube(file, { env: {} });
    expect([...files.keys()].filter((f) => /statefulset/.test(f))).toEqual([]);
    const slice = parse(files.get('endpointslice-postgres-external.yaml') as string);
    expect(slice.metadata.labels['kubernetes.io/service-name']).toBe('postgres');
    expect(slice.endpoints).toEqual([{ addresses: ['192.168.1.5'], conditions: { ready: true } }]);
    expect(slice.ports).toEqual([{ name: 'postgres', port: 5433, protocol: 'TCP' }]);
    const svc = parse(files.get('service-mosquitto.yaml') as string);
    expect(svc.spec.selector).toBeUndefined();
    expect(svc.spec.ports).toEqual([{ name: 'mosquitto', port: 1883, targetPort: 1883, protocol: 'TCP' }]);
  });

  it('is deterministic: the same config gives the same bytes, whatever secrets the environment holds', () => {
    const a = renderKube(example, { env: {} });
    const b = renderKube(example, { env: {} });
    const c = renderKube(example, { env: { HEARTH_TOKEN: 'another-secret-value-456', MQTT_PASSWORD: 'x' } });
    expect([...b.entries()]).toEqual([...a.entries()]);
    expect([...c.entries()]).toEqual([...a.entries()]);
  });

  it('every rendered object validates against the Kubernetes schema; an invalid one is a clear error', () => {
    const classes: Record<string, new (data: never) => { validate(): void }> = {
      ConfigMap,
      Deployment,
      EndpointSlice,
      Ingress,
      Namespace,
      NetworkPolicy,
      PodDisruptionBudget,
      Secret,
      Service,
      ServiceAccount,
      StatefulSet,
      // No kubernetes-models type: src/kube/monitoring.ts checks them as the CRD does.
      PodMonitor,
      ServiceMonitor,
    };
    const file = configWith([
      [exampleMqtt, 'mqtt: { external: { host: 192.168.1.5 } }'],
      ['monitoring: { kind: PodMonitor', 'monitoring: { kind: ServiceMonitor'],
    ]);
    const kinds = new Set<string>();
    const backups = configWith([backupBlock, nfsVolume]);
    const claim = configWith([
      backupBlock,
      [`${exampleMqtt}\n`, `${exampleMqtt}\n    backups: { claim: hearth-backups }\n`],
    ]);
    for (const files of [example, file, backups, claim].map((f) => renderKube(f, { env: {} }))) {
      for (const [name, text] of files) {
        if (!name.endsWith('.yaml') || name === 'kustomization.yaml') continue;
        for (const d of parseAllDocuments(text)) {
          const data = d.toJS() as { kind: string };
          const Model = classes[data.kind];
          expect(Model, `${name}: ${data.kind}`).toBeDefined();
          expect(() => new (Model as NonNullable<typeof Model>)(data as never).validate()).not.toThrow();
          kinds.add(data.kind);
        }
      }
    }
    expect([...kinds].sort()).toEqual(Object.keys(classes).sort());

    const bad = new Service({
      metadata: { name: 'hearth-control' },
      spec: { ports: [{ port: 'eight thousand' as unknown as number }] },
    });
    expect(() => serialise(bad, 'cluster.yaml')).toThrow(KubeRenderError);
    expect(() => serialise(bad, 'cluster.yaml')).toThrow(
      /the rendered Service hearth-control is not valid Kubernetes: .*spec\/ports\/0\/port must be integer/,
    );
  });

  it('reports a mistake in cluster.kubernetes at its file:line, like every config error', () => {
    const nodePort = configWith([['nodePort: 30800', 'nodePort: 99999']]);
    expect(renderError(nodePort)).toMatch(
      new RegExp(
        `cluster\\.yaml:${lineOf(exampleText, 'controlService:')}:\\d+: cluster\\.kubernetes\\.controlService\\.nodePort: must be at most 32767`,
      ),
    );
    const typo = configWith([['storageClass: local-path', 'storageClas: local-path']]);
    expect(renderError(typo)).toMatch(
      new RegExp(`cluster\\.yaml:${lineOf(exampleText, 'storageClass:')}:\\d+: .*unknown key "storageClas"`),
    );
    const unpinned = configWith([
      ['      kitchen: { node: pi-kitchen, group: 20,', '      kitchen: { group: 20,'],
    ]);
    expect(renderError(unpinned)).toMatch(
      new RegExp(
        `cluster\\.yaml:${lineOf(exampleText, 'kitchen: { node')}:\\d+: cluster\\.kubernetes\\.agents\\.kitchen: agent "kitchen" has a serial device`,
      ),
    );
    const stranger = configWith([
      ['      kitchen: { node', '      garage: { node: pi-garage }\n      kitchen: { node'],
    ]);
    expect(renderError(stranger)).toMatch(
      /cluster\.kubernetes\.agents\.garage: no device runs on agent "garage"/,
    );
    const ingress = configWith([['  public: { port: 8080 }', '  # no public listener']]);
    expect(renderError(ingress)).toMatch(/cluster\.kubernetes\.ingressHost: needs the public listener/);
  });

  it('never writes a secret into the manifests, unless --with-secrets; a literal token becomes a HEARTH_TOKEN reference', async () => {
    const env = {
      HEARTH_TOKEN: 'secret-value-123',
      HEARTH_PG_PASSWORD: 'pgsecret456abc',
      MQTT_PASSWORD: 'mqtt-secret-789',
    };
    const literal = configWith([[`token: \${HEARTH_TOKEN}`, 'token: literal-token-0123456789']]);
    const out = join(tempDir(), 'deploy');
    const run = await runCli(['kube', 'render', '--config', literal, '--out', out], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const all = readdirSync(out)
      .map((f) => readFileSync(join(out, f), 'utf8'))
      .join('\n');
    for (const secret of [...Object.values(env), 'literal-token-0123456789'])
      expect(all).not.toContain(secret);
    expect(all).toContain(`token: "\${HEARTH_TOKEN}"`);
    expect(run.stdout).not.toContain('secret-value-123');

    const withSecrets = join(tempDir(), 'deploy');
    const run2 = await runCli(
      ['kube', 'render', '--config', literal, '--out', withSecrets, '--with-secrets'],
      {
        env,
      },
    );
    expect(run2.code).toBe(0);
    const secrets = secretsIn(join(withSecrets, 'secret.yaml'));
    // The literal of the file wins over nothing, the environment over the literal. MQTT_PASSWORD
    // is no longer referenced: each role has its own broker user (the Secret hearth-mqtt).
    const { MQTT_PASSWORD: _mqtt, ...referenced } = env;
    expect(secrets.get('hearth-env')).toEqual(referenced);
    expect(Object.keys(secrets.get('hearth-mqtt') ?? {}).sort()).toEqual([
      'hearth-agent-kitchen',
      'hearth-agent-main',
      'hearth-api',
      'hearth-controller',
      'homeassistant',
      'passwd',
      'zigbee2mqtt',
    ]);
    // secret.yaml is git-ignored, so the kustomization never names it (a committed folder must
    // build in Flux or Argo CD without it); the CLI says to apply it first, on its own.
    const resources = parse(readFileSync(join(withSecrets, 'kustomization.yaml'), 'utf8')).resources;
    expect(resources).not.toContain('secret.yaml');
    expect(resources).toContain('namespace.yaml');
    expect(readFileSync(join(withSecrets, '.gitignore'), 'utf8')).toBe('secret.yaml\n');
    expect(run2.stdout).toContain(
      `kubectl apply -f ${withSecrets}/namespace.yaml -f ${withSecrets}/secret.yaml\n  kubectl apply -k ${withSecrets}`,
    );
    for (const doc of parseAllDocuments(readFileSync(join(withSecrets, 'secret.yaml'), 'utf8')))
      expect(doc.toJS().metadata.namespace).toBe('hearth');

    const missing = await runCli(
      ['kube', 'render', '--config', example, '--out', tempDir(), '--with-secrets'],
      {
        env: { HEARTH_TOKEN: 'secret-value-123' },
      },
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(
      'hearth kube render: --with-secrets: HEARTH_PG_PASSWORD is not set; export it (the config references it) and render again',
    );
  });

  it('--check exits 0 on a fresh render and 1 with a diff after the config changed', async () => {
    const file = configWith();
    const out = join(tempDir(), 'deploy');
    expect((await runCli(['kube', 'render', '--config', file, '--out', out])).code).toBe(0);
    const fresh = await runCli(['kube', 'render', '--config', file, '--out', out, '--check']);
    expect(fresh.stderr).toBe('');
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).toContain('is up to date');

    // The coffee pot moved to another Pi.
    writeFileSync(file, readFileSync(file, 'utf8').replace('node: pi-kitchen', 'node: pi-hall'));
    const moved = await runCli(['kube', 'render', '--config', file, '--out', out, '--check']);
    expect(moved.code).toBe(1);
    expect(moved.stdout).toContain(`--- ${join(out, 'deployment-hearth-agent-kitchen.yaml')} (on disk)`);
    expect(moved.stdout).toMatch(/^- +kubernetes\.io\/hostname: pi-kitchen$/m);
    expect(moved.stdout).toMatch(/^\+ +kubernetes\.io\/hostname: pi-hall$/m);
    expect(moved.stderr).toContain('differs from what');

    // A file missing and a stale one are named too.
    rmSync(join(out, 'service-hearth-public.yaml'));
    writeFileSync(
      join(out, 'deployment-hearth-agent-garage.yaml'),
      '# Generated by `hearth kube render` from x\n',
    );
    writeFileSync(join(out, 'notes.yaml'), 'mine: true\n');
    const files = renderKube(file, { env: {} });
    const diff = checkRendered(out, files, false);
    expect(diff).toContain(`missing: ${join(out, 'service-hearth-public.yaml')}`);
    expect(diff).toContain(`extra: ${join(out, 'deployment-hearth-agent-garage.yaml')} (no longer rendered)`);
    expect(diff).not.toContain('notes.yaml');

    // Rendering again removes what it no longer makes, and leaves the user's files.
    writeRendered(out, files, false);
    expect(checkRendered(out, files, false)).toBe('');
    expect(readdirSync(out)).toContain('notes.yaml');
    expect(readdirSync(out)).not.toContain('deployment-hearth-agent-garage.yaml');
  });

  it('--with-secrets writes secret.yaml 0600 even over an existing file, never through a symbolic link, and --check never prints a value', {
    timeout: 60_000,
  }, async () => {
    const env = {
      HEARTH_TOKEN: 'tok-first-7f3a9c2e51d0b8aa',
      HEARTH_PG_PASSWORD: 'pgfirst4d2c9e7b',
      MQTT_PASSWORD: 'mqtt-first-5e8b1f4c',
    };
    const file = configWith();
    const out = join(tempDir(), 'deploy');
    const mode = () => statSync(join(out, 'secret.yaml')).mode & 0o777;
    const render = (e: Record<string, string>, ...more: string[]) =>
      runCli(['kube', 'render', '--config', file, '--out', out, '--with-secrets', ...more], { env: e });

    // A secret.yaml from before (a copy, an older hearth) that anyone may read.
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'secret.yaml'), 'old: secret\n', { mode: 0o644 });
    chmodSync(join(out, 'secret.yaml'), 0o644);
    expect((await render(env)).code).toBe(0);
    expect(mode()).toBe(0o600);
    // The same contents again: the mode is still put right.
    chmodSync(join(out, 'secret.yaml'), 0o644);
    expect((await render(env)).code).toBe(0);
    expect(mode()).toBe(0o600);

    // --check with a changed token: the keys that differ are named, no value is shown. The
    // broker's passwords were made by the first render and kept since: they do not differ.
    const broker = secretsIn(join(out, 'secret.yaml')).get('hearth-mqtt') ?? {};
    const next = { ...env, HEARTH_TOKEN: 'tok-second-0b9d4e6f27a1c3ee' };
    const check = await render(next, '--check');
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(`--- ${join(out, 'secret.yaml')} (on disk)`);
    expect(check.stdout).toMatch(/^- +HEARTH_TOKEN: <secret, on disk>$/m);
    expect(check.stdout).toMatch(/^\+ +HEARTH_TOKEN: <secret, rendered>$/m);
    expect(check.stdout).not.toMatch(/hearth-api: <secret, rendered>|passwd: <secret, rendered>/);
    for (const value of [...Object.values(env), ...Object.values(next), ...Object.values(broker)]) {
      expect(check.stdout + check.stderr).not.toContain(value);
    }

    // A symbolic link at secret.yaml: refused, and what it points at is left alone.
    const elsewhere = join(tempDir(), 'shared.yaml');
    writeFileSync(elsewhere, 'mine: true\n', { mode: 0o644 });
    rmSync(join(out, 'secret.yaml'));
    symlinkSync(elsewhere, join(out, 'secret.yaml'));
    const linked = await render(env);
    expect(linked.code).toBe(1);
    expect(linked.stderr).toContain(
      `hearth kube render: ${join(out, 'secret.yaml')} is a symbolic link: hearth does not write the Secret through one; remove it and render again`,
    );
    expect(readFileSync(elsewhere, 'utf8')).toBe('mine: true\n');
    const linkedCheck = await render(env, '--check');
    expect(linkedCheck.code).toBe(1);
    expect(linkedCheck.stdout).toContain(`${join(out, 'secret.yaml')} is a symbolic link`);
    expect(linkedCheck.stdout).not.toContain('mine: true');
  });

  describe('scheduled backups (backup.every): the controllers get a volume for backup.dir', () => {
    const podOf = (files: Map<string, string>) =>
      parse(files.get('deployment-hearth-controller.yaml') as string).spec.template.spec;
    const configOf = (files: Map<string, string>) =>
      parse(files.get('configmap-hearth-config.yaml') as string).data['hearth.yaml'] as string;

    it('refuses backup.every without cluster.kubernetes.backups, naming the field and both choices', () => {
      const text = exampleText.replace(backupBlock[0], backupBlock[1]);
      const message = renderError(configWith([backupBlock]));
      expect(message).toMatch(
        new RegExp(
          `cluster\\.yaml:${lineOf(text, '    namespace: hearth')}:\\d+: cluster\\.kubernetes\\.backups: is required with backup\\.every`,
        ),
      );
      expect(message).toContain("a node's own disk is not enough");
      expect(message).toContain('`backups: { nfs: { server: nas.home.lan, path: /volume1/hearth } }`');
      expect(message).toContain('`backups: { claim: NAME }`');
      // Scheduled archives with the secrets file: the pods have none.
      const secrets = configWith([
        [backupBlock[0], backupBlock[1].replace('keep: 14', 'keep: 14\n  includeSecrets: true')],
        nfsVolume,
      ]);
      expect(renderError(secrets)).toMatch(
        /cluster\.yaml:\d+:\d+: backup\.includeSecrets: cannot be true on Kubernetes: the pods have no secrets file/,
      );
    });

    it('renders the example with backups on NFS to the golden files (UPDATE_GOLDEN=1 rewrites them)', () => {
      const files = renderKube(configWith([backupBlock, nfsVolume]), { env: {} });
      // The namespace too: an NFS volume is not among the restricted level's volume types.
      const names = ['configmap-hearth-config.yaml', 'deployment-hearth-controller.yaml', 'namespace.yaml'];
      if (process.env.UPDATE_GOLDEN === '1') {
        rmSync(goldenBackups, { recursive: true, force: true });
        mkdirSync(goldenBackups, { recursive: true });
        for (const name of names) writeFileSync(join(goldenBackups, name), files.get(name) as string);
      }
      expect(readdirSync(goldenBackups).sort()).toEqual(names);
      for (const name of names)
        expect(files.get(name), name).toBe(readFileSync(join(goldenBackups, name), 'utf8'));
      // Every other file is the plain example's, but for the config hash on the pods.
      const plain = renderKube(example, { env: {} });
      expect([...files.keys()]).toEqual([...plain.keys()]);
      for (const [name, text] of plain) {
        if (names.includes(name)) continue;
        const unhashed = (t: string | undefined) => t?.replace(/config-sha256: \w+/, 'config-sha256: X');
        expect(unhashed(files.get(name)), name).toBe(unhashed(text));
      }
    });

    it('mounts an NFS export at /var/lib/hearth/backups, writable by the pods, and points backup.dir there', () => {
      const files = renderKube(configWith([backupBlock, nfsVolume]), { env: {} });
      const pod = podOf(files);
      expect(pod.volumes).toContainEqual({
        name: 'backups',
        nfs: { server: 'nas.home.lan', path: '/volume1/hearth' },
      });
      const container = pod.containers[0];
      expect(container.volumeMounts).toContainEqual({
        name: 'backups',
        mountPath: '/var/lib/hearth/backups',
      });
      expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
      expect(pod.securityContext).toMatchObject({ runAsUser: 10001, fsGroup: 10001 });
      // The backup child process runs in the controller's container.
      expect(container.resources.limits.memory).toBe('512Mi');
      // Only the controllers: the api and agent pods never run the schedule.
      for (const other of ['deployment-hearth-api.yaml', 'deployment-hearth-agent-main.yaml']) {
        const spec = parse(files.get(other) as string).spec.template.spec;
        expect(JSON.stringify(spec), other).not.toContain('backups');
        expect(spec.securityContext.fsGroup, other).toBeUndefined();
      }
      // The pods read backup.dir from the ConfigMap: the mount, with the user's lines kept above it.
      const config = configOf(files);
      expect(parse(config).backup).toEqual({ dir: '/var/lib/hearth/backups', every: '0 3 * * *', keep: 14 });
      expect(config).toContain('backup:\n  # nightly, kept a fortnight\n  dir: "/var/lib/hearth/backups"\n');
    });

    it('mounts a claim the user made; a written backup.dir is replaced on its own line, a flow mapping gets it on its line', () => {
      const claim: [string, string] = [
        `    ${exampleMqtt}\n`,
        `    ${exampleMqtt}\n    backups: { claim: hearth-backups }\n`,
      ];
      const written = configWith([
        [backupBlock[0], 'backup:\n  dir: /mnt/nas/hearth # on the box\n  every: "0 3 * * *"\nmqtt:\n  url:'],
        claim,
      ]);
      const files = renderKube(written, { env: {} });
      expect(podOf(files).volumes).toContainEqual({
        name: 'backups',
        persistentVolumeClaim: { claimName: 'hearth-backups' },
      });
      const config = configOf(files);
      const userText = readFileSync(written, 'utf8');
      expect(config.split('\n').length).toBe(userText.split('\n').length);
      expect(config.split('\n')[lineOf(userText, 'dir: /mnt/nas') - 1]).toBe(
        '  dir: "/var/lib/hearth/backups" # on the box',
      );

      const flow = configWith([
        [backupBlock[0], 'backup: { every: "0 3 * * *", keep: 3 }\nmqtt:\n  url:'],
        claim,
      ]);
      const flowConfig = configOf(renderKube(flow, { env: {} }));
      expect(flowConfig).toContain(
        'backup: { dir: "/var/lib/hearth/backups", every: "0 3 * * *", keep: 3 }\n',
      );
      expect(flowConfig.split('\n').length).toBe(readFileSync(flow, 'utf8').split('\n').length);

      // Without backup.every the volume is still there for `hearth backup` run by hand in a pod.
      const manual = configOf(renderKube(configWith([claim]), { env: {} }));
      expect(parse(manual).backup).toEqual({ dir: '/var/lib/hearth/backups' });
    });

    it('reports a wrong cluster.kubernetes.backups at its line, with what it takes', () => {
      const text = exampleText.replace(backupBlock[0], backupBlock[1]).replace(nfsVolume[0], nfsVolume[1]);
      const line = lineOf(text, '    backups:');
      const cases: Array<[string, RegExp]> = [
        [
          '    backups: { nfs: { server: nas.home.lan, path: volume1/hearth } }\n',
          /cluster\.kubernetes\.backups\.nfs\.path: must be the exported folder on the server, an absolute path/,
        ],
        [
          '    backups: { nfs: { server: "nas home", path: /volume1/hearth } }\n',
          /cluster\.kubernetes\.backups\.nfs\.server: must be the NFS server's host name or IP address/,
        ],
        [
          '    backups: { claim: Hearth_Backups }\n',
          /cluster\.kubernetes\.backups\.claim: must be the name of a PersistentVolumeClaim/,
        ],
        [
          '    backups: { hostPath: /srv/backups }\n',
          /cluster\.kubernetes\.backups: must be \{ nfs: \{ server: HOST, path: \/exported\/folder \} \} .* or \{ claim: NAME \}/,
        ],
        [
          '    backups: { claim: hearth-backups, nfs: { server: nas, path: /x } }\n',
          /cluster\.kubernetes\.backups: takes one of nfs and claim, not both: \{ nfs: /,
        ],
      ];
      for (const [entry, pattern] of cases) {
        const message = renderError(configWith([backupBlock, [nfsVolume[0], `${nfsVolume[0]}${entry}`]]));
        expect(message, entry).toMatch(pattern);
        expect(message, entry).toContain(`cluster.yaml:${line}:`);
      }
    });

    it('--check and --with-secrets work with the backups volume', async () => {
      const file = configWith([backupBlock, nfsVolume]);
      const out = join(tempDir(), 'deploy');
      const env = { HEARTH_TOKEN: 'secret-value-123', HEARTH_PG_PASSWORD: 'pg456abc' };
      const run = await runCli(['kube', 'render', '--config', file, '--out', out, '--with-secrets'], { env });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      // The backups folder adds no variable to the Secret.
      expect(secretsIn(join(out, 'secret.yaml')).get('hearth-env')).toEqual(env);
      const fresh = await runCli(
        ['kube', 'render', '--config', file, '--out', out, '--check', '--with-secrets'],
        {
          env,
        },
      );
      expect(fresh.code).toBe(0);
      expect(fresh.stdout).toContain('is up to date');

      // The NAS moved: the controllers' volume differs.
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace('path: /volume1/hearth', 'path: /volume2/hearth'),
      );
      const moved = await runCli(['kube', 'render', '--config', file, '--out', out, '--check'], { env });
      expect(moved.code).toBe(1);
      expect(moved.stdout).toContain(`--- ${join(out, 'deployment-hearth-controller.yaml')} (on disk)`);
      expect(moved.stdout).toMatch(/^- +path: \/volume1\/hearth$/m);
      expect(moved.stdout).toMatch(/^\+ +path: \/volume2\/hearth$/m);

      // Without the volume, the CLI says what is missing and writes nothing.
      writeFileSync(file, readFileSync(file, 'utf8').replace(/ {4}backups: .*\n/, ''));
      const missing = await runCli(['kube', 'render', '--config', file, '--out', join(tempDir(), 'x')], {
        env,
      });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('cluster.kubernetes.backups: is required with backup.every');
    });
  });
});

describe('hearth kube render: TLS to an external broker (mqtt.ca, cert, key)', () => {
  const tlsUrl: [string, string] = [
    'url: mqtt://192.168.1.5:1883',
    'url: mqtts://broker.home.lan:8883\n  ca: tls/ca.pem\n  cert: tls/hearth.pem\n  key: tls/hearth-key.pem',
  ];
  const external: [string, string] = [
    `    ${exampleMqtt}\n`,
    '    mqtt: { external: { host: 192.168.1.5, port: 8883 } }\n',
  ];
  const env = { HEARTH_TOKEN: 'secret-value-123', HEARTH_PG_PASSWORD: 'pg456abc', MQTT_PASSWORD: 'm789' };

  /** A self-signed certificate and its key, made by the openssl CLI, in `dir`/tls. */
  function makePem(dir: string): { cert: string; key: string } {
    mkdirSync(join(dir, 'tls'), { recursive: true });
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=hearth',
        '-keyout',
        'tls/hearth-key.pem',
        '-out',
        'tls/hearth.pem',
      ],
      { cwd: dir, stdio: 'pipe' },
    );
    expect(made.status, String(made.stderr)).toBe(0);
    // The CA file: the same self-signed certificate serves.
    writeFileSync(join(dir, 'tls', 'ca.pem'), readFileSync(join(dir, 'tls', 'hearth.pem')));
    return {
      cert: readFileSync(join(dir, 'tls', 'hearth.pem'), 'utf8'),
      key: readFileSync(join(dir, 'tls', 'hearth-key.pem'), 'utf8'),
    };
  }

  it('mounts the Secret hearth-mqtt-tls in every hearth pod and points mqtt.ca/cert/key at its files', () => {
    const file = configWith([tlsUrl, external]);
    const files = renderKube(file, { env: {} });
    const config = parse(parse(files.get('configmap-hearth-config.yaml') as string).data['hearth.yaml']);
    expect(config.mqtt).toMatchObject({
      url: 'mqtts://broker.home.lan:8883',
      ca: '/etc/hearth/tls/ca.crt',
      cert: '/etc/hearth/tls/tls.crt',
      key: '/etc/hearth/tls/tls.key',
    });
    const text = parse(files.get('configmap-hearth-config.yaml') as string).data['hearth.yaml'] as string;
    // In place: every other line stays where the user wrote it.
    expect(text.split('\n').length).toBe(readFileSync(file, 'utf8').split('\n').length);
    expect(text).toContain('  cert: "/etc/hearth/tls/tls.crt"\n  key: "/etc/hearth/tls/tls.key" #');

    const roles = [...files.keys()].filter((f) => f.startsWith('deployment-hearth-'));
    expect(roles).toEqual([
      'deployment-hearth-agent-kitchen.yaml',
      'deployment-hearth-agent-main.yaml',
      'deployment-hearth-api.yaml',
      'deployment-hearth-controller.yaml',
    ]);
    for (const f of roles) {
      const spec = parse(files.get(f) as string).spec.template.spec;
      expect(spec.securityContext.fsGroup, f).toBe(10001);
      const config = spec.volumes.find((v: { name: string }) => v.name === 'config');
      expect(config, f).toEqual({
        name: 'config',
        projected: {
          sources: [
            { configMap: { name: 'hearth-config' } },
            {
              secret: {
                name: 'hearth-mqtt-tls',
                items: [
                  { key: 'ca.crt', path: 'tls/ca.crt', mode: 0o440 },
                  { key: 'tls.crt', path: 'tls/tls.crt', mode: 0o440 },
                  { key: 'tls.key', path: 'tls/tls.key', mode: 0o440 },
                ],
              },
            },
          ],
        },
      });
      expect(spec.containers[0].volumeMounts[0]).toEqual({
        name: 'config',
        mountPath: '/etc/hearth',
        readOnly: true,
      });
    }

    // No secret in the manifests: the example names the Secret and how to make it.
    expect(files.has('secret.yaml')).toBe(false);
    const example = files.get('secret.example.yaml') as string;
    const docs = parseAllDocuments(example).map((d) => d.toJS());
    expect(docs[1]).toMatchObject({
      kind: 'Secret',
      metadata: { name: 'hearth-mqtt-tls', namespace: 'hearth' },
      stringData: { 'ca.crt': '', 'tls.crt': '', 'tls.key': '' },
    });
    expect(example).toContain(
      '#   kubectl -n hearth create secret generic hearth-mqtt-tls \\\n#     --from-file=ca.crt=tls/ca.pem \\\n#     --from-file=tls.crt=tls/hearth.pem \\\n#     --from-file=tls.key=tls/hearth-key.pem \\\n',
    );
    expect(parse(files.get('kustomization.yaml') as string).resources).not.toContain('secret.example.yaml');

    // Only the files the config sets: a CA alone.
    const caOnly = configWith([
      ['url: mqtt://192.168.1.5:1883', 'url: mqtts://broker.home.lan:8883\n  ca: tls/ca.pem'],
      external,
    ]);
    const ca = renderKube(caOnly, { env: {} });
    const api = parse(ca.get('deployment-hearth-api.yaml') as string).spec.template.spec;
    expect(api.volumes[0].projected.sources[1].secret.items).toEqual([
      { key: 'ca.crt', path: 'tls/ca.crt', mode: 0o440 },
    ]);
    expect(parseAllDocuments(ca.get('secret.example.yaml') as string)[1]?.toJS().stringData).toEqual({
      'ca.crt': '',
    });
  });

  it('--with-secrets fills the Secret from the files, relative to the config; --check agrees', async () => {
    const file = configWith([tlsUrl, external]);
    const pem = makePem(join(file, '..'));
    const out = join(tempDir(), 'deploy');
    const run = await runCli(['kube', 'render', '--config', file, '--out', out, '--with-secrets'], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const secretText = readFileSync(join(out, 'secret.yaml'), 'utf8');
    const [envSecret, tlsSecret] = parseAllDocuments(secretText).map((d) => d.toJS());
    expect(envSecret.stringData).toEqual(env);
    expect(tlsSecret.metadata.name).toBe('hearth-mqtt-tls');
    expect(tlsSecret.stringData).toEqual({ 'ca.crt': pem.cert, 'tls.crt': pem.cert, 'tls.key': pem.key });
    for (const f of readdirSync(out).filter((n) => n !== 'secret.yaml'))
      expect(readFileSync(join(out, f), 'utf8'), f).not.toContain('PRIVATE KEY');

    const fresh = await runCli(
      ['kube', 'render', '--config', file, '--out', out, '--check', '--with-secrets'],
      {
        env,
      },
    );
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).toContain('is up to date');
    // A new key: --check sees the Secret differ.
    rmSync(join(file, '..', 'tls'), { recursive: true });
    const renewed = makePem(join(file, '..'));
    expect(renewed.key).not.toBe(pem.key);
    const changed = await runCli(
      ['kube', 'render', '--config', file, '--out', out, '--check', '--with-secrets'],
      { env },
    );
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain(`--- ${join(out, 'secret.yaml')} (on disk)`);
  });

  it('names a missing TLS file with --with-secrets, and refuses TLS with the in-cluster broker', async () => {
    const file = configWith([tlsUrl, external]);
    const missing = await runCli(
      ['kube', 'render', '--config', file, '--out', join(tempDir(), 'x'), '--with-secrets'],
      { env },
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `hearth kube render: --with-secrets: mqtt.ca: cannot read ${join(file, '..', 'tls', 'ca.pem')}`,
    );
    // Without --with-secrets the files need not be here (a CI checkout).
    const plain = await runCli(['kube', 'render', '--config', file, '--out', join(tempDir(), 'y')], { env });
    expect(plain.stderr).toBe('');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('hearth-env and hearth-mqtt-tls (the MQTT TLS files) are not among them');

    const inCluster = configWith([tlsUrl]);
    const text = readFileSync(inCluster, 'utf8');
    expect(renderError(inCluster)).toMatch(
      new RegExp(
        `cluster\\.yaml:${lineOf(text, '  ca: tls/ca.pem')}:\\d+: mqtt\\.ca: needs a broker outside the cluster`,
      ),
    );
  });

  it('leaves a config without TLS as it was: the broker is the mosquitto Service, no TLS Secret', () => {
    const files = renderKube(example, { env: {} });
    expect(files.get('secret.example.yaml')).not.toContain('hearth-mqtt-tls');
    expect(files.get('configmap-hearth-config.yaml')).toContain('url: "mqtt://mosquitto:1883"');
    for (const [name, text] of files) {
      expect(text, name).not.toContain('/etc/hearth/tls');
      expect(text, name).not.toContain('projected');
    }
  });
});

describe("hearth kube render: the in-cluster broker's users and ACL", () => {
  const deployments = (files: Map<string, string>) =>
    [...files.keys()].filter((f) => f.startsWith('deployment-')).map((f) => parse(files.get(f) as string));
  const hearthYaml = (files: Map<string, string>) =>
    parse(files.get('configmap-hearth-config.yaml') as string).data['hearth.yaml'] as string;

  it('gives each role its own user: its Deployment names it and holds only its own password; Mosquitto takes no anonymous client and applies the ACL', () => {
    const files = renderKube(example, { env: {} });
    const users = deployments(files).map((d) => {
      const env = d.spec.template.spec.containers[0].env as Array<{
        name: string;
        value?: string;
        valueFrom?: { secretKeyRef: { name: string; key: string } };
      }>;
      const user = env.find((e) => e.name === 'HEARTH_MQTT_USERNAME')?.value;
      expect(env.find((e) => e.name === 'HEARTH_MQTT_PASSWORD')?.valueFrom).toEqual({
        secretKeyRef: { name: 'hearth-mqtt', key: user },
      });
      return [d.metadata.name, user];
    });
    expect(Object.fromEntries(users)).toEqual({
      'hearth-agent-kitchen': 'hearth-agent-kitchen',
      'hearth-agent-main': 'hearth-agent-main',
      'hearth-api': 'hearth-api',
      'hearth-controller': 'hearth-controller',
    });
    // The user's lines, each replaced where it was: every error still names the user's line.
    const config = hearthYaml(files);
    expect(config.split('\n').length).toBe(exampleText.split('\n').length);
    expect(config.split('\n')[lineOf(exampleText, 'username: hearth') - 1]).toBe(
      `  username: "\${HEARTH_MQTT_USERNAME}"`,
    );
    expect(config.split('\n')[lineOf(exampleText, `password: \${MQTT_PASSWORD}`) - 1]).toBe(
      `  password: "\${HEARTH_MQTT_PASSWORD}"`,
    );
    const mosquitto = parse(files.get('configmap-mosquitto-config.yaml') as string).data;
    expect(mosquitto['mosquitto.conf']).toContain(
      'allow_anonymous false\npassword_file /mosquitto/auth/passwd\nacl_file /mosquitto/config/acl\n',
    );
    expect(mosquitto.acl).toContain('user hearth-agent-kitchen\n');
    expect(mosquitto.acl).toContain('topic read hearth/cluster/cmd/kitchen\n');
    // zigbee2mqtt is followed by agent main (zigbee2mqtt: has no agent), so its topics are main's.
    expect(mosquitto.acl.split('user hearth-agent-main')[1]).toContain('topic readwrite zigbee2mqtt/#\n');
    const pod = parse(files.get('statefulset-mosquitto.yaml') as string).spec.template.spec;
    expect(pod.volumes).toContainEqual({
      name: 'secret',
      secret: { secretName: 'hearth-mqtt', items: [{ key: 'passwd', path: 'passwd', mode: 0o440 }] },
    });
  });

  it('adds the user and password to a config without them, on the line in a flow mapping', () => {
    const flow = configWith([
      [
        `mqtt:\n  url: mqtt://192.168.1.5:1883 # in the pods: the mosquitto Service\n  username: hearth\n  password: \${MQTT_PASSWORD}\n`,
        'mqtt: { url: mqtt://192.168.1.5:1883 }\n',
      ],
    ]);
    const config = hearthYaml(renderKube(flow, { env: {} }));
    expect(config).toContain(
      `mqtt: { username: "\${HEARTH_MQTT_USERNAME}", password: "\${HEARTH_MQTT_PASSWORD}", url: "mqtt://mosquitto:1883" }\n`,
    );
    const block = configWith([[`  username: hearth\n  password: \${MQTT_PASSWORD}\n`, '']]);
    expect(hearthYaml(renderKube(block, { env: {} }))).toContain(
      `mqtt:\n  username: "\${HEARTH_MQTT_USERNAME}"\n  password: "\${HEARTH_MQTT_PASSWORD}"\n  url: "mqtt://mosquitto:1883"`,
    );
  });

  it('leaves an external broker to its owner: the config says who logs in, no per-role user, no hearth-mqtt', () => {
    const file = configWith([[exampleMqtt, 'mqtt: { external: { host: 192.168.1.5 } }']]);
    const files = renderKube(file, { env: {} });
    expect(hearthYaml(files)).toContain(`  username: hearth\n  password: \${MQTT_PASSWORD}\n`);
    for (const d of deployments(files)) {
      const names = d.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name);
      expect(names).toEqual(['HEARTH_CONFIG']);
    }
    expect(files.get('secret.example.yaml')).not.toContain('hearth-mqtt');
  });

  /** One user's section of an ACL file: from its `user` line to the blank line after it. */
  const section = (acl: string, user: string) =>
    `user ${user}\n${acl
      .split(`\nuser ${user}\n`)[1]
      ?.split(/\n\n|\n```/)[0]
      ?.trimEnd()}\n`;

  it('clients: Home Assistant and zigbee2mqtt get users of their own, with the ACL lines docs/mqtt.md shows; their Secret keys are listed', () => {
    const files = renderKube(example, { env: {} });
    const acl = parse(files.get('configmap-mosquitto-config.yaml') as string).data.acl as string;
    // The same generator (src/bus/mqtt/acl.ts) writes both; the example's names are the docs'.
    const docs = readFileSync(join(repoRoot, 'docs', 'mqtt.md'), 'utf8');
    for (const user of ['homeassistant', 'zigbee2mqtt']) {
      expect(section(acl, user), user).toBe(section(docs, user));
      expect(section(acl, user), user).not.toContain('cluster');
    }
    expect(section(acl, 'homeassistant')).toContain('topic write hearth/+/set\n');
    const secret = [...parseAllDocuments(files.get('secret.example.yaml') as string)]
      .map((d) => d.toJS())
      .find((d) => d.metadata.name === 'hearth-mqtt');
    expect(Object.keys(secret.stringData)).toEqual([
      'hearth-agent-kitchen',
      'hearth-agent-main',
      'hearth-api',
      'hearth-controller',
      'homeassistant',
      'passwd',
      'zigbee2mqtt',
    ]);
    expect(files.get('secret.example.yaml')).toContain('#     --from-file=homeassistant=homeassistant \\\n');
    // Not one password in any file.
    expect(files.get('configmap-mosquitto-config.yaml')).not.toMatch(/password(?!_file)/);
  });

  it('expose: the LAN reaches the broker through a Service of its own, from lanCidrs or `from`; hearth keeps a ClusterIP', () => {
    const files = renderKube(example, { env: {} });
    const svc = (name: string) => parse(files.get(name) as string).spec;
    expect(svc('service-mosquitto.yaml').type).toBe('ClusterIP');
    expect(svc('service-mosquitto-lan.yaml')).toEqual({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      selector: { 'app.kubernetes.io/name': 'mosquitto', 'app.kubernetes.io/component': 'broker' },
      ports: [{ name: 'mqtt', port: 1883, targetPort: 'mqtt', protocol: 'TCP' }],
    });
    const from = parse(files.get('networkpolicy-mosquitto.yaml') as string).spec.ingress[0].from;
    expect(from).toEqual([
      { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'hearth' } } },
      { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'mosquitto' } } },
      // Home Assistant or zigbee2mqtt in a pod of another namespace.
      { namespaceSelector: {} },
      { ipBlock: { cidr: '192.168.1.0/24' } },
    ]);

    const nodePort = renderKube(
      configWith([
        [
          exampleMqtt,
          'mqtt: { inCluster: true, clients: [homeassistant], expose: { type: NodePort, nodePort: 31883, from: [192.168.1.10/32, 192.168.1.11/32] } }',
        ],
      ]),
      { env: {} },
    );
    expect(parse(nodePort.get('service-mosquitto-lan.yaml') as string).spec).toMatchObject({
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [{ nodePort: 31883 }],
    });
    const narrowed = parse(nodePort.get('networkpolicy-mosquitto.yaml') as string).spec.ingress[0].from;
    expect(narrowed.filter((f: { ipBlock?: unknown }) => f.ipBlock)).toEqual([
      { ipBlock: { cidr: '192.168.1.10/32' } },
      { ipBlock: { cidr: '192.168.1.11/32' } },
    ]);
    const acl = parse(nodePort.get('configmap-mosquitto-config.yaml') as string).data.acl as string;
    expect(acl).toContain('user homeassistant\n');
    expect(acl).not.toContain('user zigbee2mqtt\n');

    const pinned = renderKube(
      configWith([[exampleMqtt, 'mqtt: { inCluster: true, expose: { loadBalancerIP: 192.168.1.60 } }']]),
      { env: {} },
    );
    expect(parse(pinned.get('service-mosquitto-lan.yaml') as string).spec).toMatchObject({
      type: 'LoadBalancer',
      loadBalancerIP: '192.168.1.60',
    });

    // Neither: only hearth's pods reach the broker, which has hearth's users only.
    const closed = renderKube(configWith([[exampleMqtt, 'mqtt: { inCluster: true }']]), { env: {} });
    expect(closed.has('service-mosquitto-lan.yaml')).toBe(false);
    expect(parse(closed.get('networkpolicy-mosquitto.yaml') as string).spec.ingress[0].from).toHaveLength(2);
    expect(closed.get('configmap-mosquitto-config.yaml')).not.toContain('user homeassistant');
  });

  it('reports a wrong expose at its line', () => {
    const line = lineOf(exampleText, exampleMqtt);
    for (const [mqttLine, pattern] of [
      [
        'mqtt: { inCluster: true, expose: { type: LoadBalancer, nodePort: 31883 } }',
        /cluster\.kubernetes\.mqtt\.expose\.nodePort: is for type NodePort only/,
      ],
      [
        'mqtt: { inCluster: true, expose: { type: NodePort, loadBalancerIP: 192.168.1.60 } }',
        /cluster\.kubernetes\.mqtt\.expose\.loadBalancerIP: is for type LoadBalancer only/,
      ],
      [
        'mqtt: { inCluster: true, expose: { from: [lan] } }',
        /cluster\.kubernetes\.mqtt\.expose\.from\[0\]: must be a network in CIDR notation/,
      ],
    ] as const) {
      const message = renderError(configWith([[exampleMqtt, mqttLine]]));
      expect(message, mqttLine).toMatch(pattern);
      expect(message, mqttLine).toContain(`cluster.yaml:${line}:`);
    }
  });

  it.skipIf(mosquittoMissing)(
    '--with-secrets: a password per user, kept by the next render; a real Mosquitto takes the password file and the ACL',
    { timeout: 60_000 },
    async () => {
      const file = configWith();
      const out = join(tempDir(), 'deploy');
      const env = { HEARTH_TOKEN: 'tok-7f3a9c2e51d0b8aa', HEARTH_PG_PASSWORD: 'pg4d2c9e7b' };
      const render = () =>
        runCli(['kube', 'render', '--config', file, '--out', out, '--with-secrets'], { env });
      expect((await render()).code).toBe(0);
      const first = secretsIn(join(out, 'secret.yaml')).get('hearth-mqtt') ?? {};
      expect((await render()).code).toBe(0);
      expect(secretsIn(join(out, 'secret.yaml')).get('hearth-mqtt')).toEqual(first);
      const { passwd, ...passwords } = first;
      for (const pw of Object.values(passwords)) expect(pw).toMatch(/^[0-9a-f]{64}$/);
      expect(
        passwd
          ?.split('\n')
          .filter(Boolean)
          .map((l) => l.split(':')[0])
          .sort(),
      ).toEqual(Object.keys(passwords).sort());
      for (const line of passwd?.trim().split('\n') ?? []) expect(line).toMatch(/^[a-z0-9-]+:\$7\$101\$/);

      const acl = parse(readFileSync(join(out, 'configmap-mosquitto-config.yaml'), 'utf8')).data.acl;
      writeFileSync(join(out, 'passwd'), passwd ?? '', { mode: 0o600 });
      writeFileSync(join(out, 'acl'), acl);
      const broker = await TestMosquitto.start({
        extraConfig: [`user ${userInfo().username}`, `password_file ${out}/passwd`, `acl_file ${out}/acl`],
      });
      try {
        const connect = (username: string, password: string) =>
          mqtt.connectAsync(broker.url, { username, password, reconnectPeriod: 0 }, false).then(
            (c) => c.endAsync().then(() => 'in'),
            (err: Error) => err.message,
          );
        for (const [user, pw] of Object.entries(passwords)) expect(await connect(user, pw), user).toBe('in');
        expect(await connect('hearth-api', passwords['hearth-controller'] ?? '')).toMatch(/Not authorized/i);
      } finally {
        await broker.stop();
      }
    },
  );
});

describe('hearth kube render: Pod Security, serial devices, monitoring', () => {
  /** Every pod template of the rendered Deployments and StatefulSets, by file. */
  const podsOf = (files: Map<string, string>) =>
    [...files.entries()]
      .filter(([name]) => name.startsWith('deployment-') || name.startsWith('statefulset-'))
      .map(([name, text]) => ({ name, spec: parse(text).spec.template.spec }));
  const namespaceOf = (files: Map<string, string>) =>
    parse(files.get('namespace.yaml') as string).metadata.labels as Record<string, string>;
  const hostPathKitchen: [string, string] = [', serialDevice: { resource: squat.ai/serial } }', ' }'];

  it('labels the namespace with the level its pods need; where it says restricted, every pod meets the restricted rules', () => {
    const cases: Array<[string, string, string]> = [
      ['the example', example, 'restricted'],
      [
        'a claim for backups',
        configWith([
          backupBlock,
          [`    ${exampleMqtt}\n`, `    ${exampleMqtt}\n    backups: { claim: hearth-backups }\n`],
        ]),
        'restricted',
      ],
      [
        'external backends',
        configWith([
          ['postgres: { inCluster: true }', 'postgres: { external: { host: 192.168.1.5 } }'],
          [exampleMqtt, 'mqtt: { external: { host: 192.168.1.5 } }'],
        ]),
        'restricted',
      ],
      // NFS is not among the restricted volume types; baseline allows it.
      ['backups on NFS', configWith([backupBlock, nfsVolume]), 'baseline'],
      // A serial port from the node: only a privileged container may open it.
      ['a serial port by hostPath', configWith([hostPathKitchen]), 'privileged'],
    ];
    for (const [what, file, level] of cases) {
      const files = renderKube(file, { env: {} });
      const labels = namespaceOf(files);
      for (const mode of ['enforce', 'audit', 'warn'])
        expect(labels[`pod-security.kubernetes.io/${mode}`], `${what}: ${mode}`).toBe(level);
      const pods = podsOf(files);
      expect(pods.length, what).toBeGreaterThanOrEqual(4);
      for (const { name, spec } of pods) {
        if (level === 'restricted') expect(restrictedViolations(spec), `${what}: ${name}`).toEqual([]);
        // Independently of the checker, what restricted asks of every container, init ones too.
        const pod = spec.securityContext;
        expect(pod.seccompProfile, `${what}: ${name}`).toEqual({ type: 'RuntimeDefault' });
        expect(pod.runAsNonRoot, `${what}: ${name}`).toBe(true);
        expect(pod.runAsUser, `${what}: ${name}`).toBeGreaterThan(0);
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          const sc = c.securityContext;
          if (sc.privileged) continue;
          expect(sc, `${what}: ${name}: ${c.name}`).toMatchObject({
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
          });
        }
      }
    }
  });

  it('the restricted rules name what a pod breaks', () => {
    const good = { containers: [{ name: 'a' }], securityContext: {} };
    expect(restrictedViolations(good as never)).toEqual([
      'container a: allowPrivilegeEscalation is not false',
      'container a: runAsNonRoot is not true',
      'container a: seccompProfile is not RuntimeDefault or Localhost',
      'container a: capabilities do not drop ALL',
    ]);
    const bad = {
      hostNetwork: true,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      volumes: [{ name: 'nfs', nfs: { server: 'nas', path: '/x' } }],
      containers: [
        {
          name: 'b',
          ports: [{ containerPort: 80, hostPort: 80 }],
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] },
          },
        },
      ],
    };
    expect(restrictedViolations(bad as never)).toEqual([
      'hostNetwork: true',
      'container b: adds capability NET_ADMIN',
      'container b: hostPort 80',
      'volume nfs: nfs',
      'container b: adds capability NET_ADMIN',
    ]);
    expect(podSecurityLevel(bad as never)).toBe('privileged');
  });

  it('serialDevice: the port comes from a device plugin, with no privilege; without it, from the node, privileged', () => {
    const plugin = parse(
      renderKube(example, { env: {} }).get('deployment-hearth-agent-kitchen.yaml') as string,
    );
    const pod = plugin.spec.template.spec;
    expect(pod.containers[0].resources.limits).toEqual({
      cpu: '500m',
      memory: '256Mi',
      'squat.ai/serial': '1',
    });
    expect(pod.volumes.map((v: { name: string }) => v.name)).toEqual(['config', 'tmp']);
    expect(podSecurityLevel(pod)).toBe('restricted');

    const files = renderKube(configWith([hostPathKitchen]), { env: {} });
    const hostPod = parse(files.get('deployment-hearth-agent-kitchen.yaml') as string).spec.template.spec;
    const serial = '/dev/serial/by-id/usb-mbed_Microcontroller_101000000000000000000002F7F1E9E2-if01';
    expect(hostPod.volumes).toContainEqual({
      name: 'serial-0',
      hostPath: { path: serial, type: 'CharDevice' },
    });
    expect(hostPod.containers[0].volumeMounts).toContainEqual({ name: 'serial-0', mountPath: serial });
    expect(hostPod.containers[0].securityContext).toMatchObject({ privileged: true, runAsNonRoot: true });
    expect(hostPod.containers[0].resources.limits['squat.ai/serial']).toBeUndefined();
    expect(hostPod.securityContext.supplementalGroups).toEqual([20]);
    // Only that pod needs the privileged level; every other one still meets restricted.
    for (const { name, spec } of podsOf(files)) {
      if (name === 'deployment-hearth-agent-kitchen.yaml') continue;
      expect(restrictedViolations(spec), name).toEqual([]);
    }

    // On an agent without a serial port it is a mistake, named at its line.
    const text = exampleText.replace(
      '    agents:\n',
      '    agents:\n      main: { serialDevice: { resource: squat.ai/serial } }\n',
    );
    const file = configWith([
      ['    agents:\n', '    agents:\n      main: { serialDevice: { resource: squat.ai/serial } }\n'],
    ]);
    expect(renderError(file)).toMatch(
      new RegExp(
        `cluster\\.yaml:${lineOf(text, 'main: { serialDevice')}:\\d+: cluster\\.kubernetes\\.agents\\.main\\.serialDevice: agent "main" has no serial device`,
      ),
    );
    expect(renderError(configWith([['resource: squat.ai/serial', 'resource: serial']]))).toMatch(
      /cluster\.kubernetes\.agents\.kitchen\.serialDevice\.resource: must be a device plugin's extended resource name like squat\.ai\/serial/,
    );
  });

  it("monitoring: a PodMonitor of every role's metrics port, with the CRD's fields only, and Prometheus's namespace let in", () => {
    const files = renderKube(example, { env: {} });
    const monitor = parse(files.get('podmonitor-hearth.yaml') as string);
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata).toMatchObject({ name: 'hearth', namespace: 'hearth' });
    expect(monitor.metadata.labels.release).toBe('kube-prometheus-stack');
    // Only fields of the PodMonitor CRD (monitoring.coreos.com_podmonitors.yaml), with its rules:
    // `selector` required, `interval` of its Duration pattern, `scheme` http or https.
    const specFields = ['selector', 'namespaceSelector', 'podMetricsEndpoints', 'podTargetLabels'];
    expect(Object.keys(monitor.spec).sort()).toEqual([...specFields].sort());
    expect(monitor.spec.namespaceSelector).toEqual({ matchNames: ['hearth'] });
    expect(monitor.spec.podTargetLabels).toEqual(['app.kubernetes.io/component']);
    expect(monitor.spec.podMetricsEndpoints).toHaveLength(1);
    const endpoint = monitor.spec.podMetricsEndpoints[0];
    expect(Object.keys(endpoint).sort()).toEqual(['interval', 'path', 'port', 'scheme']);
    expect(endpoint).toEqual({ port: 'metrics', path: '/metrics', scheme: 'http', interval: '30s' });
    expect(endpoint.interval).toMatch(durationPattern);
    // It finds every role, each with a port of that name (http.metrics.port).
    const selector = monitor.spec.selector.matchLabels as Record<string, string>;
    const roles = podsOf(files).filter(({ name }) => name.startsWith('deployment-'));
    expect(roles).toHaveLength(4);
    for (const { name } of roles) {
      const labels = parse(files.get(name) as string).spec.template.metadata.labels;
      expect(labels, name).toMatchObject(selector);
      const ports = parse(files.get(name) as string).spec.template.spec.containers[0].ports;
      expect(ports, name).toContainEqual({ name: 'metrics', containerPort: 9464, protocol: 'TCP' });
    }
    // Not the backends: they have no such port.
    for (const backend of ['statefulset-postgres.yaml', 'statefulset-mosquitto.yaml'])
      expect(parse(files.get(backend) as string).spec.template.metadata.labels).not.toMatchObject(selector);
    const policy = parse(files.get('networkpolicy-hearth-metrics.yaml') as string).spec;
    expect(policy.podSelector).toEqual({ matchLabels: selector });
    expect(policy.ingress).toEqual([
      {
        from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
        ports: [{ protocol: 'TCP', port: 9464 }],
      },
    ]);
    // The control port stays the LAN's.
    const control = parse(files.get('networkpolicy-hearth-control.yaml') as string).spec.ingress[0];
    expect(control.ports).toEqual([{ protocol: 'TCP', port: 8000 }]);
  });

  it('monitoring: kind ServiceMonitor follows a headless Service of the metrics ports; another namespace of Prometheus by its labels', () => {
    const file = configWith([
      [
        'monitoring: { kind: PodMonitor, interval: 30s, labels: { release: kube-prometheus-stack } }',
        'monitoring: { kind: ServiceMonitor, interval: 1m, prometheusNamespaceLabels: { team: observability } }',
      ],
    ]);
    const files = renderKube(file, { env: {} });
    expect(files.has('podmonitor-hearth.yaml')).toBe(false);
    const svc = parse(files.get('service-hearth-metrics.yaml') as string);
    expect(svc.spec).toEqual({
      type: 'ClusterIP',
      clusterIP: 'None',
      selector: { 'app.kubernetes.io/name': 'hearth' },
      ports: [{ name: 'metrics', port: 9464, targetPort: 'metrics', protocol: 'TCP' }],
    });
    const monitor = parse(files.get('servicemonitor-hearth.yaml') as string);
    expect(Object.keys(monitor.spec).sort()).toEqual([
      'endpoints',
      'namespaceSelector',
      'podTargetLabels',
      'selector',
    ]);
    expect(svc.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.spec.endpoints).toEqual([
      { port: 'metrics', path: '/metrics', scheme: 'http', interval: '1m' },
    ]);
    expect(monitor.metadata.labels.release).toBeUndefined();
    expect(parse(files.get('networkpolicy-hearth-metrics.yaml') as string).spec.ingress[0].from).toEqual([
      { namespaceSelector: { matchLabels: { team: 'observability' } } },
    ]);
    // A monitor the CRD would refuse is a render error, like any invalid object.
    const bad = new PodMonitor({
      metadata: { name: 'hearth', namespace: 'hearth', labels: {} },
      spec: {
        selector: { matchLabels: {} },
        namespaceSelector: { matchNames: ['hearth'] },
        podTargetLabels: [],
        podMetricsEndpoints: [{ port: 'metrics', path: 'metrics', scheme: 'http', interval: '30 seconds' }],
      },
    });
    expect(() => serialise(bad, 'cluster.yaml')).toThrow(
      /the rendered PodMonitor hearth is not valid Kubernetes: spec\.selector\.matchLabels is empty.*path must start with \/.*interval "30 seconds" is not a Prometheus duration/,
    );
  });

  it('monitoring needs http.metrics, on every interface; both named at their line', () => {
    const noListener = exampleText.replace(/ {2}metrics: \{ port: 9464 \}.*\n/, '');
    const file = configWith([[/ {2}metrics: \{ port: 9464 \}.*\n/.exec(exampleText)?.[0] ?? 'x', '']]);
    expect(renderError(file)).toMatch(
      new RegExp(
        `cluster\\.yaml:${lineOf(noListener, '    monitoring:')}:\\d+: cluster\\.kubernetes\\.monitoring: needs the metrics listener: add \`http: \\{ metrics: \\{ port: 9464 \\} \\}\``,
      ),
    );
    const loopback = configWith([['metrics: { port: 9464 }', 'metrics: { host: 127.0.0.1, port: 9464 }']]);
    expect(renderError(loopback)).toMatch(
      new RegExp(
        `cluster\\.yaml:${lineOf(exampleText, '  metrics: {')}:\\d+: http\\.metrics\\.host: must be 0\\.0\\.0\\.0`,
      ),
    );
    expect(renderError(configWith([['interval: 30s', 'interval: 30 seconds']]))).toMatch(
      /cluster\.kubernetes\.monitoring\.interval: must be a Prometheus duration/,
    );
  });
});

describe.skipIf(mosquittoMissing)(
  'hearth kube render: Home Assistant and zigbee2mqtt on the rendered broker',
  () => {
    it('each may do what it needs and nothing more, with the password file and ACL --with-secrets writes', {
      timeout: 60_000,
    }, async () => {
      const file = configWith();
      const out = join(tempDir(), 'deploy');
      const env = { HEARTH_TOKEN: 'tok-7f3a9c2e51d0b8aa', HEARTH_PG_PASSWORD: 'pg4d2c9e7b' };
      const rendered = await runCli(['kube', 'render', '--config', file, '--out', out, '--with-secrets'], {
        env,
      });
      expect(rendered.code, rendered.stderr).toBe(0);
      const { passwd, ...passwords } = secretsIn(join(out, 'secret.yaml')).get('hearth-mqtt') ?? {};
      const data = parse(readFileSync(join(out, 'configmap-mosquitto-config.yaml'), 'utf8')).data;
      expect(data['mosquitto.conf']).toContain('allow_anonymous false\n');
      writeFileSync(join(out, 'passwd'), passwd ?? '', { mode: 0o600 });
      writeFileSync(join(out, 'acl'), data.acl);
      const broker = await TestMosquitto.start({
        extraConfig: [`user ${userInfo().username}`, `password_file ${out}/passwd`, `acl_file ${out}/acl`],
      });
      const clients: mqtt.MqttClient[] = [];
      try {
        const inboxes = new Map<mqtt.MqttClient, string[]>();
        const as = async (user: string, ...subscriptions: string[]) => {
          const client = await mqtt.connectAsync(
            broker.url,
            { username: user, password: passwords[user], clientId: `test-${user}`, reconnectPeriod: 0 },
            false,
          );
          clients.push(client);
          const inbox: string[] = [];
          inboxes.set(client, inbox);
          client.on('message', (topic) => inbox.push(topic));
          if (subscriptions.length > 0) await client.subscribeAsync(subscriptions, { qos: 1 });
          return client;
        };
        // QoS 1: the broker has routed a message (or dropped it) before it acknowledges it, so a
        // message published after that acknowledgement reaches a subscriber after it.
        const say = (client: mqtt.MqttClient, topic: string) =>
          client.publishAsync(topic, 'x', { qos: 1 }).then(
            () => undefined,
            () => undefined,
          );
        /** Waits for `marker` in the client's inbox, then says what came, in order, and empties it. */
        const received = async (client: mqtt.MqttClient, marker: string) => {
          const inbox = inboxes.get(client) as string[];
          await until(() => inbox.includes(marker), { what: `${marker} to arrive` });
          return inbox.splice(0);
        };

        const controller = await as(
          'hearth-controller',
          'hearth/+/set',
          'hearth/+/state',
          'hearth/cluster/state/+',
          'hearth/cluster/ctl/run',
          'homeassistant/+/hearth/+/config',
          'homeassistant/status',
        );
        const agent = await as('hearth-agent-main', 'hearth/cluster/cmd/main', 'zigbee2mqtt/#');
        const homeassistant = await as(
          'homeassistant',
          'homeassistant/#',
          'hearth/+/state',
          'hearth/cluster/#',
        );
        const zigbee2mqtt = await as('zigbee2mqtt', 'zigbee2mqtt/#', 'hearth/+/state', 'hearth/+/set');

        // Home Assistant: its discovery and hearth's public states in, its status and commands out.
        await say(controller, 'homeassistant/switch/hearth/lamp/config');
        await say(controller, 'hearth/cluster/state/lamp'); // not for Home Assistant's eyes
        await say(controller, 'hearth/lamp/state');
        expect(await received(homeassistant, 'hearth/lamp/state')).toEqual([
          'homeassistant/switch/hearth/lamp/config',
          'hearth/lamp/state',
        ]);
        await say(homeassistant, 'homeassistant/status');
        await say(homeassistant, 'hearth/cluster/state/lamp'); // a forged state
        await say(homeassistant, 'hearth/cluster/ctl/run'); // a forged run request
        await say(homeassistant, 'homeassistant/switch/hearth/lamp/config'); // hearth's discovery
        await say(homeassistant, 'hearth/lamp/state'); // hearth's public state
        await say(homeassistant, 'hearth/lamp/set');
        expect(await received(controller, 'hearth/lamp/set')).toEqual([
          'homeassistant/switch/hearth/lamp/config',
          'hearth/cluster/state/lamp',
          'hearth/lamp/state',
          'homeassistant/status',
          'hearth/lamp/set',
        ]);
        await say(homeassistant, 'hearth/cluster/cmd/main'); // a command to an agent
        await say(zigbee2mqtt, 'zigbee2mqtt/bridge/state');
        expect(await received(agent, 'zigbee2mqtt/bridge/state')).toEqual(['zigbee2mqtt/bridge/state']);
        expect(await received(zigbee2mqtt, 'zigbee2mqtt/bridge/state')).toEqual([
          'hearth/lamp/state',
          'zigbee2mqtt/bridge/state',
        ]);

        // zigbee2mqtt: its own topics both ways, its own discovery, never hearth's.
        await say(agent, 'zigbee2mqtt/plug/set');
        expect(await received(zigbee2mqtt, 'zigbee2mqtt/plug/set')).toEqual(['zigbee2mqtt/plug/set']);
        await say(zigbee2mqtt, 'homeassistant/switch/hearth/lamp/config'); // denied before the grant
        await say(zigbee2mqtt, 'homeassistant/sensor/0x00124b/temperature/config');
        expect(await received(homeassistant, 'homeassistant/sensor/0x00124b/temperature/config')).toEqual([
          'homeassistant/status',
          'homeassistant/sensor/0x00124b/temperature/config',
        ]);
        await say(zigbee2mqtt, 'hearth/lamp/set'); // no commands to hearth
        await say(zigbee2mqtt, 'hearth/cluster/cmd/main');
        await say(zigbee2mqtt, 'zigbee2mqtt/marker');
        expect(await received(agent, 'zigbee2mqtt/marker')).toEqual([
          'zigbee2mqtt/plug/set',
          'zigbee2mqtt/marker',
        ]);
        await say(homeassistant, 'hearth/lamp/set');
        expect(await received(controller, 'hearth/lamp/set')).toEqual(['hearth/lamp/set']);
      } finally {
        await Promise.all(clients.map((c) => c.endAsync(true)));
        await broker.stop();
      }
    });
  },
);
