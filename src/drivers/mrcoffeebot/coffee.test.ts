/**
 * The MrCoffeeBot driver in a real hearth (runtime, HTTP API) against the simulated board over
 * a real pseudo-terminal. Timing bounds name the firmware's numbers: the heater window is
 * 1000 ms, hearth's heartbeat 300 ms and exchange deadline 250 ms (the defaults).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { SerialPort } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeDriverContext } from '../../../test/support/driver-context.js';
import { http, post, tempDir } from '../../../test/support/hearth.js';
import { letTimePass, until } from '../../../test/support/wait.js';
import { startHearth } from '../../compose.js';
import { loadConfigFile } from '../../config/load.js';
import type { EntityView } from '../../core/runtime-api.js';
import { openSerialPort } from '../../transport/serial-port.js';
import { drivers } from '../index.js';
import { coffeeConfigSchema, coffeeDriver } from './index.js';
import { BANNER, formatStatus, isBanner, parseStatus, temperatureProblem, waterProblem } from './protocol.js';
import { type CoffeeSimulator, type CoffeeSimulatorOptions, startCoffeeSimulator } from './simulator.js';

/** Timers fire a little late on a busy two-core box; the firmware's rules are exact. */
const TIMER_TOLERANCE_MS = 30;
const HEARTBEAT_MS = 300;
const TIMEOUT_MS = 250;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function dir(): string {
  const d = tempDir('hearth-coffee-');
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function sim(opts: Partial<CoffeeSimulatorOptions> = {}): Promise<CoffeeSimulator> {
  const s = await startCoffeeSimulator({ path: join(dir(), 'ttyCOFFEE'), ...opts });
  cleanups.push(() => s.close());
  return s;
}

interface CommandAnswer {
  entity?: EntityView;
  error?: { code: string; message: string };
}

interface Pot {
  url: string;
  logs: Array<{ msg: string; [k: string]: unknown }>;
  entity(id?: string): Promise<EntityView>;
  command(name: string, args?: object, id?: string): Promise<{ status: number; body: CommandAnswer }>;
  stop(): Promise<void>;
}

/** A real hearth (config file, runtime, HTTP) with one coffee pot, logging into an array. */
async function hearth(path: string, extra = ''): Promise<Pot> {
  const d = dir();
  const file = join(d, 'hearth.yaml');
  writeFileSync(
    file,
    `http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: hearth.db }\n` +
      `coffee:\n  - { id: coffee, kind: mrcoffeebot/v1, name: Coffee pot, path: ${path}, settleMs: 50, pollMs: 200${extra} }\n`,
  );
  const logs: Pot['logs'] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const h = await startHearth(loadConfigFile(file, { drivers }), { log: pino({ level: 'info' }, sink) });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await h.stop();
  };
  cleanups.push(stop);
  return {
    url: h.url,
    logs,
    async entity(id = 'coffee') {
      const r = await http(`${h.url}/api/v1/entities/${id}`);
      expect(r.status).toBe(200);
      return JSON.parse(r.body).entity;
    },
    async command(name, args, id = 'coffee') {
      const r = await post(`${h.url}/api/v1/entities/${id}/commands/${name}`, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(args ?? {}),
      });
      return { status: r.status, body: JSON.parse(r.body) };
    },
    stop,
  };
}

/** A hearth whose pot has answered its first B+0 and is idle. */
async function readyPot(s: CoffeeSimulator, extra = ''): Promise<Pot> {
  const pot = await hearth(s.path, extra);
  await until(async () => (await pot.entity()).available === true, { what: 'heater available' });
  return pot;
}

/** Brews through the API and checks that the board's heater is on. */
async function brew(pot: Pot, s: CoffeeSimulator, minutes = 1): Promise<void> {
  const r = await pot.command('brew', { minutes });
  expect([r.status, r.body.entity?.state]).toEqual([200, 'on']);
  expect(s.heater).toBe(true);
}

