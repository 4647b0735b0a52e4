import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityView } from '../src/core/runtime-api.js';
import {
  type RelayBoardSimulator,
  type RelayEvent,
  startRelayBoardSimulator,
} from '../src/drivers/relay-board/simulator.js';
import { http, post, tempDir } from './support/hearth.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { letTimePass, until } from './support/wait.js';

/**
 * The sprinkler rules end to end: a real hearth process (`hearth start`) drives the simulated
 * relay board over a real pseudo-terminal, and the assertions are on what the board's relays
 * did, as the board recorded it. The board's dead-man is 1500 ms here instead of ~30 s.
 */
const DEADMAN_MS = 1500;
const REFRESH_MS = 500;

const dir = tempDir('hearth-sprinklers-');
const sims: RelayBoardSimulator[] = [];
const procs: HearthProcess[] = [];

async function board(): Promise<RelayBoardSimulator> {
  const s = await startRelayBoardSimulator({
    path: join(dir, `ttyACM${sims.length}`),
    deadmanMs: DEADMAN_MS,
  });
  sims.push(s);
  return s;
}

async function hearthFor(s: RelayBoardSimulator, name: string): Promise<HearthProcess> {
  const config = join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    [
      'http: { host: 127.0.0.1, port: 0 }',
      `storage: { sqlite: ${name}.db }`,
      'sprinklers:',
      `  - { id: garden, kind: relay-board/v1, name: Garden, path: ${s.path}, zones: [front, back, beds],`,
      `      settleMs: 100, refreshMs: ${REFRESH_MS}, timeoutMs: 300, maxZonesOpen: 1 }`,
      '',
    ].join('\n'),
  );
  const p = await spawnHearth(config);
  procs.push(p);
  await until(async () => (await zones(p)).every((z) => z.available), { what: 'the zones to be available' });
  return p;
}

async function zones(p: HearthProcess): Promise<EntityView[]> {
  const r = await http(`${p.url}/api/v1/entities`);
  return (JSON.parse(r.body) as { entities: EntityView[] }).entities.filter((e) => e.kind === 'valve');
}

async function entity(p: HearthProcess, id: string): Promise<EntityView> {
  const r = await http(`${p.url}/api/v1/entities/${id}`);
  return (JSON.parse(r.body) as { entity: EntityView }).entity;
}

async function command(p: HearthProcess, id: string, name: string, body: unknown = {}) {
  const r = await post(`${p.url}/api/v1/entities/${id}/commands/${name}`, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: r.status,
    body: JSON.parse(r.body) as { entity: EntityView; error?: { message: string } },
  };
}

/** The most relays on at any one instant, replaying the board's own record in order. */
function mostOnAtOnce(events: readonly RelayEvent[], initiallyOn: readonly number[] = []): number {
  const on = new Set(initiallyOn);
  let most = on.size;
  for (const e of events) {
    if (e.on) on.add(e.relay);
    else on.delete(e.relay);
    most = Math.max(most, on.size);
  }
  return most;
}

const brief = (events: readonly RelayEvent[]) => events.map(({ relay, on, cause }) => [relay, on, cause]);

let simA: RelayBoardSimulator;
let simB: RelayBoardSimulator;
let hearthA: HearthProcess;
let hearthB: HearthProcess;

beforeAll(async () => {
  [simA, simB] = [await board(), await board()];
  // Two processes start side by side: A for the long story, B to be killed with -9.
  [hearthA, hearthB] = await Promise.all([hearthFor(simA, 'a'), hearthFor(simB, 'b')]);
}, 30_000);

