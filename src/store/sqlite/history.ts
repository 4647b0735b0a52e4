import type SQLite from 'better-sqlite3';
import { keyedHistoryRows } from '../history-seq.js';
import type { HistoryBucket, HistoryRow, HistoryStore, HistoryTextBucket } from '../store.js';

interface Range {
  id: string;
  from: number;
  to: number;
}

/**
 * The entities of history_agg (keyed by (entity, at)), by a skip scan of that key: one seek per
 * entity, whatever the number of rows, and no index on time to write on every append.
 */
const entitiesOf = (table: string) =>
  `WITH RECURSIVE e(id) AS (
     SELECT min(entity) FROM ${table}
     UNION ALL
     SELECT (SELECT min(entity) FROM ${table} WHERE entity > e.id) FROM e WHERE e.id IS NOT NULL
   ) SELECT id FROM e WHERE id IS NOT NULL`;

/** History on SQLite; see HistoryStore. Times are bound as integers (`at - at % step` is a bucket). */
export function sqliteHistory(db: SQLite.Database): HistoryStore {
  const insert = db.prepare<[string, number, number, number | null, string | null]>(
    `INSERT INTO history_raw (entity, at, seq, num, text) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (at, entity, seq) DO UPDATE SET num = excluded.num, text = excluded.text`,
  );
  const append = db.transaction((rows: readonly HistoryRow[]) => {
    for (const r of keyedHistoryRows(rows)) insert.run(r.id, r.at, r.seq, r.num, r.text);
  });
  const raw = db.prepare<[Range & { limit: number }], HistoryRow>(
    `SELECT entity AS id, at, num, text FROM history_raw
     WHERE entity = @id AND at >= @from AND at < @to ORDER BY at, seq LIMIT @limit`,
  );
  const countRaw = db.prepare<[Range], { n: number }>(
    'SELECT count(*) AS n FROM history_raw WHERE entity = @id AND at >= @from AND at < @to',
  );
  const buckets = db.prepare<[Range & { step: number }], HistoryBucket>(
    `SELECT b AS at, sum(c) AS count, min(lo) AS min, sum(m * c) / sum(c) AS mean, max(hi) AS max FROM (
       SELECT at - at % @step AS b, 1 AS c, num AS lo, num AS m, num AS hi FROM history_raw
       WHERE entity = @id AND at >= @from AND at < @to AND num IS NOT NULL
       UNION ALL
       SELECT at - at % @step, count, min, mean, max FROM history_agg
       WHERE entity = @id AND at >= @from AND at < @to
     ) GROUP BY b ORDER BY b`,
  );
  const textBuckets = db.prepare<[Range & { step: number }], HistoryTextBucket>(
    `SELECT b AS at, text FROM (
       SELECT at - at % @step AS b, text, row_number() OVER (PARTITION BY at - at % @step ORDER BY at DESC, seq DESC) AS rn
       FROM history_raw WHERE entity = @id AND at >= @from AND at < @to AND num IS NULL
     ) WHERE rn = 1 ORDER BY b`,
  );
  // Buckets first (keyed by entity); raw rows only when there are none (a scan of `raw` days).
  const has = db.prepare<[string, string], { yes: number }>(
    `SELECT EXISTS (SELECT 1 FROM history_agg WHERE entity = ?)
         OR EXISTS (SELECT 1 FROM history_raw WHERE entity = ?) AS yes`,
  );
  const aggEntities = db.prepare<[], { id: string }>(entitiesOf('history_agg'));
  const fold = db.prepare<[{ before: number; step: number }]>(
    `INSERT INTO history_agg (entity, at, step, count, min, mean, max)
     SELECT entity, at - at % @step, @step, count(*), min(num), avg(num), max(num) FROM history_raw
     WHERE at < @before AND num IS NOT NULL
     GROUP BY entity, at - at % @step
     ON CONFLICT (entity, at) DO UPDATE SET
       count = history_agg.count + excluded.count,
       min = min(history_agg.min, excluded.min),
       max = max(history_agg.max, excluded.max),
       mean = (history_agg.mean * history_agg.count + excluded.mean * excluded.count)
              / (history_agg.count + excluded.count)`,
  );
  const dropFolded = db.prepare<[number]>('DELETE FROM history_raw WHERE at < ? AND num IS NOT NULL');
  const dropRaw = db.prepare<[number]>('DELETE FROM history_raw WHERE at < ?');
  const dropAgg = db.prepare<[string, number]>('DELETE FROM history_agg WHERE entity = ? AND at < ?');
  const compact = db.transaction((rawBefore: number, keepBefore: number, step: number) => {
    // Raw rows by time (their key); buckets entity by entity (theirs).
    fold.run({ before: rawBefore, step });
    const folded = dropFolded.run(rawBefore).changes;
    let deleted = dropRaw.run(keepBefore).changes;
    for (const { id } of aggEntities.all()) deleted += dropAgg.run(id, keepBefore).changes;
    return { folded, deleted };
  });
  const int = Math.round;
  return {
    async append(rows) {
      if (rows.length > 0) append(rows);
    },
    async raw(id, from, to, limit) {
      return raw.all({ id, from: int(from), to: int(to), limit });
    },
    async countRaw(id, from, to) {
      return countRaw.get({ id, from: int(from), to: int(to) })?.n ?? 0;
    },
    async buckets(id, from, to, step) {
      return buckets.all({ id, from: int(from), to: int(to), step: int(step) });
    },
    async textBuckets(id, from, to, step) {
      return textBuckets.all({ id, from: int(from), to: int(to), step: int(step) });
    },
    async has(id) {
      return (has.get(id, id)?.yes ?? 0) === 1;
    },
    async compact(rawBefore, keepBefore, step) {
      return compact(int(rawBefore), int(keepBefore), int(step));
    },
  };
}
