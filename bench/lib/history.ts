// History: bytes written per day to a real SQLite file for 20 sensors reporting every 10 s
// (a fake clock drives the real recorder through one simulated day, in steady state: 7 days of
// raw rows already kept, so each hour's compaction folds and deletes as it would for good), and
// the time to read a year of one sensor (downsampled) back.
// Alone: node --import tsx bench/lib/history.ts
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { historySchema } from '../../src/config/sections/history.js';
import type { Clock, Timer } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import type { EntityView, RuntimeApi } from '../../src/core/runtime-api.js';
import { HistoryRecorder } from '../../src/history/recorder.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';
import type { HistoryRow } from '../../src/store/store.js';
import { int, ms, table } from './report.js';

const SENSORS = 20;
const EVERY_MS = 10_000;
const DAY = 86_400_000;

export interface HistoryFigures {
  rowsPerDay: number;
  /** Bytes the process handed to write(2) during the day: WAL frames, checkpoints, nothing else. */
  wcharPerDay: number;
  /** Bytes the kernel sent to storage for the process (/proc/self/io write_bytes); 0 on tmpfs. */
  writeBytesPerDay: number;
  flushesPerDay: number;
  dbBytes: number;
  yearQueryMs: number;
  yearQueryPoints: number;
  yearQueryDailyMs: number;
}

/** A clock that moves only when told to (as test/support/fake-clock.ts, without the test folder). */
class StepClock implements Clock {
  #now: number;
  #timers: Array<{ due: number; fn: () => void; handle: Timer }> = [];
  constructor(now: number) {
    this.#now = now;
  }
  now() {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const handle: Timer = { unref: () => handle };
    this.#timers.push({ due: this.#now + Math.max(0, ms), fn, handle });
    return handle;
  }
  clearTimeout(timer: Timer) {
    this.#timers = this.#timers.filter((t) => t.handle !== timer);
  }
  /** Moves to `at`, firing due timers in order, letting promises settle after each. */
  async to(at: number) {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      this.#timers.sort((a, b) => a.due - b.due);
      const next = this.#timers[0];
      if (!next || next.due > at) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.due);
      next.fn();
    }
    this.#now = at;
    await new Promise((r) => setImmediate(r));
  }
}

