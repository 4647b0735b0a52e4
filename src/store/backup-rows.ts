import { idPattern, idSchema } from '../contract/kinds.js';
import { HearthError } from '../core/errors.js';
import { type AutomationRun, BACKUP_TABLES, type BackupTable, type DumpChunk } from './store.js';

/**
 * The rows of a backup (DumpChunk.rows), the same from both store kinds, so an archive made on
 * SQLite restores into PostgreSQL and back without loss:
 *
 *     entity_state     { id: text, kind: text, state: JSON, updated_at: int }
 *     automation_run   { id: int, automation: text, trigger: text, started_at: int,
 *                        ended_at: int | null, outcome: text, error: text | null }
 *     automation_mark  { automation: text, at: int }
 *     history_raw      { entity: text, at: int, seq: int = 0, num: real | null, text: text | null }
 *     history_agg      { entity: text, at: int, step: int, count: int, min: real, mean: real, max: real }
 *
 * Keys are the schema's column names. `int` is a safe integer (times are epoch ms), `real` a
 * finite number, `text` a string, `JSON` the state's parsed value (on SQLite it is stored as
 * text, on PostgreSQL as jsonb: both dump it parsed). `outcome` is one of AutomationRun's.
 * Each table's rows come in its primary key's order on the source (history_raw is keyed by
 * (at, entity, seq) on SQLite, (entity, at, seq) on PostgreSQL); loading does not depend on the
 * order. A nullable column may be left out of a row (it loads as null), and so may a column with
 * a default (`= 0`: history_raw.seq, which archives of a schema before it do not have); any other
 * missing column, a column not listed here, or a value of the wrong type is refused.
 */
export interface BackupColumn {
  name: string;
  /** `id`: text that is an entity or automation id by the config's rule (contract/kinds.ts idSchema). */
  type: 'text' | 'id' | 'int' | 'real' | 'json' | 'outcome';
  nullable: boolean;
  /** What a row without this column (an archive older than the column) loads as. */
  fallback?: number;
}

const col = (name: string, type: BackupColumn['type'], nullable = false, fallback?: number): BackupColumn =>
  fallback === undefined ? { name, type, nullable } : { name, type, nullable, fallback };

export const BACKUP_COLUMNS: Record<BackupTable, readonly BackupColumn[]> = {
  entity_state: [col('id', 'id'), col('kind', 'text'), col('state', 'json'), col('updated_at', 'int')],
  automation_run: [
    col('id', 'int'),
    col('automation', 'id'),
    col('trigger', 'text'),
    col('started_at', 'int'),
    col('ended_at', 'int', true),
    col('outcome', 'outcome'),
    col('error', 'text', true),
  ],
  automation_mark: [col('automation', 'id'), col('at', 'int')],
  history_raw: [
    col('entity', 'id'),
    col('at', 'int'),
    col('seq', 'int', false, 0),
    col('num', 'real', true),
    col('text', 'text', true),
  ],
  history_agg: [
    col('entity', 'id'),
    col('at', 'int'),
    col('step', 'int'),
    col('count', 'int'),
    col('min', 'real'),
    col('mean', 'real'),
    col('max', 'real'),
  ],
};

const OUTCOMES: ReadonlySet<string> = new Set<AutomationRun['outcome']>([
  'queued',
  'running',
  'ok',
  'failed',
  'skipped',
  'cancelled',
]);

/** Rows per chunk of a dump when the caller does not say. */
export const DEFAULT_CHUNK_ROWS = 1000;

export function checkChunkRows(chunkRows: number): void {
  if (!Number.isSafeInteger(chunkRows) || chunkRows < 1) {
    throw new RangeError(`chunkRows must be a positive integer, not ${chunkRows}`);
  }
}

/** Table names as a person reads them, for messages. */
const NOUNS: Record<BackupTable, [string, string]> = {
  entity_state: ['entity state', 'entity states'],
  automation_run: ['automation run', 'automation runs'],
  automation_mark: ['schedule mark', 'schedule marks'],
  history_raw: ['history row', 'history rows'],
  history_agg: ['history bucket', 'history buckets'],
};

/** The refusal of load() without `replace` on a store that holds rows: says what is there. */
export function notEmptyError(counts: Record<BackupTable, number>, where: string): HearthError {
  const held = BACKUP_TABLES.filter((t) => counts[t] > 0).map(
    (t) => `${counts[t]} ${NOUNS[t][counts[t] === 1 ? 0 : 1]}`,
  );
  const list = held.length > 1 ? `${held.slice(0, -1).join(', ')} and ${held.at(-1)}` : held[0];
  return new HearthError(
    'HEARTH_ERR_STORE_NOT_EMPTY',
    `${where} is not empty (it holds ${list}): nothing was restored; --force replaces what it holds with the backup`,
  );
}