/** performance.now() of the first heater-off event at or after `since`. */
async function offAfter(s: CoffeeSimulator, since: number, timeoutMs = 2000) {
  const ev = await s.waitForHeater(false, timeoutMs);
  expect(ev.t).toBeGreaterThanOrEqual(since);
  return ev;
}

/** Waits for hearth to show the heater off (the board's answer is a few ms behind its event). */
async function heaterOff(pot: Pot, what = 'heater'): Promise<void> {
  await until(async () => (await pot.entity()).state === 'off', { what: `${what}: state off` });
}

const linesAfter = (s: CoffeeSimulator, t: number) => s.received.filter((r) => r.t > t).map((r) => r.line);

/**
 * Resolves once hearth has sent `n` commands after `t`. Its loop sends one command at a time,
 * each decided from what it knows then: a B+1 it was going to send (to resume a brew, say)
 * comes among the next ones, so these stand in for a fixed wait.
 */
const commandsAfter = (s: CoffeeSimulator, t: number, n: number) =>
  until(() => linesAfter(s, t).length >= n, {
    what: () => `${n} commands from hearth (got ${JSON.stringify(linesAfter(s, t))})`,
  });

describe('protocol', () => {
  it('parses exactly the firmware status format and formats it back byte for byte', () => {
    expect(parseStatus('W+1.50,T+21.0,B+0')).toEqual({ waterIn: 1.5, temperatureC: 21, heater: false });
    expect(parseStatus('W+12.25,T+94.7,B+1')).toEqual({ waterIn: 12.25, temperatureC: 94.7, heater: true });
    expect(parseStatus('W+1.50,T+-1000.0,B+1')).toEqual({ waterIn: 1.5, temperatureC: -1000, heater: true });
    for (const line of ['W+1.50,T+21.0,B+0', 'W+12.25,T+94.7,B+1', 'W+0.00,T+-1000.0,B+0']) {
      const status = parseStatus(line);
      expect(status && formatStatus(status)).toBe(line);
    }
  });

  it('takes nothing else for a status', () => {
    for (const line of [
      '',
      'W+1.5,T+21.0,B+0',
      'W+1.50,T+21.00,B+0',
      'W+1.50,T+21,B+0',
      'W+1.50,T+21.0,B+2',
      'W+1.50,T+21.0,B+',
      'W+1.50,T+21.0',
      'W+1.5',
      ' W+1.50,T+21.0,B+0',
      'W+1.50,T+21.0,B+0 ',
      'W+1.50,T+21.0,B+0W+1.50,T+21.0,B+0',
      'W+1.5W+1.50,T+21.0,B+0',
      'W+1.50;T+21.0;B+0',
      'w+1.50,t+21.0,b+0',
      'W+1.50,T+21.0,B+1\u0000',
      BANNER,
    ]) {
      expect([line, parseStatus(line)]).toEqual([line, undefined]);
    }
  });

  it('knows the banner exactly, and which readings to distrust', () => {
    expect(isBanner('MrCoffeeBot v2.0 Booted.')).toBe(true);
    expect(isBanner('MrCoffeeBot v2.0 Booted')).toBe(false);
    expect(isBanner('W+1.50,T+21.0,B+0')).toBe(false);
    expect(temperatureProblem(-1000)).toBe('the temperature sensor failed its CRC check (T+-1000.0)');
    expect(temperatureProblem(110.1)).toBe('implausible temperature 110.1 °C');
    expect(temperatureProblem(-20.1)).toBe('implausible temperature -20.1 °C');
    expect([temperatureProblem(-20), temperatureProblem(95), temperatureProblem(110)]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect(waterProblem(-0.01)).toBe('implausible water level -0.01 in');
    expect(waterProblem(30.01)).toBe('implausible water level 30.01 in');
    expect([waterProblem(0), waterProblem(30)]).toEqual([undefined, undefined]);
  });
});

describe('config', () => {
  const base = { id: 'coffee', kind: 'mrcoffeebot/v1', path: '/dev/ttyACM0' };

  it('fills the defaults and names the entities', () => {
    const config = coffeeConfigSchema.parse(base);
    expect(config).toEqual({
      ...base,
      name: 'coffee',
      simulate: false,
      baudRate: 115200,
      maxBrewMinutes: 20,
      settleMs: 2000,
      heartbeatMs: 300,
      pollMs: 2000,
      timeoutMs: 250,
    });
    expect(coffeeDriver.entities(config).map((e) => [e.id, e.kind])).toEqual([
      ['coffee', 'heater'],
      ['coffee-water', 'sensor'],
      ['coffee-temperature', 'sensor'],
      ['coffee-last-status', 'sensor'],
    ]);
    expect(coffeeConfigSchema.parse({ ...base, maxBrewMinutes: 0.02 }).maxBrewMinutes).toBe(0.02);
  });

  it('refuses timings that break the firmware windows, and unknown keys', () => {
    const issues = (extra: object) => {
      const r = coffeeConfigSchema.safeParse({ ...base, ...extra });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ heartbeatMs: 1000 })).toEqual([
      "heartbeatMs: must be below the firmware's 1000 ms heater window, with room to spare",
    ]);
    expect(issues({ pollMs: 5000 })).toEqual([
      "pollMs: must leave room inside the firmware's 5000 ms watchdog",
    ]);
    expect(issues({ heartbeatMs: 800, timeoutMs: 200 })).toEqual([
      "timeoutMs: heartbeatMs + timeoutMs (800 + 200) must be below the firmware's 1000 ms heater window",
    ]);
    expect(issues({ maxBrewMinutes: 121 })).toEqual([
      'maxBrewMinutes: Number must be less than or equal to 120',
    ]);
    expect(issues({ maxBrewMinutes: 0 })).toEqual(['maxBrewMinutes: Number must be greater than 0']);
    expect(issues({ pollSeconds: 10 })).toEqual([": Unrecognized key(s) in object: 'pollSeconds'"]);
    expect(issues({ heartbeatMs: 299, timeoutMs: 250 })).toEqual([]);
  });
});

