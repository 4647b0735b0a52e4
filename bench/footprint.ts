// Start-up time and idle memory of the built CLI alone (sections 3 and 4 of run.ts, with more
// runs and the figures the budgets name), in about a minute:
//
//   node --import tsx bench/footprint.ts [--runs 10] [--idle-ms 5000] [--no-build]
//
// Start to ready: spawn of `node bin/hearth.js start --config <1 Wemo switch>` to the first 200
// of /readyz; median, min and max of --runs. Idle RSS: VmRSS of that process --idle-ms after
// ready, with 1 switch and with 100 entities (10 Wemo switches on one simulator, 90 buttons).
// A bare `node -e 0` is timed alongside, as the floor. Node reads NODE_EXTRA_CA_CERTS at every
// start (≈ 190 ms on a machine with a big bundle): the figures are taken with the environment
// as it is, and again without that variable when it is set.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startHearth, startSim, writeConfig } from './lib/hearth.js';
import { median } from './lib/load.js';
import { freePort, installCleanup, memoryOf, sleep, stop, stopAll } from './lib/procs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const execFileP = promisify(execFile);
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    'idle-ms': { type: 'string', default: '5000' },
    'no-build': { type: 'boolean', default: false },
  },
});
const runs = Number(opts.runs);
const idleMs = Number(opts['idle-ms']);

interface Figures {
  env: string;
  nodeMs: number;
  readyMs: number[];
  rss1MiB: number;
  rss100MiB: number;
}

const f0 = (v: number) => v.toFixed(0);
const f1 = (v: number) => v.toFixed(1);

async function bareNode(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await execFileP(process.execPath, ['-e', '0']);
    times.push(performance.now() - t0);
  }
  return median(times);
}

async function rssAfterIdle(tmp: string, simPort: number, switches: number, buttons: number) {
  const port = await freePort();
  const config = writeConfig(tmp, `idle-${switches}-${buttons}.yaml`, {
    port,
    dbPath: path.join(tmp, `idle-${switches}-${buttons}.db`),
    switches: Array.from({ length: switches }, (_, i) => ({ id: `plug${i + 1}`, simPort })),
    buttons: Array.from({ length: buttons }, (_, i) => `button${i + 1}`),
  });
  const h = await startHearth(root, 'hearth-idle', config, port);
  await sleep(idleMs);
  const mem = memoryOf(h.proc.pid);
  await stop(h.proc);
  if (!mem) throw new Error('could not read /proc/<pid>/status');
  return mem.rssMiB;
}

async function measure(env: string, tmp: string, simPort: number): Promise<Figures> {
  const nodeMs = await bareNode();
  const readyMs: number[] = [];
  const dbPath = path.join(tmp, `startup-${env}.db`);
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const config = writeConfig(tmp, 'startup.yaml', {
      port,
      dbPath,
      switches: [{ id: 'lamp', simPort }],
      buttons: [],
    });
    const h = await startHearth(root, `hearth-startup-${i}`, config, port, 10_000);
    readyMs.push(h.readyMs);
    await stop(h.proc);
  }
  const rss1MiB = await rssAfterIdle(tmp, simPort, 1, 0);
  const rss100MiB = await rssAfterIdle(tmp, simPort, 10, 90);
  return { env, nodeMs, readyMs, rss1MiB, rss100MiB };
}

async function main(): Promise<void> {
  installCleanup();
  if (!opts['no-build']) await execFileP('npm', ['run', 'build'], { cwd: root });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hearth-footprint-'));
  try {
    const sim = await startSim(root, 'sim-footprint');
    const results: Figures[] = [];
    const extraCa = process.env.NODE_EXTRA_CA_CERTS;
    results.push(await measure(extraCa ? 'NODE_EXTRA_CA_CERTS set' : 'as is', tmp, sim.port));
    if (extraCa) {
      delete process.env.NODE_EXTRA_CA_CERTS;
      results.push(await measure('without NODE_EXTRA_CA_CERTS', tmp, sim.port));
      process.env.NODE_EXTRA_CA_CERTS = extraCa;
    }
    console.log(
      `hearth footprint: node ${process.version}, load average ${os.loadavg()[0]?.toFixed(2)}, ${runs} runs, RSS ${idleMs} ms after ready`,
    );
    for (const r of results) {
      const sorted = [...r.readyMs].sort((a, b) => a - b);
      console.log(
        `${r.env}: node -e 0 ${f0(r.nodeMs)} ms; start→ready median ${f0(median(sorted))} ms ` +
          `(min ${f0(sorted[0] ?? Number.NaN)}, max ${f0(sorted.at(-1) ?? Number.NaN)}; budget < 500); ` +
          `idle RSS 1 switch ${f1(r.rss1MiB)} MiB, 100 entities ${f1(r.rss100MiB)} MiB (budget < 60)`,
      );
    }
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