/** 20 temperature sensors as the runtime would show them; only what the recorder uses. */
class Sensors {
  readonly views: EntityView[] = Array.from({ length: SENSORS }, (_, i) => ({
    id: `sensor${i}`,
    kind: 'sensor',
    name: `Sensor ${i}`,
    driver: 'mqtt-things',
    state: 20,
    available: true,
    reason: null,
    updatedAt: null,
    commands: [],
    attributes: { unit: '°C' },
  }));
  #listeners: Array<(e: EntityView) => void> = [];
  readonly runtime = {
    subscribe: (l: (e: EntityView) => void) => {
      this.#listeners.push(l);
      return () => {
        this.#listeners = this.#listeners.filter((x) => x !== l);
      };
    },
    list: () => this.views,
    get: (id: string) => this.views.find((v) => v.id === id),
  } as unknown as RuntimeApi;
  /** Every sensor reports: a random walk in tenths of a degree, so most readings change. */
  report(step: number) {
    for (const [i, v] of this.views.entries()) {
      const next = Math.round((20 + 3 * Math.sin((step + i * 97) / 500) + (Math.random() - 0.5)) * 10) / 10;
      this.views[i] = { ...v, state: next };
      for (const l of this.#listeners) l(this.views[i] as EntityView);
    }
  }
}

function procIo(): { wchar: number; writeBytes: number } {
  const text = readFileSync('/proc/self/io', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { wchar: field('wchar'), writeBytes: field('write_bytes') };
}

export async function historyBench(opts: {
  tmp: string;
  log?: (line: string) => void;
}): Promise<HistoryFigures> {
  const log = opts.log ?? ((line: string) => console.log(line));
  log(
    `\n15. history: ${SENSORS} sensors every ${EVERY_MS / 1000} s for a day on SQLite; a year of one sensor read back`,
  );
  const file = path.join(opts.tmp, 'bench-history.db');
  const store = await openSqliteStore(file);
  const start = Date.parse('2025-01-08T00:00:00Z');
  try {
    // Steady state: the 7 days before are kept raw, as they would be (not measured).
    const seed: HistoryRow[] = [];
    for (let at = start - 7 * DAY; at < start; at += EVERY_MS) {
      for (let i = 0; i < SENSORS; i++)
        seed.push({ id: `sensor${i}`, at, num: 20 + (at % 7) / 10, text: null });
      if (seed.length >= 50_000) await store.history.append(seed.splice(0));
    }
    await store.history.append(seed);
    const clock = new StepClock(start);
    const sensors = new Sensors();
    // HEARTH_BENCH_HISTORY_FLUSH=60s measures another flush period than the default.
    const config = historySchema.parse(
      process.env.HEARTH_BENCH_HISTORY_FLUSH ? { flush: process.env.HEARTH_BENCH_HISTORY_FLUSH } : {},
    );
    const recorder = new HistoryRecorder({
      runtime: sensors.runtime,
      store: store.history,
      config,
      clock,
      log: silentLogger(),
    }).start();
    await clock.to(start);
    const before = procIo();
    for (let step = 1; step * EVERY_MS <= DAY; step++) {
      await clock.to(start + step * EVERY_MS - 1);
      sensors.report(step);
    }
    await clock.to(start + DAY);
    await recorder.stop();
    const after = procIo();
    const figures: HistoryFigures = {
      rowsPerDay: recorder.stats.written,
      wcharPerDay: after.wchar - before.wchar,
      writeBytesPerDay: after.writeBytes - before.writeBytes,
      flushesPerDay: recorder.stats.flushes,
      dbBytes: statSync(file).size,
      yearQueryMs: Number.NaN,
      yearQueryPoints: 0,
      yearQueryDailyMs: Number.NaN,
    };
    // A year of one sensor in 5-minute buckets (what compaction leaves), read back as 3-hour
    // buckets (the step GET .../history picks for a year) and as days.
    const year: Array<{ at: number; count: number; min: number; mean: number; max: number }> = [];
    const yStart = start - 400 * DAY;
    for (let at = yStart; at < yStart + 365 * DAY; at += 300_000)
      year.push({ at, count: 30, min: 19, mean: 20, max: 21 });
    const db = (await import('better-sqlite3')).default(file);
    const ins = db.prepare(
      'INSERT INTO history_agg (entity, at, step, count, min, mean, max) VALUES (?, ?, 300000, ?, ?, ?, ?)',
    );
    db.transaction(() => {
      for (const b of year) ins.run('yearly', b.at, b.count, b.min, b.mean, b.max);
    })();
    db.close();
    const timed = async (step: number) => {
      const runs: number[] = [];
      let points = 0;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        points = (await store.history.buckets('yearly', yStart, yStart + 365 * DAY, step)).length;
        runs.push(performance.now() - t0);
      }
      runs.sort((a, b) => a - b);
      return { ms: runs[2] as number, points };
    };
    const threeHours = await timed(3 * 3_600_000);
    const daily = await timed(DAY);
    figures.yearQueryMs = threeHours.ms;
    figures.yearQueryPoints = threeHours.points;
    figures.yearQueryDailyMs = daily.ms;
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    log(
      table(
        [
          'rows/day',
          'flushes/day',
          'written (wchar)/day',
          'write_bytes/day',
          'db file',
          'year @3h',
          'year @1d',
        ],
        [
          [
            int(figures.rowsPerDay),
            int(figures.flushesPerDay),
            mb(figures.wcharPerDay),
            mb(figures.writeBytesPerDay),
            mb(figures.dbBytes),
            `${ms(figures.yearQueryMs)} (${figures.yearQueryPoints} pts)`,
            ms(figures.yearQueryDailyMs),
          ],
        ],
      ),
    );
    return figures;
  } finally {
    await store.close();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-history-'));
  historyBench({ tmp })
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exitCode = 1;
    })
    .finally(() => rmSync(tmp, { recursive: true, force: true }));
}