/** A backup that cannot be loaded: foreign or damaged. Nothing was written. */
export function badBackup(message: string): HearthError {
  return new HearthError(
    'HEARTH_ERR_STORE',
    `the backup cannot be restored: ${message}; nothing was restored`,
    {
      hint: 'The archive is damaged, or was not made by hearth backup; restore another one.',
    },
  );
}

/** A name from the archive, for a message: quoted and cut short (it may be anything). */
const quote = (name: string): string => JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);

const typeOf = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;

/**
 * Checks one row against BACKUP_COLUMNS and answers its values in column order, ready to bind:
 * the JSON column as JSON text. `n` (1-based, per table) names the row in messages; values are
 * described by their type, never echoed.
 */
export function checkRow(table: BackupTable, row: unknown, n: number): unknown[] {
  const where = `row ${n} of ${table}`;
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw badBackup(`${where} is ${typeOf(row)}, not an object`);
  }
  const columns = BACKUP_COLUMNS[table];
  const record = row as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!columns.some((c) => c.name === key))
      throw badBackup(`${where} has a column ${quote(key)} that ${table} does not have`);
  }
  return columns.map((c) => {
    const v = record[c.name];
    if (v === undefined || v === null) {
      if (c.nullable) return null;
      if (v === undefined && c.fallback !== undefined) return c.fallback;
      // entity_state.state may be JSON null; only a missing state is refused.
      if (c.type === 'json' && v === null) return 'null';
      throw badBackup(`${where} has no ${c.name}`);
    }
    switch (c.type) {
      case 'text':
        if (typeof v !== 'string') throw badBackup(`${where}: ${c.name} is ${typeOf(v)}, not text`);
        return v;
      case 'id': {
        // The config's own rule for ids, so a row cannot bring in an id no config or press could
        // (a `+` or `#` in an MQTT topic, a `/` in a URL, a NUL, an endless name).
        if (typeof v !== 'string') throw badBackup(`${where}: ${c.name} is ${typeOf(v)}, not text`);
        // The regex for every row (history has millions); the schema only to word a refusal.
        if (!idPattern.test(v)) {
          const rule = idSchema.safeParse(v).error?.issues[0]?.message;
          throw badBackup(`${where}: ${c.name} ${quote(v)} is not an id (${rule})`);
        }
        return v;
      }
      case 'outcome':
        if (typeof v !== 'string' || !OUTCOMES.has(v)) {
          throw badBackup(`${where}: ${c.name} is not one of ${[...OUTCOMES].join(', ')}`);
        }
        return v;
      case 'int':
        if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
          throw badBackup(`${where}: ${c.name} is ${typeOf(v)}, not an integer`);
        }
        return v;
      case 'real':
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw badBackup(`${where}: ${c.name} is ${typeOf(v)}, not a finite number`);
        }
        return v;
      case 'json': {
        const text = JSON.stringify(v);
        if (text === undefined) throw badBackup(`${where}: ${c.name} is ${typeOf(v)}, not JSON`);
        return text;
      }
    }
    throw new Error(`no check for ${c.type}`);
  });
}

/**
 * Reads `chunks`, checks every chunk and row, and hands the rows to `write` in batches of at most
 * `batchRows` of one table (consecutive chunks of a table are merged, so small chunks still load
 * in big statements). Resolves how many rows were written.
 */
export async function feedChunks(
  chunks: AsyncIterable<DumpChunk>,
  batchRows: number,
  write: (table: BackupTable, rows: unknown[][]) => Promise<void> | void,
): Promise<number> {
  const seen = new Map<BackupTable, number>();
  let table: BackupTable | undefined;
  let batch: unknown[][] = [];
  let written = 0;
  const flush = async () => {
    if (table !== undefined && batch.length > 0) {
      const rows = batch;
      batch = [];
      await write(table, rows);
      written += rows.length;
    }
  };
  let n = 0;
  for await (const chunk of chunks) {
    n++;
    if (typeof chunk !== 'object' || chunk === null) throw badBackup(`chunk ${n} is ${typeOf(chunk)}`);
    const name = (chunk as { table?: unknown }).table;
    if (typeof name !== 'string' || !(BACKUP_TABLES as readonly string[]).includes(name)) {
      throw badBackup(
        `chunk ${n} names ${typeof name === 'string' ? `the table ${quote(name)}, which hearth does not back up` : 'no table'} (it backs up ${BACKUP_TABLES.join(', ')})`,
      );
    }
    const rows = (chunk as { rows?: unknown }).rows;
    if (!Array.isArray(rows)) throw badBackup(`chunk ${n} (${name}) has no list of rows`);
    if (name !== table) {
      await flush();
      table = name as BackupTable;
    }
    let count = seen.get(table) ?? 0;
    for (const row of rows) {
      batch.push(checkRow(table, row, ++count));
      if (batch.length >= batchRows) await flush();
    }
    seen.set(table, count);
  }
  await flush();
  return written;
}
