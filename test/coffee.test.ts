/**
 * The coffee pot end to end: a real hearth process (`hearth start`) drives the simulated
 * MrCoffeeBot board over a real pseudo-terminal. The board lives in this test process, so it
 * keeps running its firmware rules, and recording them, when hearth is killed.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SerialPort } from 'serialport';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type CoffeeSimulator, startCoffeeSimulator } from '../src/drivers/mrcoffeebot/simulator.js';
import { openSerialPort } from '../src/transport/serial-port.js';
import { startCli } from './support/cli-run.js';
import { http, post, tempDir } from './support/hearth.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { until } from './support/wait.js';

/**
 * The firmware drops the heater 1000 ms after the last B+1, by its own timer. The simulator's
 * timer runs in this process and may fire a little late when the box is busy: this much is
 * allowed on top, and no more.
 */
const TIMER_TOLERANCE_MS = 30;

const dir = tempDir('hearth-coffee-e2e-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let n = 0;
async function setup(): Promise<{ sim: CoffeeSimulator; hearth: HearthProcess }> {
  n++;
  const sim = await startCoffeeSimulator({ path: join(dir, `ttyCOFFEE${n}`) });
  cleanups.push(() => sim.close());
  const config = join(dir, `hearth${n}.yaml`);
  writeFileSync(
    config,
    'http: { host: 127.0.0.1, port: 0 }\n' +
      `storage: { sqlite: data${n}/hearth.db }\n` +
      'coffee:\n' +
      `  - { id: coffee, kind: mrcoffeebot/v1, name: Coffee pot, path: ${sim.path}, settleMs: 100 }\n`,
  );
  const hearth = await spawnHearth(config);
  cleanups.push(() => {
    if (hearth.child.exitCode === null && hearth.child.signalCode === null) hearth.child.kill('SIGKILL');
    return hearth.exited;
  });
  await until(async () => (await entity(hearth, 'coffee')).available === true, { what: 'the pot ready' });
  return { sim, hearth };
}

async function entity(h: HearthProcess, id: string) {
  const r = await http(`${h.url}/api/v1/entities/${id}`);
  expect(r.status).toBe(200);
  return JSON.parse(r.body).entity;
}

async function command(h: HearthProcess, name: string, args: object = {}) {
  const r = await post(`${h.url}/api/v1/entities/coffee/commands/${name}`, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
  return { status: r.status, body: JSON.parse(r.body) };
}

async function brew(h: HearthProcess, sim: CoffeeSimulator): Promise<void> {
  // After a fault hearth refuses to brew until one good status again, and an idle pot is polled
  // every 2 s (pollMs): wait for a couple of polls, late ones included on a loaded machine.
  let r = await command(h, 'brew', { minutes: 1 });
  await until(
    async () => {
      if (r.status !== 200) r = await command(h, 'brew', { minutes: 1 });
      return r.status === 200;
    },
    { intervalMs: 50, what: () => `a brew to be taken (last answer ${r.status} ${JSON.stringify(r.body)})` },
  );
  expect([r.status, r.body.entity?.state, r.body.error?.message]).toEqual([200, 'on', undefined]);
  expect(sim.events.at(-1)).toMatchObject({ heater: true, cause: 'B+1' });
}

/** Resolves once the board has had `count` more heartbeats (B+1) than now: hearth is brewing along. */
function heartbeats(sim: CoffeeSimulator, count: number): Promise<true> {
  const beats = () => sim.received.filter((r) => r.line === 'B+1').length;
  const target = beats() + count;
  return until(() => beats() >= target, { what: () => `${count} more heartbeats (B+1) at the board` });
}

/** What the report prints: kill -9 → heater off, per run. */
const measured: string[] = [];
afterAll(() => {
  if (measured.length > 0) console.log(`coffee e2e timings:\n  ${measured.join('\n  ')}`);
});

describe('a real hearth process and the coffee pot', () => {
  it('off at start; garbage and CRC errors turn it off without harm; off within 1 s of kill -9', async () => {
    const { sim, hearth } = await setup();
    // Off at start: the first word hearth says is B+0.
    expect(sim.received[0]?.line).toBe('B+0');
    expect(sim.heater).toBe(false);
    expect(sim.events.filter((e) => e.heater)).toEqual([]);

    // Garbage mid-brew: heater off by B+0, hearth still answers.
    await brew(hearth, sim);
    let t0 = performance.now();
    await sim.sendRaw('%$#@!garbage\n');
    let off = await sim.waitForHeater(false, 2000);
    expect([off.cause, off.t > t0]).toEqual(['B+0', true]);
    measured.push(`garbage line -> heater off: ${(off.t - t0).toFixed(1)} ms`);

    // Half a line mid-brew: the next answer is spoilt, heater off.
    await brew(hearth, sim);
    t0 = performance.now();
    await sim.sendRaw('W+1.5');
    off = await sim.waitForHeater(false, 2000);
    expect([off.cause, off.t > t0]).toEqual(['B+0', true]);
    measured.push(`partial line -> heater off: ${(off.t - t0).toFixed(1)} ms`);

    // A CRC error mid-brew: heater off; the sensor shows why.
    await brew(hearth, sim);
    t0 = performance.now();
    sim.crcError = true;
    off = await sim.waitForHeater(false, 2000);
    expect([off.cause, off.t > t0]).toEqual(['B+0', true]);
    measured.push(`CRC error -> heater off: ${(off.t - t0).toFixed(1)} ms`);
    await until(async () => (await entity(hearth, 'coffee-temperature')).available === false, {
      what: 'sensor',
    });
    expect((await entity(hearth, 'coffee-temperature')).reason).toBe(
      'the temperature sensor failed its CRC check (T+-1000.0)',
    );
    sim.crcError = false;
    expect((await http(`${hearth.url}/api/v1/entities`)).status).toBe(200);
    expect(hearth.child.exitCode).toBe(null);

    // Brewing again, then kill -9: the board's own rule must end the brew.
    await killMidBrew(sim, hearth);
  });

  it('off within 1 s of kill -9 again, from a fresh start', async () => {
    const { sim, hearth } = await setup();
    await killMidBrew(sim, hearth);
  });

  it('off at once on SIGTERM: hearth sends B+0 before it exits', async () => {
    const { sim, hearth } = await setup();
    await brew(hearth, sim);
    await heartbeats(sim, 2);
    const t0 = performance.now();
    hearth.child.kill('SIGTERM');
    const off = await sim.waitForHeater(false, 2000);
    const took = off.t - t0;
    measured.push(`SIGTERM -> heater off: ${took.toFixed(1)} ms (cause ${off.cause})`);
    expect(off.cause).toBe('B+0');
    // Well under the firmware's 1000 ms: no waiting for the dead-man.
    expect(took).toBeLessThan(300);
    expect(await hearth.exited).toEqual({ code: 0, signal: null });
    // And nothing after it: the port is closed, no B+1 ever again.
    expect(sim.received.filter((r) => r.t > off.t).map((r) => r.line)).toEqual([]);
  });

  it('a hearth that was paused (hung) and wakes up never turns the heater back on', async () => {
    const { sim, hearth } = await setup();
    await brew(hearth, sim);
    await heartbeats(sim, 1);
    hearth.child.kill('SIGSTOP');
    const off = await sim.waitForHeater(false, 2000);
    expect(off.cause).toBe('deadman');
    hearth.child.kill('SIGCONT');
    // Awake again, its brew timer still running: it must end the brew, not resume it.
    await until(async () => (await entity(hearth, 'coffee')).state === 'off', { what: 'the brew ended' });
    // The marker: hearth back to idle polls status (S+?), which it does only once B+0 is
    // answered and no brew runs; a B+1 to resume would have come before it.
    await until(() => sim.received.some((r) => r.t > off.t && r.line === 'S+?'), {
      what: 'an idle status poll after the brew ended',
    });
    expect(sim.events.filter((e) => e.t > off.t && e.heater)).toEqual([]);
    expect(sim.heater).toBe(false);
    const received = sim.received.filter((r) => r.t > off.t).map((r) => r.line);
    expect(received).not.toContain('B+1');
    expect(received).toContain('B+0');
  });

  it('hearth sim coffee runs the board in its own process and logs each heater change', async () => {
    const path = join(dir, 'ttyCLI');
    const cli = startCli(['sim', 'coffee', '--path', path], { env: { HEARTH_LOG_LEVEL: 'info' } });
    cleanups.push(() => cli.stop());
    await cli.waitFor(/coffee simulator on serial device (\S+)/, 20_000);
    const port = openSerialPort({ path, baudRate: 115200 });
    cleanups.push(
      () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
    );
    await new Promise<void>((resolve, reject) => port.once('open', resolve).once('error', reject));
    let got = '';
    port.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    // Whatever the board said before (its boot banner, if the pty kept it) is not the answer:
    // a status read first, then only what follows it counts.
    port.write('S+?\n');
    await until(() => /B\+0\n/.test(got), { what: () => `the answer to S+? (got ${JSON.stringify(got)})` });
    got = '';
    port.write('B+1\n');
    await until(() => got.includes('\n'), { what: 'an answer' });
    expect(got).toMatch(/^W\+1\.50,T\+21\.\d,B\+1\n$/);
    // The record, one JSON line per change: on by B+1, off by the dead-man 1 s later.
    const m = await cli.waitFor(/\{[^\n]*"cause":"deadman"[^\n]*\}/, 3000);
    const records = cli
      .stdout()
      .split('\n')
      .filter((l) => l.includes('coffee simulator heater'))
      .map((l) => JSON.parse(l) as { heater: boolean; cause: string; at: number });
    expect(records.map((r) => [r.heater, r.cause])).toEqual([
      [false, 'boot'],
      [true, 'B+1'],
      [false, 'deadman'],
    ]);
    const [, on, off] = records;
    // Whole-millisecond timestamps: 1000 ms can read as 999.
    expect((off?.at ?? 0) - (on?.at ?? 0)).toBeGreaterThanOrEqual(999);
    expect((off?.at ?? 0) - (on?.at ?? 0)).toBeLessThanOrEqual(1000 + TIMER_TOLERANCE_MS + 1);
    expect(m[0]).toContain('"heater":false');
    expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});

/** Brews, lets a few heartbeats pass, kills hearth with SIGKILL, and checks the board. */
async function killMidBrew(sim: CoffeeSimulator, hearth: HearthProcess): Promise<void> {
  await brew(hearth, sim);
  await heartbeats(sim, 2);
  expect(sim.heater).toBe(true);
  const killedAt = performance.now();
  hearth.child.kill('SIGKILL');
  const off = await sim.waitForHeater(false, 2000);
  expect((await hearth.exited).signal).toBe('SIGKILL');
  const afterKill = off.t - killedAt;
  const afterBeat = off.t - (sim.lastHeartbeatT ?? Number.NaN);
  measured.push(
    `kill -9 -> heater off: ${afterKill.toFixed(1)} ms; last heartbeat -> off: ${afterBeat.toFixed(1)} ms`,
  );
  // The firmware's rule, and only it, turned the heater off: hearth had no chance to.
  expect(off.cause).toBe('deadman');
  expect(afterKill).toBeLessThanOrEqual(1000 + TIMER_TOLERANCE_MS);
  expect(afterBeat).toBeGreaterThanOrEqual(1000);
  expect(afterBeat).toBeLessThanOrEqual(1000 + TIMER_TOLERANCE_MS);
  // hearth was alive and beating until the kill: the last B+1 came within one heartbeat of it.
  expect(killedAt - (sim.lastHeartbeatT ?? 0)).toBeLessThan(300 + 100);
}