/** A plain serial client on the device end, as a person with a terminal would use it. */
async function terminal(s: CoffeeSimulator) {
  const port = openSerialPort({ path: s.path, baudRate: 115200 });
  await new Promise<void>((resolve, reject) => port.once('open', resolve).once('error', reject));
  cleanups.push(
    () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  );
  const lines: string[] = [];
  let buf = '';
  port.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  // A banner written just before the port opened may or may not come through: start clean,
  // from a marker line the board sends once the port is open.
  await s.sendRaw('-- marker --\n');
  await until(() => lines.includes('-- marker --'), { what: 'the marker line' });
  lines.length = 0;
  return {
    lines,
    write: (text: string) => new Promise<void>((resolve) => port.write(text, () => resolve())),
    async ask(command: string): Promise<string> {
      const n = lines.length;
      port.write(`${command}\n`);
      await until(() => lines.length > n, { what: `an answer to ${command}` });
      return lines[n] as string;
    },
  };
}

describe('the simulated board', () => {
  it('answers every command with a status line and keeps the heater only while B+1 comes', async () => {
    const s = await sim();
    const t = await terminal(s);
    expect(await t.ask('S+?')).toBe('W+1.50,T+21.0,B+0');
    expect(await t.ask('B+1')).toMatch(/^W\+1\.50,T\+21\.\d,B\+1$/);
    // Heartbeats every 300 ms for 1.2 s keep it on.
    const first = performance.now();
    await until(
      async () => {
        expect(await t.ask('B+1')).toMatch(/,B\+1$/);
        return performance.now() - first >= 1200;
      },
      { intervalMs: HEARTBEAT_MS, what: 'heartbeats for 1.2 s' },
    );
    expect(s.events.map((e) => [e.heater, e.cause])).toEqual([
      [false, 'boot'],
      [true, 'B+1'],
    ]);
    // Then silence: off exactly 1000 ms after the last B+1.
    const off = await s.waitForHeater(false, 2000);
    expect(off.cause).toBe('deadman');
    const lastB1 = s.received.filter((r) => r.line === 'B+1').at(-1);
    expect(off.t - (lastB1?.t ?? 0)).toBeGreaterThanOrEqual(1000);
    expect(off.t - (lastB1?.t ?? 0)).toBeLessThanOrEqual(1000 + TIMER_TOLERANCE_MS);
    expect(lastB1?.t).toBe(s.lastHeartbeatT);
    // B+0 drops it at once.
    expect(await t.ask('B+1')).toMatch(/,B\+1$/);
    expect(await t.ask('B+0')).toMatch(/,B\+0$/);
    expect(s.events.at(-1)?.cause).toBe('B+0');
  });

  it('ignores garbage, reboots after silence, on RESET, and reports sensor faults', async () => {
    const s = await sim({ rebootAfterMs: 600 });
    const t = await terminal(s);
    expect(await t.ask('S+?')).toBe('W+1.50,T+21.0,B+0');
    await t.write('B+2\nhello\nS+?x\n');
    // The marker: a valid S+? after them gets the next line, so the garbage got no answer.
    expect(await t.ask('S+?')).toBe('W+1.50,T+21.0,B+0');
    expect(t.lines).toHaveLength(2);
    expect(s.received.map((r) => [r.line, r.valid])).toEqual([
      ['S+?', true],
      ['B+2', false],
      ['hello', false],
      ['S+?x', false],
      ['S+?', true],
    ]);
    const valid = s.received.at(-1)?.t ?? 0;
    // Garbage is not a valid command: the watchdog reboots the board 600 ms after the last S+?,
    // and not before (an observation window, measured from that S+?).
    await letTimePass(valid + 550 - performance.now());
    expect(s.boots).toBe(1);
    await until(() => s.boots === 2, { what: 'a reboot' });
    await until(() => t.lines.length === 3, { what: 'the banner' });
    expect(t.lines[2]).toBe(BANNER);
    expect(await t.ask('B+1')).toMatch(/,B\+1$/);
    expect(await t.ask('RESET')).toMatch(/,B\+0$/);
    await until(() => t.lines.length === 6, { what: 'the banner after RESET' });
    expect(t.lines.at(-1)).toBe(BANNER);
    expect(s.events.at(-1)?.cause).toBe('RESET');
    s.crcError = true;
    expect(await t.ask('S+?')).toMatch(/^W\+\d+\.\d\d,T\+-1000\.0,B\+0$/);
    s.crcError = false;
    s.silent = true;
    await t.write('B+1\n');
    // Obeyed, unanswered: the heater is on, and the next answer is the marker's.
    await until(() => s.heater, { what: 'the silent B+1 obeyed' });
    s.silent = false;
    expect(await t.ask('S+?')).toMatch(/,B\+1$/);
    expect(t.lines).toHaveLength(8);
  });
});

