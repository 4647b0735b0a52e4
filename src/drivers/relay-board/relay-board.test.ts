import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SerialPort } from 'serialport';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fakeDriverContext } from '../../../test/support/driver-context.js';
import { http, post, startTestHearth, type TestHearth } from '../../../test/support/hearth.js';
import { letTimePass, until } from '../../../test/support/wait.js';
import { parseConfig } from '../../config/load.js';
import type { Clock } from '../../core/clock.js';
import { silentLogger } from '../../core/log.js';
import type { EntityView } from '../../core/runtime-api.js';
import { LinePort } from '../../transport/line-port.js';
import { PtyPair } from '../../transport/pty.js';
import { openSerialPort } from '../../transport/serial-port.js';
import { drivers } from '../index.js';
import { relayBoardConfigSchema, relayBoardDriver } from './index.js';
import { confirms, formatCommand, formatInfo, parseAnswer, parseCommand } from './protocol.js';
import {
  BANNER,
  type RelayBoardSimulator,
  type RelayEvent,
  simulator,
  startRelayBoardSimulator,
} from './simulator.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-relay-'));
let ptys = 0;
/** A fresh place for a pty's device end. */
const ttyPath = () => join(dir, `ttyACM${ptys++}`);

const sims: RelayBoardSimulator[] = [];
const hearths: TestHearth[] = [];
const ports: LinePort[] = [];
async function sim(opts: { relays?: number; deadmanMs?: number } = {}): Promise<RelayBoardSimulator> {
  const s = await startRelayBoardSimulator({ path: ttyPath(), ...opts });
  sims.push(s);
  return s;
}
afterEach(async () => {
  // hearth first: it closes its zones against a board that is still there.
  await Promise.all(hearths.splice(0).map((h) => h.close()));
  await Promise.all(ports.splice(0).map((p) => p.close()));
  await Promise.all(sims.splice(0).map((s) => s.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** At no instant more than `max` relays on, replaying the board's own record. */
function mostOnAtOnce(events: readonly RelayEvent[]): number {
  const on = new Set<number>();
  let most = 0;
  for (const e of events) {
    if (e.on) on.add(e.relay);
    else on.delete(e.relay);
    most = Math.max(most, on.size);
  }
  return most;
}

/** A host port on the simulator, as hearth opens it. */
function hostPort(s: Pick<RelayBoardSimulator, 'path'>): LinePort {
  const p = new LinePort({ path: s.path, baudRate: 9600, eol: '\r\n', settleMs: 50 });
  ports.push(p);
  return p;
}
/**
 * Opens a host port; `lines` collects what nobody asked for from then on. The boot banner
 * arrives or not, depending on whether socat passed it on before the port opened; it is dropped,
 * with all else up to a marker line the board sends once the port is open.
 */
async function openHost(s: RelayBoardSimulator): Promise<{ port: LinePort; lines: string[] }> {
  const port = hostPort(s);
  const lines: string[] = [];
  port.on('line', (l) => lines.push(l));
  const opened = new Promise<void>((resolve) => port.once('open', () => resolve()));
  port.start();
  await opened;
  await s.sendRaw('-- marker --\r\n');
  await until(() => lines.includes('-- marker --'), {
    what: () => `the marker line (got ${JSON.stringify(lines)})`,
  });
  lines.length = 0;
  return { port, lines };
}
const ask = (port: LinePort, line: string, timeoutMs = 1000) =>
  port.request(line, { timeoutMs, accept: () => true });

describe('protocol', () => {
  it('formats commands and refuses relay numbers the board cannot have', () => {
    expect(formatCommand(1, true)).toBe('1,on');
    expect(formatCommand(12, false)).toBe('12,off');
    for (const bad of [0, -1, 1.5, 100, Number.NaN])
      expect(() => formatCommand(bad, true)).toThrow(RangeError);
  });

  it('reads INFO and ERROR answers', () => {
    expect(parseAnswer('INFO: requesting relay 3 change to state on')).toEqual({
      type: 'info',
      relay: 3,
      on: true,
    });
    expect(parseAnswer('INFO: requesting relay 12 change to state off')).toEqual({
      type: 'info',
      relay: 12,
      on: false,
    });
    expect(parseAnswer('ERROR: no relay 9')).toEqual({ type: 'error', text: 'no relay 9' });
    expect(parseAnswer(formatInfo(5, false))).toEqual({ type: 'info', relay: 5, on: false });
    expect(confirms(parseAnswer(formatInfo(2, true)), 2, true)).toBe(true);
    expect(confirms(parseAnswer(formatInfo(2, true)), 2, false)).toBe(false);
    expect(confirms(parseAnswer(formatInfo(2, true)), 3, true)).toBe(false);
    expect(confirms(parseAnswer('ERROR: no'), 2, true)).toBe(false);
  });

  it('takes anything else as garbage, strictly', () => {
    const garbage = [
      '',
      BANNER,
      'INFO: requesting relay 1 change to state ON',
      'INFO: requesting relay 01 change to state on',
      'INFO: requesting relay 0 change to state on',
      'INFO: requesting relay 1 change to state on ',
      ' INFO: requesting relay 1 change to state on',
      'info: requesting relay 1 change to state on',
      'INFO: requesting relay 1 change to state onINFO: requesting relay 1 change to state on',
      'INFO: requesting relay 1 change to state on\r',
      'INFO: requesting relay 100 change to state on',
      'ERROR:',
      'ERROR: ',
      'ERROR: bad\u0000',
      'ERROR: caf\u00e9',
      'Error: no',
      '\u00fe\u00ff~~',
    ];
    for (const line of garbage) expect([line, parseAnswer(line)]).toEqual([line, { type: 'garbage', line }]);
  });

  it('reads host commands as the board does', () => {
    expect(parseCommand('1,on')).toEqual({ type: 'set', relay: 1, on: true });
    expect(parseCommand('16,off')).toEqual({ type: 'set', relay: 16, on: false });
    for (const line of ['1, on', '1,ON', 'on,1', '0,on', '1,on,', '', '1', ',on', '001,on']) {
      expect(parseCommand(line)).toEqual({ type: 'bad', line });
    }
  });
});

describe('the simulated board', () => {
  it('boots with a banner, switches relays, answers, and records what each did', async () => {
    const s = await sim();
    expect(existsSync(s.path)).toBe(true);
    const { port, lines } = await openHost(s);
    expect(await ask(port, '2,on')).toBe('INFO: requesting relay 2 change to state on');
    expect(s.isOn(2)).toBe(true);
    expect(await ask(port, '2,on')).toBe('INFO: requesting relay 2 change to state on');
    expect(await ask(port, '8,on')).toBe('INFO: requesting relay 8 change to state on');
    expect(s.onRelays()).toEqual([2, 8]);
    expect(await ask(port, '2,off')).toBe('INFO: requesting relay 2 change to state off');
    expect(await ask(port, '2,off')).toBe('INFO: requesting relay 2 change to state off');
    expect(s.onRelays()).toEqual([8]);
    // A refresh of a relay that is already on, or an off of one already off, is not an event.
    expect(s.events.map(({ relay, on, cause }) => [relay, on, cause])).toEqual([
      [2, true, 'on'],
      [8, true, 'on'],
      [2, false, 'off'],
    ]);
    expect(s.received.map((r) => r.line)).toEqual(['2,on', '2,on', '8,on', '2,off', '2,off']);
    s.reset();
    await until(() => lines.length > 0, { what: 'the banner' });
    expect(lines).toEqual([BANNER]);
    expect(s.onRelays()).toEqual([]);
    expect(s.events.at(-1)).toMatchObject({ relay: 8, on: false, cause: 'reset' });
  });

  it('answers ERROR to a relay it lacks or a line it cannot read, and switches nothing', async () => {
    const s = await sim({ relays: 4 });
    const { port } = await openHost(s);
    expect(await ask(port, '5,on')).toBe('ERROR: no relay 5; this board has relays 1-4');
    expect(await ask(port, '1,ON')).toBe('ERROR: cannot read "1,ON"; send <relay>,on or <relay>,off');
    expect(await ask(port, 'hello')).toBe('ERROR: cannot read "hello"; send <relay>,on or <relay>,off');
    expect(s.onRelays()).toEqual([]);
    expect(s.events).toEqual([]);
  });

  it('drops a relay deadmanMs after its last on, and not while it is refreshed', async () => {
    const s = await sim({ deadmanMs: 300 });
    const { port } = await openHost(s);
    await ask(port, '1,on');
    await ask(port, '3,on');
    // Relay 3 refreshed every 50 ms or so until relay 1, never refreshed, has dropped.
    await until(
      async () => {
        await ask(port, '3,on');
        return !s.isOn(1);
      },
      { intervalMs: 50, what: 'relay 1 to drop by its dead-man' },
    );
    expect(s.onRelays()).toEqual([3]);
    const lastOn = s.received.findLast((r) => r.line === '3,on');
    const off = await s.waitForOff(3, 2000);
    expect(off.cause).toBe('deadman');
    expect(off.at - (lastOn?.at ?? 0)).toBeGreaterThanOrEqual(295);
    expect(off.at - (lastOn?.at ?? 0)).toBeLessThan(450);
    expect(s.events.map(({ relay, on, cause }) => [relay, on, cause])).toEqual([
      [1, true, 'on'],
      [3, true, 'on'],
      [1, false, 'deadman'],
      [3, false, 'deadman'],
    ]);
  });

  it('obeys but answers nothing while silent; sendRaw writes what it is given', async () => {
    const s = await sim();
    const { port, lines } = await openHost(s);
    s.silent = true;
    await expect(ask(port, '4,on', 200)).rejects.toThrow('no answer to "4,on" within 200 ms');
    expect(s.isOn(4)).toBe(true);
    s.silent = false;
    await s.sendRaw('noise\r\npartial');
    await s.sendRaw(' line\r\n');
    await until(() => lines.length === 2, { what: 'two raw lines' });
    expect(lines).toEqual(['noise', 'partial line']);
  });

  it('unplugs (the pty vanishes, relays stay as they are) and plugs back (the board boots)', async () => {
    const s = await sim();
    const { port } = await openHost(s);
    await ask(port, '1,on');
    const closed = new Promise<string>((resolve) => port.once('close', resolve));
    await s.unplug();
    expect(existsSync(s.path)).toBe(false);
    expect(s.plugged).toBe(false);
    await expect(s.sendRaw('x')).rejects.toThrow('unplugged');
    // The host's port notices without writing: serialport sees the fd go, or LinePort the file.
    expect(['bad file descriptor', 'the device is gone (unplugged?)']).toContain(await closed);
    expect(s.isOn(1)).toBe(true);
    await s.plug();
    expect(existsSync(s.path)).toBe(true);
    expect(s.onRelays()).toEqual([]);
    expect(s.events.at(-1)).toMatchObject({ relay: 1, on: false, cause: 'reset' });
    await until(() => port.ready, { what: 'the host port to reopen' });
    expect(await ask(port, '1,off')).toBe('INFO: requesting relay 1 change to state off');
  });

  it('LinePort notices a vanished device while idle, though serialport only reads end-of-file', async () => {
    // The simulator's end stays open while the pair goes, as when a USB cable is pulled.
    const pair = new PtyPair(ttyPath());
    await pair.plug();
    const other = openSerialPort({ path: pair.simPath, baudRate: 9600 });
    other.on('data', () => other.write('INFO: requesting relay 1 change to state on\r\n'));
    try {
      const port = hostPort({ path: pair.devicePath });
      const opened = new Promise<void>((resolve) => port.once('open', () => resolve()));
      port.start();
      await opened;
      // After the first read, serialport no longer sees the fd go: only end-of-file, forever.
      expect(await ask(port, '1,on')).toBe('INFO: requesting relay 1 change to state on');
      const closed = new Promise<string>((resolve) => port.once('close', resolve));
      const gone = Date.now();
      await pair.unplug();
      // Depending on where serialport's read loop was, it sees the fd fail, or spins on
      // end-of-file and only the presence check notices (without it this test times out).
      expect(['bad file descriptor', 'the device is gone (unplugged?)']).toContain(await closed);
      expect(Date.now() - gone).toBeLessThan(1500);
    } finally {
      if (other.isOpen) await new Promise((resolve) => other.close(resolve));
      await pair.unplug();
    }
  });

  it('is the Simulator hearth sim and simulate: true start', async () => {
    const path = ttyPath();
    const handle = await simulator.start({ host: '127.0.0.1', port: 0, path, log: silentLogger() });
    expect(simulator.transport).toBe('serial');
    expect(handle.path).toBe(path);
    expect(existsSync(path)).toBe(true);
    await handle.close();
    expect(existsSync(path)).toBe(false);
  });
});

describe('relay-board config', () => {
  const base = { id: 'garden', kind: 'relay-board/v1', path: '/dev/ttyACM0' };

  it('fills the defaults; zone i is relay i+1; entity ids are <id>-<zone>', () => {
    const c = relayBoardConfigSchema.parse({ ...base, zones: ['front', 'back', { name: 'beds', relay: 7 }] });
    expect(c).toEqual({
      id: 'garden',
      kind: 'relay-board/v1',
      name: 'garden',
      path: '/dev/ttyACM0',
      simulate: false,
      baudRate: 9600,
      zones: [
        { name: 'front', relay: 1 },
        { name: 'back', relay: 2 },
        { name: 'beds', relay: 7 },
      ],
      maxOpenMinutes: 30,
      maxZonesOpen: 1,
      refreshMs: 1000,
      settleMs: 2000,
      timeoutMs: 500,
    });
    expect(relayBoardDriver.entities(c).map((e) => [e.id, e.kind])).toEqual([
      ['garden-front', 'valve'],
      ['garden-back', 'valve'],
      ['garden-beds', 'valve'],
    ]);
  });

  it('refuses bad zones, unknown keys and missing required keys, naming each', () => {
    const issues = (entry: Record<string, unknown>) => {
      const r = relayBoardConfigSchema.safeParse(entry);
      return r.success ? [] : r.error.issues.map((i) => [i.path.join('.'), i.message]);
    };
    expect(issues({ ...base, zones: ['front', 'front'] })).toEqual([
      ['zones.1', 'zone "front" is also zone 1; names must be unique'],
    ]);
    expect(issues({ ...base, zones: ['front', { name: 'back', relay: 1 }] })).toEqual([
      ['zones.1', "relay 1 is also zone 1's; each zone needs its own relay"],
    ]);
    expect(issues({ ...base, zones: ['front lawn'] })).toEqual([
      ['zones.0', 'a zone name must be 1 to 63 characters of A-Z, a-z, 0-9, _ and -'],
    ]);
    expect(issues({ ...base, id: 'g'.repeat(60), zones: ['front'] })).toEqual([
      [
        'zones.0',
        `the entity id "${'g'.repeat(60)}-front" is longer than 64 characters; shorten the id or the zone name`,
      ],
    ]);
    expect(issues({ ...base, zones: [] })[0]?.[0]).toBe('zones');
    expect(issues({ ...base, zones: ['a'], maxZonesOpen: 0 })[0]?.[0]).toBe('maxZonesOpen');
    expect(issues({ ...base, zones: ['a'], refreshMs: 60_000 })[0]?.[0]).toBe('refreshMs');
    expect(issues({ ...base, zones: ['a'], pollSeconds: 10 })).toEqual([
      ['', "Unrecognized key(s) in object: 'pollSeconds'"],
    ]);
    expect(issues({ id: 'garden', kind: 'relay-board/v1', zones: ['a'] })).toEqual([['path', 'Required']]);
  });

  it('points at the YAML line of a bad zone', () => {
    const text = [
      'sprinklers:',
      '  - id: garden',
      '    kind: relay-board/v1',
      '    path: /dev/ttyACM0',
      '    zones: [front, front]',
      '',
    ].join('\n');
    expect(() => parseConfig(text, 'hearth.yaml', { drivers })).toThrow(
      /hearth\.yaml:5.*sprinklers\[0\]\.zones\[1\].*zone "front" is also zone 1; names must be unique/s,
    );
  });
});

// ---- the driver in a real hearth, over real HTTP, against the simulator on a real pty ----------

function gardenYaml(s: RelayBoardSimulator | string, extra = ''): string {
  const path = typeof s === 'string' ? s : s.path;
  return `sprinklers:\n  - { id: garden, kind: relay-board/v1, path: ${path}, zones: [front, back, beds], settleMs: 100${extra} }\n`;
}

async function garden(s: RelayBoardSimulator | string, extra = ''): Promise<TestHearth> {
  const h = await startTestHearth(gardenYaml(s, extra));
  hearths.push(h);
  return h;
}

const entity = (h: TestHearth, id: string): EntityView => {
  const e = h.runtime.get(id);
  if (!e) throw new Error(`no entity ${id}`);
  return e;
};
const allAvailable = (h: TestHearth) =>
  ['garden-front', 'garden-back', 'garden-beds'].every((id) => entity(h, id).available);

async function command(h: TestHearth, id: string, name: string, body?: unknown) {
  const r = await post(`${h.url}/api/v1/entities/${id}/commands/${name}`, {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  return {
    status: r.status,
    body: JSON.parse(r.body) as { entity: EntityView; error?: { message: string } },
  };
}

async function readyGarden(s: RelayBoardSimulator, extra = ''): Promise<TestHearth> {
  const h = await garden(s, extra);
  await until(() => allAvailable(h), { what: 'the zones to become available' });
  return h;
}

describe('relayBoardDriver in hearth', () => {
  it('turns every relay off at start; only then are the valves available, closed', async () => {
    const s = await sim();
    const h = await garden(s);
    // setup did not wait for the port: the zones exist and say why they are not usable yet.
    expect(entity(h, 'garden-front')).toMatchObject({
      available: false,
      reason: `connecting to the relay board at ${s.path}`,
      state: null,
    });
    await until(() => allAvailable(h), { what: 'the zones to become available' });
    expect(s.received.map((r) => r.line)).toEqual(['1,off', '2,off', '3,off']);
    const r = await http(`${h.url}/api/v1/entities/garden-back`);
    expect(JSON.parse(r.body).entity).toMatchObject({
      id: 'garden-back',
      kind: 'valve',
      driver: 'relay-board',
      state: 'closed',
      available: true,
      reason: null,
      commands: ['open', 'close'],
      attributes: { relay: 2, maxOpenMinutes: 30 },
    });
  });

  it('opens for the seconds asked, refreshes every refreshMs, and sends an explicit off at the end', async () => {
    const s = await sim();
    const h = await readyGarden(s, ', refreshMs: 300');
    const before = s.received.length;
    const sent = Date.now();
    const r = await command(h, 'garden-front', 'open', { seconds: 1 });
    const answered = Date.now();
    expect(r.status).toBe(200);
    expect(r.body.entity.state).toBe('open');
    const { until: endsAt, ...attrs } = r.body.entity.attributes as { until: string };
    expect(attrs).toEqual({ relay: 1, maxOpenMinutes: 30, seconds: 1 });
    // A second from when hearth took the command: between the request and its answer.
    expect(Date.parse(endsAt) - sent).toBeGreaterThanOrEqual(1000);
    expect(Date.parse(endsAt) - answered).toBeLessThanOrEqual(1000);
    // The command resolved once the board confirmed: the relay was on before the answer came.
    const on = s.events.at(-1);
    expect(on).toMatchObject({ relay: 1, on: true, cause: 'on' });

    const off = await s.waitForOff(1, 3000);
    expect(off.cause).toBe('off');
    expect(off.at - (on?.at ?? 0)).toBeGreaterThanOrEqual(990);
    expect(off.at - (on?.at ?? 0)).toBeLessThan(1400);
    const lines = s.received.slice(before);
    expect(lines.at(-1)?.line).toBe('1,off');
    const ons = lines.filter((l) => l.line === '1,on');
    expect(ons.length + 1).toBe(lines.length);
    expect(ons.length).toBeGreaterThanOrEqual(4); // the open, then a refresh at ~300, ~600, ~900 ms
    for (let i = 1; i < ons.length; i++) {
      const gap = (ons[i]?.at ?? 0) - (ons[i - 1]?.at ?? 0);
      expect(gap).toBeGreaterThanOrEqual(250);
      expect(gap).toBeLessThan(450);
    }
    await until(() => entity(h, 'garden-front').state === 'closed', { what: 'state closed' });
    expect(entity(h, 'garden-front').attributes).toEqual({
      relay: 1,
      maxOpenMinutes: 30,
      closedBy: 'duration',
    });
  });

  it('cuts an open longer than maxOpenMinutes and says so; close sends off and confirms', async () => {
    const s = await sim();
    const h = await readyGarden(s, ', maxOpenMinutes: 2');
    const sent = Date.now();
    const r = await command(h, 'garden-beds', 'open', { seconds: 7200 });
    const answered = Date.now();
    expect(r.status).toBe(200);
    const { until: endsAt, ...attrs } = r.body.entity.attributes as { until: string };
    expect(attrs).toEqual({ relay: 3, maxOpenMinutes: 2, seconds: 120, requestedSeconds: 7200 });
    expect(Date.parse(endsAt) - sent).toBeGreaterThanOrEqual(120_000);
    expect(Date.parse(endsAt) - answered).toBeLessThanOrEqual(120_000);
    expect(s.onRelays()).toEqual([3]);

    const c = await command(h, 'garden-beds', 'close');
    expect(c.status).toBe(200);
    expect(c.body.entity.state).toBe('closed');
    expect(c.body.entity.attributes).toEqual({ relay: 3, maxOpenMinutes: 2, closedBy: 'command' });
    expect(s.onRelays()).toEqual([]);
    expect(s.events.at(-1)).toMatchObject({ relay: 3, on: false, cause: 'off' });
  });

  it('with maxZonesOpen 1, opening another zone first closes the open one, confirmed; races too', async () => {
    const s = await sim();
    const h = await readyGarden(s);
    expect((await command(h, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    expect((await command(h, 'garden-back', 'open', { seconds: 60 })).status).toBe(200);
    expect(s.events.map(({ relay, on, cause }) => [relay, on, cause])).toEqual([
      [1, true, 'on'],
      [1, false, 'off'],
      [2, true, 'on'],
    ]);
    expect(entity(h, 'garden-front')).toMatchObject({ state: 'closed', attributes: { closedBy: 'limit' } });
    expect(entity(h, 'garden-back').state).toBe('open');

    // Three opens at once: each one succeeds in turn, and the board never has two on.
    const all = await Promise.all(
      ['garden-front', 'garden-beds', 'garden-back'].map((id) => command(h, id, 'open', { seconds: 60 })),
    );
    expect(all.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(mostOnAtOnce(s.events)).toBe(1);
    const open = ['garden-front', 'garden-back', 'garden-beds'].filter(
      (id) => entity(h, id).state === 'open',
    );
    expect(open).toHaveLength(1);
    expect(s.onRelays()).toEqual([entity(h, open[0] ?? '').attributes.relay]);
  });

  it('with maxZonesOpen 2, the third open closes the zone open longest', async () => {
    const s = await sim();
    const h = await readyGarden(s, ', maxZonesOpen: 2');
    for (const id of ['garden-back', 'garden-front', 'garden-beds']) {
      expect((await command(h, id, 'open', { seconds: 60 })).status).toBe(200);
    }
    expect(s.events.map(({ relay, on, cause }) => [relay, on, cause])).toEqual([
      [2, true, 'on'],
      [1, true, 'on'],
      [2, false, 'off'],
      [3, true, 'on'],
    ]);
    expect(s.onRelays()).toEqual([1, 3]);
    expect(mostOnAtOnce(s.events)).toBe(2);
  });

  it('an ERROR from the board closes the open zone with an off; hearth carries on', async () => {
    const s = await sim();
    const h = await readyGarden(s);
    expect((await command(h, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    const since = s.events.length;
    await s.sendRaw('ERROR: relay 1 coil fault\r\n');
    const off = await s.waitForEvent((e) => e.relay === 1 && !e.on, { since, timeoutMs: 3000 });
    expect(off.cause).toBe('off');
    await until(() => entity(h, 'garden-front').state === 'closed', { what: 'state closed' });
    const front = entity(h, 'garden-front');
    expect(front.available).toBe(true);
    expect(front.attributes.closedBy).toBe('failure');
    expect(String(front.attributes.failure)).toMatch(/"ERROR: relay 1 coil fault"/);
    // Still in business.
    expect((await command(h, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    expect(s.onRelays()).toEqual([1]);
  });

  it('garbage and a partial line close the open zone with an off; hearth carries on', async () => {
    const s = await sim();
    const h = await readyGarden(s);
    expect((await command(h, 'garden-back', 'open', { seconds: 60 })).status).toBe(200);
    let since = s.events.length;
    await s.sendRaw('\u00fe\u00ff~~\r\n');
    expect(await s.waitForEvent((e) => e.relay === 2 && !e.on, { since, timeoutMs: 3000 })).toMatchObject({
      cause: 'off',
    });
    await until(() => entity(h, 'garden-back').state === 'closed', { what: 'state closed' });
    expect(String(entity(h, 'garden-back').attributes.failure)).toMatch(/garbage/);

    expect((await command(h, 'garden-back', 'open', { seconds: 60 })).status).toBe(200);
    since = s.events.length;
    // No line end: it spoils the next answer (a refresh), which is then garbage.
    await s.sendRaw('INFO: requ');
    expect(await s.waitForEvent((e) => e.relay === 2 && !e.on, { since, timeoutMs: 3000 })).toMatchObject({
      cause: 'off',
    });
    await until(() => entity(h, 'garden-back').state === 'closed', { what: 'state closed' });
    expect(String(entity(h, 'garden-back').attributes.failure)).toMatch(
      /answered "2,on" with garbage: "INFO: requINFO: requesting relay 2/,
    );
    expect(entity(h, 'garden-back').available).toBe(true);
    expect((await command(h, 'garden-back', 'open', { seconds: 60 })).status).toBe(200);
    expect(mostOnAtOnce(s.events)).toBe(1);
  });

  it('a board that reboots with a zone open (its banner comes unasked): the zone is closed, not resumed', async () => {
    const s = await sim();
    const h = await readyGarden(s, ', refreshMs: 200');
    expect((await command(h, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    s.reset();
    await until(() => entity(h, 'garden-front').state === 'closed', { what: 'state closed' });
    expect(entity(h, 'garden-front')).toMatchObject({
      available: true,
      attributes: { closedBy: 'failure', failure: `the relay board sent garbage: "${BANNER}"` },
    });
    // Observation window: a zone resumed would be switched on at the next refresh (refreshMs
    // 200); three of them pass from the moment it was closed, and nothing is switched on.
    await letTimePass(600);
    expect(s.onRelays()).toEqual([]);
    expect(s.received.at(-1)?.line).toBe('1,off');
  });

  it('a board that stops answering: zone closed, off sent, unavailable until it answers again', async () => {
    const s = await sim();
    const h = await readyGarden(s, ', timeoutMs: 200, refreshMs: 300');
    expect((await command(h, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    const since = s.events.length;
    s.silent = true;
    // The refresh gets no answer: hearth sends off (the board obeys, silently).
    const off = await s.waitForEvent((e) => e.relay === 1 && !e.on, { since, timeoutMs: 3000 });
    expect(off.cause).toBe('off');
    await until(() => !entity(h, 'garden-front').available, { what: 'front unavailable' });
    const front = entity(h, 'garden-front');
    expect(front.state).toBe('closed');
    expect(front.reason).toBe(
      'the relay board did not confirm relay 1 off: no answer to "1,off" within 200 ms',
    );
    expect(front.attributes).toMatchObject({
      closedBy: 'failure',
      failure: 'no answer to "1,on" within 200 ms',
    });
    // Opening another zone now would risk two valves: refused, saying why.
    const back = await command(h, 'garden-back', 'open', { seconds: 60 });
    expect(back.status).toBe(502);
    expect(back.body.error?.message).toMatch(/zone front may still be open .*not opening back beside it/);
    expect(s.onRelays()).toEqual([]);
    s.silent = false;
    await until(() => entity(h, 'garden-front').available, { what: 'front available again' });
    expect((await command(h, 'garden-back', 'open', { seconds: 60 })).status).toBe(200);
  });

  it('unplugged: zones closed and unavailable with the reason; replugged: all off again, nothing resumes', async () => {
    const s = await sim({ deadmanMs: 800 });
    const h = await readyGarden(s);
    expect((await command(h, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    await s.unplug();
    await until(() => !entity(h, 'garden-front').available, { what: 'front unavailable' });
    expect(entity(h, 'garden-beds')).toMatchObject({
      available: false,
      reason: expect.stringMatching(
        new RegExp(
          `^relay board port ${s.path}: .*; reconnecting \\(the board closes a valve left open within 30 s\\)$`,
        ),
      ),
    });
    expect(entity(h, 'garden-front')).toMatchObject({
      state: 'closed',
      attributes: { closedBy: 'port' },
    });
    // Unplugged, the board keeps its relay until its dead-man.
    expect((await s.waitForOff(1, 3000)).cause).toBe('deadman');
    const refused = await command(h, 'garden-back', 'open', { seconds: 60 });
    expect(refused.status).toBe(502);
    expect(refused.body.error?.message).toMatch(/is not connected/);

    const before = s.received.length;
    await s.plug();
    await until(() => allAvailable(h), { what: 'the zones to be available again' });
    expect(s.received.slice(before).map((r) => r.line)).toEqual(['1,off', '2,off', '3,off']);
    // Observation window: a refresh period (default refreshMs) from the moment all was
    // available again: nothing resumed, nothing is on.
    await letTimePass(300);
    expect(s.onRelays()).toEqual([]);
    expect(entity(h, 'garden-front').state).toBe('closed');
    expect((await command(h, 'garden-front', 'open', { seconds: 60 })).status).toBe(200);
    expect(s.onRelays()).toEqual([1]);
  });

  it('stop closes every open zone and waits for the answers before closing the port', async () => {
    const s = await sim();
    const h = await readyGarden(s, ', maxZonesOpen: 3');
    for (const id of ['garden-front', 'garden-beds']) {
      expect((await command(h, id, 'open', { seconds: 600 })).status).toBe(200);
    }
    expect(s.onRelays()).toEqual([1, 3]);
    const since = s.events.length;
    await hearths.splice(0)[0]?.close();
    // Done by the time stop resolved, by explicit offs.
    expect(s.onRelays()).toEqual([]);
    expect(s.events.slice(since).map(({ relay, on, cause }) => [relay, on, cause])).toEqual([
      [1, false, 'off'],
      [3, false, 'off'],
    ]);
  });

  it('does not wait for a board that is not there, and connects when it appears', async () => {
    const path = ttyPath();
    const started = Date.now();
    const h = await garden(path);
    expect(Date.now() - started).toBeLessThan(3000);
    await until(() => /cannot open/.test(entity(h, 'garden-front').reason ?? ''), { what: 'a reason' });
    expect(entity(h, 'garden-front')).toMatchObject({
      available: false,
      reason: expect.stringMatching(new RegExp(`^relay board port ${path}: cannot open: `)),
    });
    const r = await command(h, 'garden-front', 'open', { seconds: 5 });
    expect(r.status).toBe(502);
    expect(r.body.error?.message).toMatch(`the relay board at ${path} is not connected (cannot open: `);

    const s = await startRelayBoardSimulator({ path });
    sims.push(s);
    await until(() => allAvailable(h), { what: 'the zones to become available' });
    expect(s.received.map((l) => l.line)).toEqual(['1,off', '2,off', '3,off']);
    expect((await command(h, 'garden-front', 'open', { seconds: 5 })).status).toBe(200);
  });

  it('runs against its own simulator with simulate: true', async () => {
    const path = ttyPath();
    const h = await startTestHearth(
      `sprinklers:\n  - { id: garden, kind: relay-board/v1, path: ${path}, zones: [front, back, beds], settleMs: 0, simulate: true }\n`,
    );
    hearths.push(h);
    await until(() => allAvailable(h), { what: 'the zones to become available' });
    expect((await command(h, 'garden-front', 'open', { seconds: 5 })).status).toBe(200);
    expect((await command(h, 'garden-front', 'close')).body.entity.state).toBe('closed');
  });
});

// ---- the board class through a hand-made context: clock and deadlines under test control --------

describe('relayBoardDriver with a clock that never fires', () => {
  /** A clock whose timers never run: the end of a duration never comes from it. */
  const stuckClock: Clock = { now: () => Date.now(), setTimeout: () => ({}), clearTimeout: () => {} };

  async function setup(s: RelayBoardSimulator) {
    const config = relayBoardConfigSchema.parse({
      id: 'garden',
      kind: 'relay-board/v1',
      path: s.path,
      zones: ['front', 'back'],
      settleMs: 0,
      refreshMs: 100,
    });
    const { ctx, entity } = fakeDriverContext(relayBoardDriver, config, { clock: stuckClock });
    /** The last state each zone reported. */
    const states = { get: (id: string) => entity(id, 'valve').states.at(-1) };
    const running = await relayBoardDriver.setup(ctx, config);
    await until(() => states.get('garden-back') === 'closed', { what: 'the start sweep' });
    const front = entity('garden-front', 'valve').handlers;
    return { running, front, states };
  }

  it('closes an open zone by real time anyway, with an explicit off', async () => {
    const s = await sim();
    const { running, front, states } = await setup(s);
    try {
      expect(await front.open({ seconds: 0.5 }, { signal: AbortSignal.timeout(2000) })).toBe('open');
      const on = s.events.at(-1);
      const off = await s.waitForOff(1, 3000);
      expect(off.cause).toBe('off');
      // Guard: duration + one refresh period, checked at each refresh.
      expect(off.at - (on?.at ?? 0)).toBeGreaterThanOrEqual(500);
      expect(off.at - (on?.at ?? 0)).toBeLessThan(900);
      await until(() => states.get('garden-front') === 'closed', { what: 'state closed' });
    } finally {
      await running.stop();
    }
  });

  it('sends nothing for a command whose caller has already given up', async () => {
    const s = await sim();
    const { running, front } = await setup(s);
    try {
      const before = s.received.length;
      const gone = new AbortController();
      gone.abort(new Error('deadline'));
      await expect(front.open({ seconds: 5 }, { signal: gone.signal })).rejects.toThrow(
        'the command was given up (its deadline passed)',
      );
      // The marker: a close of the same zone, through the same line; the given-up open would
      // have reached the board before it.
      expect(await front.close({}, { signal: AbortSignal.timeout(5000) })).toBe('closed');
      expect(s.received.slice(before).map((r) => r.line)).toEqual(['1,off']);
      expect(s.onRelays()).toEqual([]);
    } finally {
      await running.stop();
    }
  });
});
