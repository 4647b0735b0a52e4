// The recorder over the house's runtime (buttons pressed) and a real SQLite file, on a fake
// clock: batching, flushing on stop, the bounded buffer.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type HistoryConfig, historySchema } from '../src/config/sections/history.js';
import { LocalBus } from '../src/core/bus.js';
import { Buttons } from '../src/core/buttons.js';
import { silentLogger } from '../src/core/log.js';
import { HistoryRecorder, rowOf } from '../src/history/recorder.js';
import { LocalLink } from '../src/house/local-link.js';
import { EntityMirror } from '../src/house/mirror.js';
import { HouseRuntime } from '../src/house/runtime.js';
import { openSqliteStore } from '../src/store/sqlite/open.js';
import type { HistoryStore, Store } from '../src/store/store.js';
import { FakeClock } from './support/fake-clock.js';
import { tempDir } from './support/hearth.js';

const T0 = Date.parse('2025-06-01T12:00:00Z');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The real store's history, with its appends counted, and able to be "away" (every append fails). */
function watched(history: HistoryStore): HistoryStore & { appends: number[]; down: boolean } {
  const w = {
    ...history,
    appends: [] as number[],
    down: false,
    async append(rows: Parameters<HistoryStore['append']>[0]) {
      if (w.down) throw new Error('the store is away');
      w.appends.push(rows.length);
      return history.append(rows);
    },
  };
  return w;
}

async function setup(overrides: Record<string, unknown> = {}) {
  const file = join(tempDir(), 'hearth.db');
  const store: Store = await openSqliteStore(file);
  const clock = new FakeClock(T0);
  // One button, `hall`, as a house with no devices has it.
  const mirror = new EntityMirror({ declared: new Map(), bus: new LocalBus() });
  const link = new LocalLink();
  link.feed(mirror, []);
  const buttons = new Buttons({
    declared: [{ id: 'hall', name: 'Hall' }],
    rows: store.states,
    clock,
    log: silentLogger(),
    deviceOf: () => undefined,
  });
  for (const view of await buttons.load()) mirror.apply(view);
  const runtime = new HouseRuntime({
    timezone: 'UTC',
    clock,
    mirror,
    link,
    buttons,
    timeoutOf: () => undefined,
    ready: () => true,
  });
  const config: HistoryConfig = historySchema.parse({ flush: '10s', ...overrides });
  const history = watched(store.history);
  const recorder = new HistoryRecorder({ runtime, store: history, config, clock, log: silentLogger() });
  recorder.start();
  cleanups.push(async () => {
    await recorder.stop();
    await store.close();
  });
  /** Presses `hall` n times, on and off in turn, one second apart (the first a second from now). */
  const press = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await clock.advanceAsync(1000);
      await runtime.setButton('hall', i % 2 === 0 ? 'on' : 'off');
    }
  };
  return { file, store, clock, runtime, recorder, history, press };
}

