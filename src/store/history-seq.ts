import type { HistoryRow } from './store.js';

/** A history row as both backends write it: `at` a whole ms, `seq` given. */
export interface KeyedHistoryRow {
  id: string;
  at: number;
  seq: number;
  num: number | null;
  text: string | null;
}

/**
 * The rows of one append with their key (see HistoryRow.seq): a row without `seq` comes after
 * the rows of its entity and ms before it in the batch, so readings of one ms in one batch are
 * all kept, in order, and the same batch appended again gets the same keys (it replaces itself).
 */
export function keyedHistoryRows(rows: readonly HistoryRow[]): KeyedHistoryRow[] {
  const next = new Map<string, number>();
  return rows.map((r) => {
    const at = Math.round(r.at);
    const key = `${r.id}\u0000${at}`;
    const seq = r.seq ?? next.get(key) ?? 0;
    next.set(key, seq + 1);
    return { id: r.id, at, seq, num: r.num, text: r.text };
  });
}
