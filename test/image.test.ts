import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Copy,
  copiesOf,
  dockerignore,
  execForm,
  keyValues,
  parseDockerfile,
  type Stage,
} from './support/dockerfile.js';
import { http, post, tempDir } from './support/hearth.js';
import { repoRoot, spawnReady } from './support/process.js';

const run = promisify(execFile);
const read = (file: string) => readFileSync(join(repoRoot, file), 'utf8');
const dockerfile = parseDockerfile(read('Dockerfile'));
const sent = dockerignore(read('.dockerignore'));
const pkg = JSON.parse(read('package.json')) as { version: string; license: string };
const runtime = dockerfile.stages.at(-1) as Stage;
const buildStage = dockerfile.stages.find((s) => s.name === 'build') as Stage;

function all(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

function one(stage: Stage, keyword: string): string {
  const found = all(stage, keyword);
  expect(found, `${keyword} in the runtime stage`).toHaveLength(1);
  return found[0] as string;
}

/** The HEALTHCHECK's command (exec form), as Docker runs it inside the container. */
function healthcheckCommand(): string[] {
  const args = one(runtime, 'HEALTHCHECK');
  const command = execForm(args.slice(args.indexOf('CMD') + 3));
  expect(command, 'HEALTHCHECK CMD in exec form').toBeDefined();
  return command as string[];
}

// What can be checked without a Docker engine, so the Dockerfile cannot rot silently.
describe('the Dockerfile', () => {
  it('builds on one pinned, slim Node LTS base for both stages (the native addons match the runtime)', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    const base = dockerfile.globalArgs.get('NODE_IMAGE') ?? '';
    const m = /^node:(\d+)-([a-z]+)-slim$/.exec(base);
    expect(m, `ARG NODE_IMAGE=${base}: node:<major>-<debian>-slim, pinned by tag`).not.toBeNull();
    expect(Number(m?.[1]) % 2, 'an even (LTS) Node major').toBe(0);
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(20);
    for (const stage of dockerfile.stages) expect(stage.from).toBe(`\${NODE_IMAGE}`);
  });

  it('installs production dependencies only, and runs the install scripts of exactly the packages that have one', () => {
    const installs = dockerfile.stages
      .flatMap((s) => all(s, 'RUN'))
      .filter((r) => /npm (ci|install|i)\b/.test(r));
    expect(installs.length).toBeGreaterThan(0);
    for (const r of installs) expect(r).toMatch(/npm ci --omit=dev\b/);
    expect(all(runtime, 'RUN').join('\n')).not.toMatch(/\bnpm\b/);

    // With --ignore-scripts, a dependency that gains an install script (a native addon) must be
    // added to `npm rebuild`, or the image would lack its compiled part.
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.hasInstallScript && !p.dev)
      .map(([path]) => path.replace(/^.*node_modules\//, ''))
      .sort();
    const rebuild = /npm rebuild ((?:[@\w./-]+ ?)+)/.exec(all(buildStage, 'RUN').join('\n'));
    expect(rebuild?.[1]?.trim().split(/\s+/).sort()).toEqual(withScripts);
  });

  it('builds dist/ with the build script and copies what the CLI needs into the runtime stage', () => {
    expect(all(buildStage, 'RUN').some((r) => r.includes('node scripts/build.mjs'))).toBe(true);
    // Then node_modules is pruned to what dist/ loads (scripts/prune-runtime.mjs), after the build.
    const steps = all(buildStage, 'RUN').join('\n');
    expect(steps.indexOf('node scripts/prune-runtime.mjs')).toBeGreaterThan(
      steps.indexOf('node scripts/build.mjs'),
    );
    const fromBuild = copiesOf(runtime)
      .filter((c) => c.from === 'build')
      .flatMap((c) => c.sources);
    // package.json: "type": "module" for bin/hearth.js, and how the CLI finds examples/.
    for (const p of ['/app/package.json', '/app/node_modules', '/app/dist']) expect(fromBuild).toContain(p);
    const fromContext = copiesOf(runtime)
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    expect(fromContext).toEqual(expect.arrayContaining(['bin/', 'examples/']));
  });

  it('runs as a non-root user that the image creates', () => {
    const user = one(runtime, 'USER');
    const uid = user.split(':')[0] as string;
    expect(uid).not.toMatch(/^(0|root)$/);
    // Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    expect(uid).toMatch(/^\d+$/);
    expect(all(runtime, 'RUN').join('\n')).toContain(`--uid ${uid}`);
  });

  it('has a HEALTHCHECK on /healthz that needs only node (no curl in a slim image)', () => {
    const command = healthcheckCommand();
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toContain('/healthz');
    expect(command.join(' ')).not.toMatch(/\b(curl|wget)\b/);
  });

  it('keeps data in the volume, reads its config from /etc/hearth, exposes both listeners', () => {
    expect(all(runtime, 'VOLUME')).toContain('/var/lib/hearth');
    expect(keyValues(all(runtime, 'ENV').join(' ')).get('HEARTH_CONFIG')).toBe('/etc/hearth/hearth.yaml');
    expect(one(runtime, 'EXPOSE').split(/\s+/).sort()).toEqual(['8000', '8080']);
    // The demo's data (../data next to examples/) must land in the volume on a read-only root.
    expect(all(runtime, 'RUN').join('\n')).toContain('ln -s /var/lib/hearth /app/data');
  });

  it('runs the CLI with a signal-forwarding init, `start` by default', () => {
    const entrypoint = execForm(one(runtime, 'ENTRYPOINT'));
    expect(entrypoint).toEqual(['/usr/bin/tini', '--', 'node', '/app/bin/hearth.js']);
    expect(copiesOf(runtime).some((c) => c.sources.includes('/usr/bin/tini'))).toBe(true);
    expect(execForm(one(runtime, 'CMD'))).toEqual(['start']);
  });

  it('labels the image (OCI), with the version package.json says', () => {
    const labels = keyValues(all(runtime, 'LABEL').join(' '));
    for (const key of ['source', 'version', 'licenses', 'title', 'description']) {
      expect(labels.has(`org.opencontainers.image.${key}`), key).toBe(true);
    }
    expect(labels.get('org.opencontainers.image.licenses')).toBe(pkg.license);
    const versionArg = all(runtime, 'ARG').find((a) => a.startsWith('HEARTH_VERSION='));
    expect(versionArg).toBe(`HEARTH_VERSION=${pkg.version}`);
  });

  it('copies only files that exist and that .dockerignore sends', () => {
    for (const stage of dockerfile.stages) {
      for (const copy of copiesOf(stage).filter((c) => c.from === undefined)) {
        for (const source of copy.sources) {
          const path = source.replace(/\/$/, '');
          expect(existsSync(join(repoRoot, path)), `Dockerfile:${copy.line}: ${source} exists`).toBe(true);
          expect(sent(path), `Dockerfile:${copy.line}: .dockerignore sends ${source}`).toBe(true);
        }
      }
    }
    // What must never be in the context, however it got there.
    for (const path of [
      'node_modules/fastify/package.json',
      'dist/hearth.mjs',
      'data/demo.db',
      '.git/config',
      'secrets.yaml',
      'examples/secrets.yaml',
      'examples/data/hearth.db',
      'hearth.db',
      'test/demo.test.ts',
      'src/core/serial-queue.test.ts',
      '.ci/run',
    ]) {
      expect(sent(path), `.dockerignore keeps out ${path}`).toBe(false);
    }
    expect(sent('src/cli/main.ts')).toBe(true);
  });

  it('its HEALTHCHECK command says 0 for a running hearth and 1 when nothing answers', async () => {
    const [node, ...args] = healthcheckCommand();
    expect(node).toBe('node');
    const demo = await spawnReady(['bin/hearth.js', 'start', '--demo'], { HEARTH_PORT: '0' });
    try {
      const healthy = spawnSync(process.execPath, args, {
        env: { ...process.env, HEARTH_HEALTHCHECK_URL: `${demo.url}/healthz` },
        timeout: 10_000,
      });
      expect(healthy.status).toBe(0);
    } finally {
      demo.child.kill('SIGTERM');
    }
    await demo.exited;
    const gone = spawnSync(process.execPath, args, {
      env: { ...process.env, HEARTH_HEALTHCHECK_URL: `${demo.url}/healthz` },
      timeout: 10_000,
    });
    expect(gone.status).toBe(1);
  });
});

// A production install, as the image's build stage makes it: downloads packages and compiles
// better-sqlite3 where no prebuilt binary can be fetched (about 2 minutes on a 2-core machine
// without access to GitHub), so it runs only with HEARTH_TEST_PROD_INSTALL=1.
const prodInstall = process.env.HEARTH_TEST_PROD_INSTALL === '1';
if (!prodInstall)
  console.warn('image.test.ts: production install tests skipped; HEARTH_TEST_PROD_INSTALL=1 runs them');

describe.skipIf(!prodInstall)('a production install', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** The build context: the working tree's files (tracked or not, minus .gitignore), as .dockerignore filters them. */
  function context(): string {
    const dir = tempDir('hearth-image-context-');
    dirs.push(dir);
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
      .split('\0')
      .filter((f) => f !== '' && existsSync(join(repoRoot, f)) && sent(f));
    for (const f of files) cpSync(join(repoRoot, f), join(dir, f), { recursive: true });
    return dir;
  }

  /** Starts `node BIN start --demo` with no socat on PATH (the image has none) and checks it serves. */
  async function demoServes(bin: string): Promise<void> {
    const empty = tempDir('hearth-image-path-');
    dirs.push(empty);
    const demo = await spawnReady([bin, 'start', '--demo'], { HEARTH_PORT: '0', PATH: empty });
    try {
      expect((await http(`${demo.url}/readyz`)).status).toBe(200);
      expect((await post(`${demo.url}/api/v0/switches/lamp/toggle/`)).body).toBe('OK');
      // Without socat the simulated serial devices are unavailable, not a crash.
      const coffee = JSON.parse((await http(`${demo.url}/api/v1/entities/coffee`)).body).entity;
      expect(coffee.available).toBe(false);
      expect(demo.output()).toContain('cannot run socat');
    } finally {
      demo.child.kill('SIGTERM');
    }
    expect((await demo.exited).code).toBe(0);
  }

  it('`npm ci --omit=dev` builds dist/ (the prepare script) and the demo runs from it', {
    timeout: 300_000,
  }, async () => {
    const dir = context();
    await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: dir,
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(statSync(join(dir, 'dist', 'hearth.mjs')).size).toBeGreaterThan(100_000);
    expect(existsSync(join(dir, 'node_modules', 'vitest'))).toBe(false);
    await demoServes(join(dir, 'bin', 'hearth.js'));
  });

  it("the Dockerfile's own steps, without Docker: its build stage's commands, then its runtime stage's files", {
    timeout: 300_000,
  }, async () => {
    const ctx = context();
    const buildDir = tempDir('hearth-image-build-');
    const app = tempDir('hearth-image-app-');
    dirs.push(buildDir, app);
    const stages: Record<string, string> = { build: buildDir, runtime: app };
    // COPY as Docker does it: a folder's contents into the destination; a file into a
    // destination ending in `/`, or as the destination. /app is the stages' WORKDIR.
    const copy = (c: Copy, into: string) => {
      for (const source of c.sources) {
        const from =
          c.from === undefined
            ? join(ctx, source)
            : join(stages[c.from] ?? '', source.replace(/^\/app\/?/, ''));
        const to = join(into, c.dest.replace(/^\/app\/?/, ''));
        if (statSync(from).isDirectory()) cpSync(from, to, { recursive: true });
        else if (c.dest.endsWith('/')) cpSync(from, join(to, basename(from)));
        else cpSync(from, to);
      }
    };
    // The build stage, in order. apt-get (build tools, tini) and ENV are the base image's
    // business: this machine has its own compiler and Node headers (npm's nodedir).
    for (const ins of buildStage.instructions) {
      if (ins.keyword === 'COPY') {
        for (const c of copiesOf({ ...buildStage, instructions: [ins] })) copy(c, buildDir);
      } else if (ins.keyword === 'RUN' && !ins.args.includes('apt-get')) {
        const command = ins.args.replace(/--mount=\S+\s*/g, '');
        await run('sh', ['-c', command], { cwd: buildDir, maxBuffer: 64 * 1024 * 1024 });
      }
    }
    // The runtime stage's files (/usr/bin/tini is outside the app, and the base image's).
    for (const c of copiesOf(runtime)) if (c.dest.startsWith('/app/')) copy(c, app);
    expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false);
    // Pruned: what the bundle holds or needed only to be built is gone; the addons stay built.
    for (const gone of ['esbuild', 'kubernetes-models', 'fastify', 'zod', '.bin', 'better-sqlite3/deps'])
      expect(existsSync(join(app, 'node_modules', gone)), gone).toBe(false);
    expect(
      existsSync(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')),
    ).toBe(true);
    await demoServes(join(app, 'bin', 'hearth.js'));
  });
});

