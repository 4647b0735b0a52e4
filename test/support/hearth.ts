import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Hearth, startHearth } from '../../src/compose.js';
import { loadConfigFile } from '../../src/config/load.js';
import type { Clock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/log.js';
import { drivers } from '../../src/drivers/index.js';

export interface TestHearth extends Hearth {
  dir: string;
  /** Stops hearth and removes its temp folder. */
  close(): Promise<void>;
}

/** A temp folder that the caller removes. */
export function tempDir(prefix = 'hearth-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestHearthOptions {
  /** The value of `http:` (flow YAML), instead of `{ host: 127.0.0.1, port: 0 }`. */
  http?: string;
  /** The clock hearth runs on; a FakeClock (fake-clock.ts) for schedules. */
  clock?: Clock;
}

/**
 * Starts a real hearth in this process from config text (port 0: any free port), with its
 * SQLite file in a temp folder, listening on loopback.
 */
export async function startTestHearth(yaml: string, opts: TestHearthOptions = {}): Promise<TestHearth> {
  const dir = tempDir();
  const file = join(dir, 'hearth.yaml');
  const base = `http: ${opts.http ?? '{ host: 127.0.0.1, port: 0 }'}\nstorage: { sqlite: hearth.db }\n`;
  writeFileSync(file, base + yaml);
  const config = loadConfigFile(file, { drivers });
  const hearth = await startHearth(config, { log: silentLogger(), clock: opts.clock });
  return {
    ...hearth,
    dir,
    close: async () => {
      await hearth.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  type: string | null;
  body: string;
  headers: Headers;
}

/** One real HTTP request; the body comes back as text. */
export async function http(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(10_000) });
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: await res.text(),
    headers: res.headers,
  };
}

export const post = (url: string, init: RequestInit = {}) => http(url, { ...init, method: 'POST' });