afterAll(async () => {
  for (const p of procs)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await Promise.all(sims.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('sprinklers: a real hearth process and the simulated relay board on a pty', () => {
  it('turned every relay off at start', () => {
    for (const s of [simA, simB]) expect(s.received.map((r) => r.line)).toEqual(['1,off', '2,off', '3,off']);
  });

  it('a valve closes at the end of its duration, by an explicit off', async () => {
    const since = simA.events.length;
    const r = await command(hearthA, 'garden-front', 'open', { seconds: 1 });
    expect(r.status).toBe(200);
    expect(r.body.entity).toMatchObject({
      id: 'garden-front',
      kind: 'valve',
      state: 'open',
      available: true,
    });
    const off = await simA.waitForOff(1, 3000);
    const events = simA.events.slice(since);
    expect(brief(events)).toEqual([
      [1, true, 'on'],
      [1, false, 'off'],
    ]);
    const openFor = off.at - (events[0]?.at ?? 0);
    expect(openFor).toBeGreaterThanOrEqual(990);
    expect(openFor).toBeLessThan(1400);
    await until(async () => (await entity(hearthA, 'garden-front')).state === 'closed', { what: 'closed' });
    expect((await entity(hearthA, 'garden-front')).attributes).toEqual({
      relay: 1,
      maxOpenMinutes: 30,
      closedBy: 'duration',
    });
  });

  it('two zones are never open at once when the limit is 1, even with opens racing', async () => {
    const since = simA.events.length;
    expect((await command(hearthA, 'garden-front', 'open', { seconds: 30 })).status).toBe(200);
    expect((await command(hearthA, 'garden-back', 'open', { seconds: 30 })).status).toBe(200);
    const racing = await Promise.all(
      ['garden-beds', 'garden-front', 'garden-back'].map((id) =>
        command(hearthA, id, 'open', { seconds: 30 }),
      ),
    );
    expect(racing.map((r) => r.status)).toEqual([200, 200, 200]);
    const open = (await zones(hearthA)).filter((z) => z.state === 'open');
    expect(open).toHaveLength(1);
    expect(simA.onRelays()).toEqual([open[0]?.attributes.relay]);
    expect((await command(hearthA, open[0]?.id ?? '', 'close')).status).toBe(200);

    const events = simA.events.slice(since);
    // Racing opens run in arrival order; one that finds its zone open just extends it.
    const ons = events.filter((e) => e.on).length;
    expect(ons).toBeGreaterThanOrEqual(4);
    expect(events.filter((e) => !e.on).map((e) => e.cause)).toEqual(new Array(ons).fill('off'));
    expect(mostOnAtOnce(events)).toBe(1);
    expect(simA.onRelays()).toEqual([]);
  });

  it('garbage and ERROR lines close the open zone and are survived', async () => {
    expect((await command(hearthA, 'garden-beds', 'open', { seconds: 30 })).status).toBe(200);
    let since = simA.events.length;
    await simA.sendRaw('\u00fe\u00ff\u0000 line noise\r\n');
    expect(await simA.waitForEvent((e) => e.relay === 3 && !e.on, { since, timeoutMs: 3000 })).toMatchObject({
      cause: 'off',
    });
    await until(async () => (await entity(hearthA, 'garden-beds')).state === 'closed', { what: 'closed' });
    expect((await entity(hearthA, 'garden-beds')).attributes).toMatchObject({
      closedBy: 'failure',
      failure: expect.stringMatching(/^the relay board sent garbage: /),
    });

    expect((await command(hearthA, 'garden-beds', 'open', { seconds: 30 })).status).toBe(200);
    since = simA.events.length;
    await simA.sendRaw('ERROR: overcurrent on relay 3\r\n');
    expect(await simA.waitForEvent((e) => e.relay === 3 && !e.on, { since, timeoutMs: 3000 })).toMatchObject({
      cause: 'off',
    });
    await until(async () => (await entity(hearthA, 'garden-beds')).state === 'closed', { what: 'closed' });
    expect((await entity(hearthA, 'garden-beds')).attributes.failure).toBe(
      'the relay board said "ERROR: overcurrent on relay 3" unasked',
    );

    expect((await http(`${hearthA.url}/healthz`)).status).toBe(200);
    expect((await command(hearthA, 'garden-beds', 'open', { seconds: 30 })).status).toBe(200);
    expect(simA.onRelays()).toEqual([3]);
    expect((await command(hearthA, 'garden-beds', 'close')).status).toBe(200);
    expect(simA.onRelays()).toEqual([]);
  });

  it('no relay was dropped by the dead-man while hearth was running', () => {
    expect(simA.events.filter((e) => e.cause === 'deadman')).toEqual([]);
  });

  it('unplug: zones unavailable, the board drops the relay; replug: all off again, nothing resumes', async () => {
    expect((await command(hearthA, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    await simA.unplug();
    await until(async () => !(await entity(hearthA, 'garden-front')).available, { what: 'unavailable' });
    const front = await entity(hearthA, 'garden-front');
    expect(front).toMatchObject({ state: 'closed', attributes: { closedBy: 'port' } });
    expect(front.reason).toMatch(new RegExp(`^relay board port ${simA.path}: `));
    // The board is powered on its own: its dead-man closes the valve hearth can no longer reach.
    const off = await simA.waitForOff(1, DEADMAN_MS + 1000);
    expect(off.cause).toBe('deadman');

    const before = simA.received.length;
    await simA.plug();
    await until(async () => (await zones(hearthA)).every((z) => z.available), {
      timeoutMs: 10_000,
      what: 'available again',
    });
    expect(simA.received.slice(before).map((r) => r.line)).toEqual(['1,off', '2,off', '3,off']);
    // Observation window: a zone resumed would be switched on again at the next refresh (every
    // REFRESH_MS); two of them pass from the moment all was available again, and nothing is sent.
    await letTimePass(2 * REFRESH_MS);
    expect(simA.received.slice(before).map((r) => r.line)).toEqual(['1,off', '2,off', '3,off']);
    expect(simA.onRelays()).toEqual([]);
    expect((await entity(hearthA, 'garden-front')).state).toBe('closed');

    expect((await command(hearthA, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    expect(simA.onRelays()).toEqual([1]);
  });

  it('SIGTERM closes the open zone at once, by an explicit off, and exits 0', async () => {
    expect(simA.onRelays()).toEqual([1]);
    const since = simA.events.length;
    const killedAt = Date.now();
    hearthA.child.kill('SIGTERM');
    expect(await hearthA.exited).toEqual({ code: 0, signal: null });
    const events = simA.events.slice(since);
    expect(brief(events)).toEqual([[1, false, 'off']]);
    expect((events[0]?.at ?? 0) - killedAt).toBeLessThan(1000);
    expect(simA.onRelays()).toEqual([]);
  });

  it("after kill -9 with a zone open, the board's dead-man closes it within its dead-man time", async () => {
    const from = simB.received.length;
    expect((await command(hearthB, 'garden-back', 'open', { seconds: 60 })).status).toBe(200);
    // Refreshes have kept it on past the dead-man's first chance: one came DEADMAN_MS after the on.
    const ons = () => simB.received.slice(from).filter((r) => r.line === '2,on');
    await until(() => (ons().at(-1)?.at ?? 0) - (ons()[0]?.at ?? Infinity) >= DEADMAN_MS, {
      what: 'a refresh of relay 2 a dead-man time after it went on',
    });
    expect(simB.onRelays()).toEqual([2]);
    const killedAt = Date.now();
    hearthB.child.kill('SIGKILL');
    expect((await hearthB.exited).signal).toBe('SIGKILL');
    const off = await simB.waitForOff(2, DEADMAN_MS + 1000);
    expect(off.cause).toBe('deadman');
    const lastOn = simB.received.findLast((r) => r.line === '2,on');
    const sinceRefresh = off.at - (lastOn?.at ?? 0);
    expect(sinceRefresh).toBeGreaterThanOrEqual(DEADMAN_MS - 5);
    expect(sinceRefresh).toBeLessThan(DEADMAN_MS + 150);
    expect(off.at - killedAt).toBeLessThan(DEADMAN_MS + 150);
    // The refreshes had kept it on until hearth died.
    expect(simB.events.filter((e) => e.relay === 2).map((e) => e.cause)).toEqual(['on', 'deadman']);
    expect(simB.received.at(-1)?.line).toBe('2,on');
  });
});