describe('the driver in hearth', () => {
  it('turns the heater off first, then polls; entities carry their units', async () => {
    // The board's own 1 s rule is pushed out of the way: hearth may take longer than 1 s to
    // start on a loaded machine, and only hearth's B+0 may turn this heater off here.
    const s = await sim({ deadmanMs: 60_000 });
    s.setHeater(true); // as a crashed hearth could have left it
    const pot = await readyPot(s);
    expect(s.received[0]?.line).toBe('B+0');
    expect(s.events.slice(1).map((e) => [e.heater, e.cause])).toEqual([
      [true, 'test'],
      [false, 'B+0'],
    ]);
    await until(() => s.received.length >= 3, { what: 'two polls after the B+0' });
    expect(new Set(s.received.slice(1).map((r) => r.line))).toEqual(new Set(['S+?']));
    // Polled: on a loaded machine one late status answer makes the pot unavailable for a moment.
    await expect
      .poll(() => pot.entity())
      .toMatchObject({
        kind: 'heater',
        name: 'Coffee pot',
        driver: 'mrcoffeebot',
        state: 'off',
        available: true,
        attributes: { maxBrewMinutes: 20 },
        commands: ['brew', 'stop'],
      });
    await expect
      .poll(() => pot.entity('coffee-water'))
      .toMatchObject({
        kind: 'sensor',
        state: 1.5,
        available: true,
        attributes: { unit: 'in' },
      });
    // It was heated for a moment before hearth came: warmer than the room, cooling.
    await expect
      .poll(() => pot.entity('coffee-temperature'))
      .toMatchObject({ kind: 'sensor', available: true, attributes: { unit: '°C' } });
    const temp = await pot.entity('coffee-temperature');
    expect(temp.state).toBeCloseTo(s.temperatureC, 0);
    const last = await pot.entity('coffee-last-status');
    expect(Date.now() - Date.parse(String(last.state))).toBeLessThan(500);
  });

  it('keeps the heater on with B+1 every 300 ms while brewing, and stops on stop', async () => {
    const s = await sim();
    const pot = await readyPot(s);
    const logsBefore = pot.logs.length;
    const started = Date.now();
    await brew(pot, s, 1);
    const answered = Date.now();
    const view = await pot.entity();
    const endsAt = Date.parse(String(view.attributes.until));
    // A minute from when hearth took the command: between the request and its answer.
    expect(endsAt - started).toBeGreaterThanOrEqual(60_000);
    expect(endsAt - answered).toBeLessThanOrEqual(60_000);
    // Five heartbeats: 1.5 s on an idle machine, a little more on a loaded one.
    const heartbeats = () => s.received.filter((r) => r.line === 'B+1').map((r) => r.t);
    await expect.poll(() => heartbeats().length, { interval: 100 }).toBeGreaterThanOrEqual(5);
    const beats = heartbeats();
    const gaps = beats.slice(1).map((t, i) => t - (beats[i] as number));
    expect(Math.max(...gaps)).toBeLessThan(HEARTBEAT_MS + 150);
    expect(Math.min(...gaps)).toBeGreaterThan(HEARTBEAT_MS - 50);
    expect(s.heater).toBe(true);

    const r = await pot.command('stop');
    expect([r.status, r.body.entity?.state, r.body.entity?.attributes.until]).toEqual([
      200,
      'off',
      undefined,
    ]);
    expect(s.events.at(-1)).toMatchObject({ heater: false, cause: 'B+0' });
    const offT = s.events.at(-1)?.t ?? 0;
    await commandsAfter(s, offT, 2);
    expect(linesAfter(s, offT)).not.toContain('B+1');
    // One line per transition, none per heartbeat. On a loaded machine a late status answer after
    // the stop may cost the pot's confidence for a moment (its own, correct, lines): not counted.
    const slow = /lost confidence|entity unavailable|entity available again|answers normally again/;
    expect(
      pot.logs
        .slice(logsBefore)
        .map((l) => l.msg)
        .filter((m) => !slow.test(m)),
    ).toEqual(['brew started', 'brew ended']);
  });

  it('stops a brew at its maximum time, whatever was asked', async () => {
    const s = await sim();
    const pot = await readyPot(s, ', maxBrewMinutes: 0.02'); // 1.2 s
    const t0 = performance.now();
    const asked = Date.now();
    await brew(pot, s, 5);
    const answered = Date.now();
    const endsAt = Date.parse(String((await pot.entity()).attributes.until));
    // 1.2 s from when hearth took the command: between the request and its answer.
    expect(endsAt - asked).toBeGreaterThanOrEqual(1200);
    expect(endsAt - answered).toBeLessThanOrEqual(1200);
    const off = await offAfter(s, t0, 3000);
    expect(off.cause).toBe('B+0');
    // Off at the brew's end, measured from when it was asked (the heater may come on a little
    // later on a busy box; the end does not move with it): never early, and promptly.
    expect(off.at).toBeGreaterThanOrEqual(endsAt - 5);
    expect(off.at - endsAt).toBeLessThan(250);
    await heaterOff(pot);
    expect(await pot.entity()).toMatchObject({ available: true, attributes: { maxBrewMinutes: 0.02 } });
    expect((await pot.entity()).attributes.until).toBeUndefined();
  });

  it('turns the heater off on a sensor CRC error, and brews no more until the sensor is good', async () => {
    const s = await sim();
    const pot = await readyPot(s);
    await brew(pot, s);
    const t0 = performance.now();
    s.crcError = true;
    const off = await offAfter(s, t0);
    expect(off.cause).toBe('B+0');
    expect(off.t - t0).toBeLessThan(HEARTBEAT_MS + 100);
    const temp = await pot.entity('coffee-temperature');
    expect([temp.available, temp.reason]).toEqual([
      false,
      'the temperature sensor failed its CRC check (T+-1000.0)',
    ]);
    await heaterOff(pot);
    expect((await pot.entity()).available).toBe(true);

    const refused = await pot.command('brew', { minutes: 1 });
    expect(refused.status).toBe(502);
    expect(refused.body.error?.message).toContain('cannot brew: the temperature sensor failed its CRC check');
    expect(s.heater).toBe(false);
    expect(s.events.at(-1)?.t).toBe(off.t);

    s.crcError = false;
    await until(async () => (await pot.entity('coffee-temperature')).available === true, {
      what: 'sensor back',
    });
    await until(async () => (await pot.entity()).available === true, { what: 'heater back' });
    await brew(pot, s);
  });

  it('turns the heater off on garbage, half lines, stray lines and implausible readings', async () => {
    const s = await sim();
    const pot = await readyPot(s);
    const faults: Array<[string, () => Promise<void> | void]> = [
      ['garbage', () => s.sendRaw('\u0000\u00ff#noise*\n')],
      ['half a line', () => s.sendRaw('W+1.5')],
      ['a stray status', () => s.sendRaw('W+1.50,T+90.0,B+1\n')],
      ['a line too long', () => s.sendRaw('x'.repeat(300))],
      [
        'an implausible temperature',
        () => {
          s.temperatureC = 150;
        },
      ],
      [
        'an implausible water level',
        () => {
          s.waterIn = -3;
        },
      ],
    ];
    for (const [what, fault] of faults) {
      await until(async () => (await pot.entity()).available === true, {
        what: `heater available before ${what}`,
      });
      s.temperatureC = 60;
      s.waterIn = 2;
      await until(async () => (await pot.command('brew', { minutes: 1 })).status === 200, { what: what });
      expect([what, s.heater]).toEqual([what, true]);
      const t0 = performance.now();
      await fault();
      const off = await offAfter(s, t0);
      expect([what, off.cause]).toEqual([what, 'B+0']);
      expect(off.t - t0).toBeLessThan(HEARTBEAT_MS + TIMEOUT_MS + 100);
      // hearth is alive and says so.
      await heaterOff(pot, what);
      expect([what, (await pot.entity()).attributes.until]).toEqual([what, undefined]);
      await commandsAfter(s, off.t, 1);
      expect([what, linesAfter(s, off.t).includes('B+1')]).toEqual([what, false]);
    }
    s.temperatureC = 60;
    s.waterIn = 2;
    await until(async () => (await pot.command('brew', { minutes: 1 })).status === 200, {
      what: 'brew again',
    });
    expect(s.heater).toBe(true);
  });

  it('turns the heater off when the pot stops answering, and marks everything unavailable', async () => {
    const s = await sim();
    const pot = await readyPot(s);
    await brew(pot, s);
    const t0 = performance.now();
    s.silent = true; // commands still arrive; answers do not
    const off = await offAfter(s, t0);
    // The B+1 on the wire times out, then B+0 goes at once.
    expect(off.cause).toBe('B+0');
    expect(off.t - t0).toBeLessThan(HEARTBEAT_MS + TIMEOUT_MS + 100);
    const view = await pot.entity();
    expect([view.available, view.reason]).toEqual([false, 'no answer to "B+1" within 250 ms']);
    expect((await pot.entity('coffee-water')).available).toBe(false);
    // A pot that does not answer gets no B+1 at all; hearth keeps sending B+0.
    const t1 = performance.now();
    const refused = await pot.command('brew', { minutes: 1 });
    expect(refused.status).toBe(502);
    expect(refused.body.error?.message).toMatch(/cannot brew: no answer to "B\+[01]" within 250 ms$/);
    await commandsAfter(s, t1, 2);
    expect(s.heater).toBe(false);
    expect(new Set(linesAfter(s, t1))).toEqual(new Set(['B+0']));

    s.silent = false;
    await until(async () => (await pot.entity()).available === true, { what: 'available again' });
    const t2 = performance.now();
    await commandsAfter(s, t2, 2);
    expect(linesAfter(s, t2)).not.toContain('B+1');
    expect(s.heater).toBe(false);
  });

  it('ends the brew when the pot reboots by itself, and does not resume it', async () => {
    const s = await sim();
    const pot = await readyPot(s);
    await brew(pot, s);
    const t0 = performance.now();
    s.reboot();
    expect(s.events.at(-1)).toMatchObject({ heater: false, cause: 'reboot' });
    await until(() => linesAfter(s, t0).includes('B+0'), { what: 'B+0 after the banner' });
    await commandsAfter(s, t0, linesAfter(s, t0).indexOf('B+0') + 3);
    expect(linesAfter(s, t0).filter((l) => l === 'B+1')).toHaveLength(0);
    expect(s.heater).toBe(false);
    expect(await pot.entity()).toMatchObject({ state: 'off' });
  });

  it('sends B+0 at once when a status says the heater is on while idle', async () => {
    const s = await sim();
    await readyPot(s);
    const t0 = performance.now();
    s.setHeater(true);
    const off = await offAfter(s, t0);
    // The next poll (200 ms) sees it, long before the firmware's own 1 s.
    expect(off.cause).toBe('B+0');
    expect(off.t - t0).toBeLessThan(200 + 100);
  });

  it('survives unplug and replug: unavailable, then available with the heater off, brew not resumed', async () => {
    const s = await sim();
    const pot = await readyPot(s);
    await brew(pot, s);
    await s.unplug();
    const unplugged = performance.now();
    await until(async () => (await pot.entity()).available === false, { what: 'unavailable' });
    for (const id of ['coffee', 'coffee-water', 'coffee-temperature', 'coffee-last-status']) {
      const view = await pot.entity(id);
      expect([id, view.available]).toEqual([id, false]);
      expect(view.reason).toMatch(/^serial port .*ttyCOFFEE: /);
    }
    // Nothing reaches the board now: its own rule turns the heater off.
    const off = await offAfter(s, unplugged - 1000);
    expect(off.cause).toBe('deadman');
    expect(off.t - (s.lastHeartbeatT ?? 0)).toBeLessThanOrEqual(1000 + TIMER_TOLERANCE_MS);
    const refused = await pot.command('stop');
    expect(refused.status).toBe(502);
    expect(refused.body.error?.message).toContain('the coffee pot is not connected');

    const plugged = performance.now();
    await s.plug();
    await until(async () => (await pot.entity()).available === true, { what: 'available again' });
    expect(linesAfter(s, plugged)[0]).toBe('B+0');
    await commandsAfter(s, plugged, 3);
    expect(linesAfter(s, plugged)).not.toContain('B+1');
    expect(s.heater).toBe(false);
    expect(await pot.entity()).toMatchObject({ state: 'off', available: true });
    expect((await pot.entity()).attributes.until).toBeUndefined();
    await brew(pot, s);
  });

  it('starts with the pot unplugged: entities exist, unavailable, until it is plugged in', async () => {
    const s = await sim();
    await s.unplug();
    const pot = await hearth(s.path);
    const views = JSON.parse((await http(`${pot.url}/api/v1/entities`)).body).entities;
    expect(
      views.map((v: { id: string; kind: string; available: boolean }) => [v.id, v.kind, v.available]),
    ).toEqual([
      ['coffee', 'heater', false],
      ['coffee-water', 'sensor', false],
      ['coffee-temperature', 'sensor', false],
      ['coffee-last-status', 'sensor', false],
    ]);
    const refused = await pot.command('brew', { minutes: 1 });
    expect(refused.status).toBe(502);
    expect(refused.body.error?.message).toContain('the coffee pot is not connected');
    await s.plug();
    await until(async () => (await pot.entity()).available === true, { what: 'available' });
    expect(s.received[0]?.line).toBe('B+0');
    await brew(pot, s);
  });

  it('sends B+0 and waits for it when hearth stops', async () => {
    const s = await sim();
    const pot = await readyPot(s);
    await brew(pot, s);
    const t0 = performance.now();
    await pot.stop();
    const stopped = performance.now();
    const off = s.events.at(-1);
    expect(off).toMatchObject({ heater: false, cause: 'B+0' });
    expect((off?.t ?? 0) - t0).toBeLessThan(2 * TIMEOUT_MS);
    expect(stopped).toBeGreaterThan(off?.t ?? Number.POSITIVE_INFINITY);
    // The port is closed now, so nothing can follow; and nothing came between.
    expect(linesAfter(s, t0)).toEqual(['B+0']);
  });

  it('runs against its own simulator with simulate: true', async () => {
    const path = join(dir(), 'ttySIM');
    const pot = await hearth(path, ', simulate: true');
    await until(async () => (await pot.entity()).available === true, { what: 'available' });
    // The board runs in this process: on a loaded machine one of its answers can come later than
    // the 250 ms hearth waits, and hearth then refuses a brew (correctly) until the next good status.
    let r = await pot.command('brew', { minutes: 1 });
    await until(
      async () => {
        if (r.status !== 200) r = await pot.command('brew', { minutes: 1 });
        return r.status === 200;
      },
      {
        intervalMs: 50,
        what: () => `a brew to be taken (last answer ${r.status} ${JSON.stringify(r.body)})`,
      },
    );
    expect([r.status, r.body.entity?.state, r.body.error?.message]).toEqual([200, 'on', undefined]);
    const stop = await pot.command('stop');
    expect([stop.status, stop.body.entity?.state]).toEqual([200, 'off']);
  });
});