// The image itself, where a Docker engine answers (skipped with the reason printed where none
// does). The base image is the Dockerfile's, pulled if missing; where it cannot be pulled (no
// access to Docker Hub), the build uses the STAND-IN scripts/standin-base.sh makes from Debian
// packages and the npm registry, and the test says so.
function engine(): string | undefined {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (info.error) return `no docker command (${info.error.message})`;
  if (info.status !== 0)
    return `no Docker engine answers (docker info: ${info.stderr.trim().split('\n').at(-1)})`;
  return undefined;
}
const noEngine = engine();
if (noEngine) console.warn(`image.test.ts: the image tests are skipped: ${noEngine}`);

/** The last line a failed command printed. */
function why(error: unknown): string {
  const e = error as { stderr?: string; message?: string };
  return ((e.stderr ?? '').trim() || (e.message ?? String(error))).split('\n').at(-1) as string;
}

/** Runs a command; undefined when it exits 0, else the last line it printed. */
const fails = (command: string, args: string[]) =>
  run(command, args, { maxBuffer: 64 * 1024 * 1024 }).then(
    () => undefined,
    (e: unknown) => why(e),
  );

/** The base to build on: the Dockerfile's if present or pullable, else the stand-in. */
async function baseImage(): Promise<{ image: string; standin: boolean }> {
  const base = dockerfile.globalArgs.get('NODE_IMAGE') as string;
  if ((await fails('docker', ['image', 'inspect', base])) === undefined)
    return { image: base, standin: false };
  const pull = await fails('docker', ['pull', base]);
  if (pull === undefined) return { image: base, standin: false };
  console.warn(
    `image.test.ts: cannot pull ${base} (${pull}); building on a STAND-IN for it that scripts/standin-base.sh makes from Debian packages and the npm registry, not the official image`,
  );
  const { stdout } = await run(join(repoRoot, 'scripts', 'standin-base.sh'), [base], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { image: stdout.trim(), standin: true };
}

/**
 * The network the build's RUN steps need for apt-get and `npm ci`: the default bridge, or the
 * host's where the bridge has no way out (an engine started with --iptables=false has no NAT).
 */
async function buildNetwork(image: string): Promise<string> {
  const reaches = (network: string) =>
    fails('docker', [
      'run',
      '--rm',
      '--network',
      network,
      image,
      'node',
      '-e',
      "fetch('https://registry.npmjs.org/',{signal:AbortSignal.timeout(10000)}).then(r=>process.exit(r.ok?0:1),e=>{console.error(e.cause?.code??e.name);process.exit(1)})",
    ]);
  const bridge = await reaches('bridge');
  if (bridge === undefined) return 'default';
  const host = await reaches('host');
  if (host === undefined) {
    console.warn(
      `image.test.ts: the default bridge network does not reach the npm registry (${bridge}); building with --network host`,
    );
    return 'host';
  }
  throw new Error(
    `the npm registry is unreachable from ${image}: bridge network: ${bridge}; host network: ${host}`,
  );
}

describe.skipIf(noEngine !== undefined)('the image', () => {
  const tag = `hearth:test-${process.pid}`;
  const containers: string[] = [];
  let built: Promise<{ standin: boolean }> | undefined;
  afterAll(async () => {
    for (const c of containers) await run('docker', ['rm', '-f', '-v', c]).catch(() => undefined);
    await run('docker', ['rmi', tag]).catch(() => undefined);
  });

  /**
   * Builds the image once. Plain `docker build`: BuildKit where the buildx plugin is installed,
   * else the legacy builder (a docker CLI 23+ without buildx refuses DOCKER_BUILDKIT=1); the
   * Dockerfile needs nothing that only BuildKit has.
   */
  function build(): Promise<{ standin: boolean }> {
    built ??= (async () => {
      const base = await baseImage();
      const network = await buildNetwork(base.image);
      const started = Date.now();
      await run(
        'docker',
        [
          'build',
          '--network',
          network,
          '--build-arg',
          `NODE_IMAGE=${base.image}`,
          '--build-arg',
          `HEARTH_VERSION=${pkg.version}`,
          '-t',
          tag,
          '.',
        ],
        { cwd: repoRoot, maxBuffer: 256 * 1024 * 1024 },
      ).catch((e: { stdout?: string; stderr?: string }) => {
        // The build's last lines, not just "Command failed".
        const tail = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
        throw new Error(`docker build failed on ${base.image}:\n${tail}`);
      });
      const { stdout: size } = await run('docker', ['image', 'inspect', '--format', '{{.Size}}', tag]);
      console.info(
        `image.test.ts: built ${tag} on ${base.image}${base.standin ? ' (a stand-in)' : ''} in ${Math.round((Date.now() - started) / 1000)} s: ${Math.round(Number(size) / 1e6)} MB`,
      );
      return { standin: base.standin };
    })();
    return built;
  }

  /** Runs node -e SCRIPT inside the container; its stdout. */
  async function inside(container: string, script: string): Promise<string> {
    const { stdout } = await run('docker', ['exec', container, 'node', '-e', script]);
    return stdout.trim();
  }

  it('runs the demo read-only as a non-root user, is ready, and stops at once with 0 on docker stop', {
    timeout: 1_800_000,
  }, async () => {
    const { standin } = await build();
    // The labels, and the stand-in's own, which says so in every image built on it.
    const { stdout: labelJson } = await run('docker', [
      'image',
      'inspect',
      '--format',
      '{{json .Config.Labels}}',
      tag,
    ]);
    const labels = JSON.parse(labelJson) as Record<string, string>;
    expect(labels['org.opencontainers.image.version']).toBe(pkg.version);
    expect(labels['org.opencontainers.image.licenses']).toBe(pkg.license);
    expect('org.hearth.standin-base' in labels).toBe(standin);

    const { stdout } = await run('docker', [
      'run',
      '--detach',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '-e',
      'HEARTH_LOG_LEVEL=warn',
      tag,
      'start',
      '--demo',
    ]);
    const container = stdout.trim();
    containers.push(container);
    const status = (path: string) =>
      inside(
        container,
        `fetch('http://127.0.0.1:8000${path}').then(r=>console.log(r.status),()=>console.log(0))`,
      );
    await expect.poll(() => status('/readyz'), { timeout: 30_000, interval: 500 }).toBe('200');
    expect(await inside(container, 'console.log(process.getuid())')).toBe('10001');
    // PID 1 is tini, node its child.
    const { stdout: pid1 } = await run('docker', ['exec', container, 'cat', '/proc/1/comm']);
    expect(pid1.trim()).toBe('tini');
    // The root filesystem is read-only; the volume is not.
    expect(
      await inside(
        container,
        "try{require('fs').writeFileSync('/app/x','');console.log('rw')}catch(e){console.log(e.code)}",
      ),
    ).toBe('EROFS');
    expect(
      await inside(container, "require('fs').readdirSync('/var/lib/hearth').length>0&&console.log('data')"),
    ).toBe('data');
    const toggled = await inside(
      container,
      "fetch('http://127.0.0.1:8000/api/v0/switches/lamp/toggle/',{method:'POST'}).then(r=>r.text()).then(console.log)",
    );
    expect(toggled).toBe('OK');
    // The HEALTHCHECK's own command, as the engine runs it, and the engine's verdict.
    const [, , script] = healthcheckCommand();
    await run('docker', ['exec', container, 'node', '-e', script as string]);
    const { stdout: health } = await run('docker', [
      'inspect',
      '--format',
      '{{.State.Health.Status}}',
      container,
    ]);
    expect(['starting', 'healthy']).toContain(health.trim());

    const started = Date.now();
    await run('docker', ['stop', '--time', '10', container]);
    const stopMs = Date.now() - started;
    const { stdout: code } = await run('docker', ['inspect', '--format', '{{.State.ExitCode}}', container]);
    console.info(`image.test.ts: docker stop took ${stopMs} ms, exit code ${code.trim()}`);
    expect(stopMs).toBeLessThan(5_000);
    expect(code.trim()).toBe('0');
  });

  it('`start --role api` with PostgreSQL unreachable: exit 1 and one line that says so, no stack trace, no password', {
    timeout: 1_800_000,
  }, async () => {
    await build();
    // examples/cluster.yaml, as the image has it; nothing listens on 127.0.0.1:1 in the container.
    const result = spawnSync(
      'docker',
      [
        'run',
        '--rm',
        '--read-only',
        '-e',
        'HEARTH_CONFIG=/app/examples/cluster.yaml',
        '-e',
        'HEARTH_PG_URL=postgres://hearth:pg-password-7c1f@127.0.0.1:1/hearth',
        '-e',
        'HEARTH_TOKEN=0123456789abcdef0123456789abcdef',
        '-e',
        'MQTT_PASSWORD=mqtt-password-9d2e',
        tag,
        'start',
        '--role',
        'api',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const output = `${result.stdout}${result.stderr}`.trim();
    expect(result.status, output).toBe(1);
    expect(output.split('\n'), output).toHaveLength(1);
    expect(output).toMatch(/cannot reach PostgreSQL at 127\.0\.0\.1:1\b/);
    expect(output).not.toMatch(/\n\s+at |pg-password|mqtt-password/);
  });
});