describe('history recorder', () => {
  it('writes the changes of a flush period in one transaction, and nothing before it', async () => {
    const { store, clock, recorder, history, press } = await setup({ flush: '30s' });
    // The first compaction runs at start; the declared button is recorded as it is added (no state).
    await clock.advanceAsync(0);
    await press(20);
    expect(history.appends).toEqual([]);
    expect(recorder.stats.buffered).toBe(21);
    await clock.advanceAsync(10_000);
    expect(history.appends).toEqual([21]);
    expect(recorder.stats).toMatchObject({ recorded: 21, written: 21, flushes: 1, dropped: 0, buffered: 0 });
    const rows = await store.history.raw('hall', T0 - 1, T0 + 60_000, 100);
    expect(rows.map((r) => r.text)).toEqual([
      null,
      ...Array.from({ length: 20 }, (_, i) => (i % 2 ? 'off' : 'on')),
    ]);
    // A quiet spell writes nothing: no empty transactions.
    await clock.advanceAsync(120_000);
    expect(history.appends).toEqual([21]);
  });

  it('flushes at once when `batch` rows wait', async () => {
    const { recorder, history, press } = await setup({ batch: 10, flush: '1h' });
    await press(25);
    expect(history.appends).toEqual([10, 10]);
    expect(recorder.stats.buffered).toBe(6);
  });

  it('does not record a value that repeats the last one', async () => {
    const { recorder, runtime, clock } = await setup();
    await clock.advanceAsync(1);
    await runtime.setButton('hall', 'on');
    await runtime.setButton('hall', 'on');
    expect(recorder.stats.recorded).toBe(2); // null on start, then on
  });

  it('writes what waits on stop: nothing is lost on a clean stop', async () => {
    const { file, recorder, history, press } = await setup({ flush: '1h' });
    await press(7);
    expect(history.appends).toEqual([]);
    await recorder.stop();
    expect(history.appends).toEqual([8]);
    const again = await openSqliteStore(file);
    try {
      expect(await again.history.countRaw('hall', T0 - 1, T0 + 3600_000)).toBe(8);
    } finally {
      await again.close();
    }
  });

  it('keeps at most `buffer` rows while the store is away, dropping the oldest and counting them; writes the rest when back', async () => {
    const { store, clock, recorder, history, press } = await setup({ buffer: 5, flush: '10s' });
    history.down = true;
    await press(12);
    await clock.advanceAsync(10_000);
    expect(recorder.stats).toMatchObject({ recorded: 13, dropped: 8, buffered: 5, written: 0 });
    expect(recorder.stats.failures).toBeGreaterThanOrEqual(1);
    history.down = false;
    await clock.advanceAsync(10_000);
    expect(recorder.stats).toMatchObject({ written: 5, buffered: 0, dropped: 8 });
    // The newest five survived: presses 8 to 12 (off, on, off, on, off).
    const rows = await store.history.raw('hall', T0 - 1, T0 + 3600_000, 100);
    expect(rows.map((r) => r.text)).toEqual(['off', 'on', 'off', 'on', 'off']);
  });

  it('keeps two changes of one entity in the same ms, in order, also with a flush between them', async () => {
    // Several MQTT messages in one packet are applied in one ms; under load, often.
    const { store, clock, recorder, runtime } = await setup({ flush: '1h' });
    await clock.advanceAsync(1);
    const at = clock.now();
    await runtime.setButton('hall', 'on');
    await runtime.setButton('hall', 'off');
    await recorder.flush();
    await runtime.setButton('hall', 'on');
    await recorder.flush();
    expect(clock.now()).toBe(at);
    expect(recorder.stats).toMatchObject({ recorded: 4, written: 4, flushes: 2 });
    const rows = await store.history.raw('hall', at, at + 1, 100);
    expect(rows.map((r) => r.text)).toEqual(['on', 'off', 'on']);
  });

  it('skips excluded entities', async () => {
    const { recorder, press } = await setup({ exclude: ['hall'] });
    await press(3);
    await recorder.flush();
    expect(recorder.stats.recorded).toBe(0);
  });
});

describe('what a state is recorded as', () => {
  const view = (state: unknown, available = true) =>
    ({ id: 's', kind: 'sensor', state, available }) as Parameters<typeof rowOf>[0];

  it('numbers as numbers; garbage-sized readings as text, so downsampling never overflows', () => {
    expect(rowOf(view(21.5), 5)).toEqual({ id: 's', at: 5, num: 21.5, text: null });
    expect(rowOf(view(-1e149), 5)).toMatchObject({ num: -1e149, text: null });
    // A device that sent 1e308: summed by compaction it would overflow (an error on PostgreSQL).
    expect(rowOf(view(1e308), 5)).toEqual({ id: 's', at: 5, num: null, text: '1e+308' });
    expect(rowOf(view(-1e200), 5)).toMatchObject({ num: null, text: '-1e+200' });
    expect(rowOf(view(Number.NaN), 5)).toMatchObject({ num: null, text: null });
    expect(rowOf(view('on'), 5)).toMatchObject({ num: null, text: 'on' });
    expect(rowOf(view(21.5, false), 5)).toMatchObject({ num: null, text: null });
  });
});
