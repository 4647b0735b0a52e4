/** Formats rows as a plain-text table; the first column is left-aligned, the others right. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [fmt(headers), rule, ...rows.map(fmt)].join('\n');
}

/** Whether `v` is a figure at all: not missing, NaN or ±Infinity (a ratio over a zero). */
export function measured(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export function ms(v: number | undefined): string {
  return measured(v) ? v.toFixed(2) : 'n/a';
}

export function int(v: number | undefined): string {
  return measured(v) ? Math.round(v).toString() : 'n/a';
}

export function ratio(v: number | undefined): string {
  return measured(v) ? v.toFixed(2) : 'n/a';
}

export type Op = '<=' | '<' | '>=';

export interface Budget {
  name: string;
  value: number | null;
  op: Op;
  limit: number;
  unit: string;
  pass: boolean | null;
  note?: string;
  /** Decimals shown for a value in `unit` other than x; default 0. */
  digits?: number;
}

export function budget(
  name: string,
  value: number | undefined,
  op: Op,
  limit: number,
  unit = 'x',
  note?: string,
  digits?: number,
): Budget {
  // Missing, NaN or infinite (e.g. the floor answered nothing, so a ratio over 0): no verdict.
  const v = measured(value) ? value : null;
  const pass = v === null ? null : op === '<=' ? v <= limit : op === '<' ? v < limit : v >= limit;
  return { name, value: v, op, limit, unit, pass, ...(note ? { note } : {}), ...(digits ? { digits } : {}) };
}

export function budgetTable(budgets: Budget[]): string {
  return table(
    ['budget (DESIGN.md §5)', 'measured', 'limit', 'verdict', 'note'],
    budgets.map((b) => [
      b.name,
      b.value === null
        ? 'n/a'
        : `${b.unit === 'x' ? ratio(b.value) : b.digits ? b.value.toFixed(b.digits) : int(b.value)} ${b.unit}`,
      `${b.op} ${b.limit} ${b.unit}`,
      b.pass === null ? 'n/a' : b.pass ? 'PASS' : 'FAIL',
      b.note ?? '',
    ]),
  );
}
