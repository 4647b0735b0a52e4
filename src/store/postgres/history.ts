import { type KeyedHistoryRow, keyedHistoryRows } from '../history-seq.js';
import type { HistoryBucket, HistoryRow, HistoryStore, HistoryTextBucket } from '../store.js';
import type { Db } from './db.js';

/** The entities of a table keyed by (entity, at), by a skip scan of that key (see ../sqlite/history.ts). */
const entitiesOf = (table: string) =>
  `WITH RECURSIVE e(id) AS (
     SELECT min(entity) FROM ${table}
     UNION ALL
     SELECT (SELECT min(entity) FROM ${table} WHERE entity > e.id) FROM e WHERE e.id IS NOT NULL
   ) SELECT id FROM e WHERE id IS NOT NULL`;

const int = Math.round;

/** History on PostgreSQL; see HistoryStore. bigint comes back as float8 (exact below 2^53). */
export function postgresHistory(db: Db): HistoryStore {
  const read = (what: string) => ({ idempotent: true, what });
  return {
    async append(rows) {
      if (rows.length === 0) return;
      // One statement, so one transaction; the same key twice in one statement is an error, so
      // the last of each wins here, as it would row by row.
      const last = new Map<string, KeyedHistoryRow>();
      for (const r of keyedHistoryRows(rows)) last.set(`${r.id}\u0000${r.at}\u0000${r.seq}`, r);
      const kept = [...last.values()];
      await db.query(
        `INSERT INTO history_raw (entity, at, seq, num, text)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::float8[], $5::text[])
         ON CONFLICT (entity, at, seq) DO UPDATE SET num = excluded.num, text = excluded.text`,
        [
          kept.map((r) => r.id),
          kept.map((r) => r.at),
          kept.map((r) => r.seq),
          kept.map((r) => r.num),
          kept.map((r) => r.text),
        ],
        // Replaying it after a lost reply writes the same rows over themselves.
        { idempotent: true, what: `record ${kept.length} history rows` },
      );
    },
    async raw(id, from, to, limit) {
      return db.query<HistoryRow>(
        `SELECT entity AS id, at::float8 AS at, num, text FROM history_raw
         WHERE entity = $1 AND at >= $2 AND at < $3 ORDER BY at, seq LIMIT $4`,
        [id, int(from), int(to), limit],
        read(`read the history of ${id}`),
      );
    },
    async countRaw(id, from, to) {
      const rows = await db.query<{ n: number }>(
        'SELECT count(*)::float8 AS n FROM history_raw WHERE entity = $1 AND at >= $2 AND at < $3',
        [id, int(from), int(to)],
        read(`count the history of ${id}`),
      );
      return rows[0]?.n ?? 0;
    },
    async buckets(id, from, to, step) {
      return db.query<HistoryBucket>(
        `SELECT b::float8 AS at, sum(c)::float8 AS count, min(lo) AS min, sum(m * c) / sum(c) AS mean, max(hi) AS max FROM (
           SELECT at - at % $4::bigint AS b, 1::bigint AS c, num AS lo, num AS m, num AS hi FROM history_raw
           WHERE entity = $1 AND at >= $2 AND at < $3 AND num IS NOT NULL
           UNION ALL
           SELECT at - at % $4::bigint, count, min, mean, max FROM history_agg
           WHERE entity = $1 AND at >= $2 AND at < $3
         ) t GROUP BY b ORDER BY b`,
        [id, int(from), int(to), int(step)],
        read(`read the history of ${id}`),
      );
    },
    async textBuckets(id, from, to, step) {
      return db.query<HistoryTextBucket>(
        `SELECT b::float8 AS at, text FROM (
           SELECT at - at % $4::bigint AS b, text,
                  row_number() OVER (PARTITION BY at - at % $4::bigint ORDER BY at DESC, seq DESC) AS rn
           FROM history_raw WHERE entity = $1 AND at >= $2 AND at < $3 AND num IS NULL
         ) t WHERE rn = 1 ORDER BY b`,
        [id, int(from), int(to), int(step)],
        read(`read the history of ${id}`),
      );
    },
    async has(id) {
      const rows = await db.query<{ yes: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM history_raw WHERE entity = $1)
             OR EXISTS (SELECT 1 FROM history_agg WHERE entity = $1) AS yes`,
        [id],
        read(`look for the history of ${id}`),
      );
      return rows[0]?.yes === true;
    },
    async compact(rawBefore, keepBefore, step) {
      // Safe to run again whole: folded rows are deleted in the same transaction.
      return db.transaction(
        async (q) => {
          const ids = new Set(
            [
              ...(await q<{ id: string }>(entitiesOf('history_raw'), [])),
              ...(await q<{ id: string }>(entitiesOf('history_agg'), [])),
            ].map((r) => r.id),
          );
          let folded = 0;
          let deleted = 0;
          for (const id of ids) {
            await q(
              `INSERT INTO history_agg (entity, at, step, count, min, mean, max)
               SELECT entity, at - at % $3::bigint, $3::bigint, count(*), min(num), avg(num), max(num)
               FROM history_raw WHERE entity = $1 AND at < $2 AND num IS NOT NULL
               GROUP BY entity, at - at % $3::bigint
               ON CONFLICT (entity, at) DO UPDATE SET
                 count = history_agg.count + excluded.count,
                 min = least(history_agg.min, excluded.min),
                 max = greatest(history_agg.max, excluded.max),
                 mean = (history_agg.mean * history_agg.count + excluded.mean * excluded.count)
                        / (history_agg.count + excluded.count)`,
              [id, int(rawBefore), int(step)],
            );
            const count = async (sql: string, before: number) =>
              (
                await q<{ n: number }>(`WITH d AS (${sql} RETURNING 1) SELECT count(*)::float8 AS n FROM d`, [
                  id,
                  int(before),
                ])
              )[0]?.n ?? 0;
            folded += await count(
              'DELETE FROM history_raw WHERE entity = $1 AND at < $2 AND num IS NOT NULL',
              rawBefore,
            );
            deleted += await count('DELETE FROM history_raw WHERE entity = $1 AND at < $2', keepBefore);
            deleted += await count('DELETE FROM history_agg WHERE entity = $1 AND at < $2', keepBefore);
          }
          return { folded, deleted };
        },
        { idempotent: true, what: 'compact the history' },
      );
    },
  };
}
