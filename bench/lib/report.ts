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

export function ms(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(2);
}

export function int(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? 'n/a' : Math.round(v).toString();
}

export function ratio(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(2);
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
}

export function budget(
  name: string,
  value: number | undefined,
  op: Op,
  limit: number,
  unit = 'x',
  note?: string,
): Budget {
  const v = value === undefined || Number.isNaN(value) ? null : value;
  const pass = v === null ? null : op === '<=' ? v <= limit : op === '<' ? v < limit : v >= limit;
  return { name, value: v, op, limit, unit, pass, ...(note ? { note } : {}) };
}

export function budgetTable(budgets: Budget[]): string {
  return table(
    ['budget (DESIGN.md §5)', 'measured', 'limit', 'verdict', 'note'],
    budgets.map((b) => [
      b.name,
      b.value === null ? 'n/a' : `${b.unit === 'x' ? ratio(b.value) : int(b.value)} ${b.unit}`,
      `${b.op} ${b.limit} ${b.unit}`,
      b.pass === null ? 'n/a' : b.pass ? 'PASS' : 'FAIL',
      b.note ?? '',
    ]),
  );
}