describe('the driver with a bare DriverContext', () => {
  it('cancels a brew whose deadline passes before the pot confirms it', async () => {
    const s = await sim();
    const config = coffeeConfigSchema.parse({
      id: 'coffee',
      kind: 'mrcoffeebot/v1',
      path: s.path,
      settleMs: 20,
      pollMs: 200,
    });
    const { ctx, added, entity } = fakeDriverContext(coffeeDriver, config);
    const running = await coffeeDriver.setup(ctx, config);
    cleanups.push(() => running.stop());
    expect(added.map((e) => e.spec.id)).toEqual([
      'coffee',
      'coffee-water',
      'coffee-temperature',
      'coffee-last-status',
    ]);
    await until(() => entity('coffee', 'heater').available === true, { what: 'ready' });
    const brewHandler = entity('coffee', 'heater').handlers.brew;
    if (!brewHandler) throw new Error('no brew handler');

    s.answerDelayMs = 150; // a slow board: the B+1 is answered after the caller gave up
    const t0 = performance.now();
    const caller = new AbortController();
    // The caller gives up once the B+1 is at the board, before its slow answer.
    void until(() => linesAfter(s, t0).includes('B+1'), { what: 'the B+1 at the board' }).then(() =>
      caller.abort(new Error('deadline passed')),
    );
    await expect(brewHandler({ minutes: 1 }, { signal: caller.signal })).rejects.toThrow('deadline passed');
    const off = await offAfter(s, t0, 1000);
    expect(off.cause).toBe('B+0');
    // On by the B+1 already on the wire, off by the B+0 right behind its answer.
    expect(off.t - t0).toBeLessThan(150 + 150 + 100);
    await commandsAfter(s, t0, 3);
    expect(linesAfter(s, t0).filter((l) => l === 'B+1')).toEqual(['B+1']);
    expect(s.heater).toBe(false);
  });
});
