import type { z } from 'zod/v3';

type Path = readonly (string | number)[];

/**
 * `safeParse` for values that came from `${VAR}` or `!secret`. Those stay strings (they are data,
 * not YAML), so where the schema wants a number or a boolean and got such a string, the string
 * is converted, if it is exactly a decimal number or `true`/`false`, and the parse retried.
 * The schema decides, so `port: ${PORT}` is a number while `token: ${TOKEN}` of only digits
 * stays the string it is. Values written in the file itself are never converted.
 *
 * `prefix` is where `value` sits in the document; `wasSubstituted` says whether a path holds a
 * substituted value.
 */
export function coercingParse<T extends z.ZodTypeAny>(
  schema: T,
  value: unknown,
  prefix: Path,
  wasSubstituted: (path: Path) => boolean,
): z.SafeParseReturnType<unknown, z.output<T>> {
  // Every round converts at least one string that never needs converting again, so the number of
  // rounds is bounded by the substituted values; the cap is a second guard.
  for (let round = 0; ; round++) {
    const result = schema.safeParse(value);
    if (result.success || round >= 50) return result;
    let changed = false;
    for (const issue of leafIssues(result.error.issues)) {
      if (issue.code !== 'invalid_type' || issue.received !== 'string') continue;
      const path = issue.path as Path;
      if (!wasSubstituted([...prefix, ...path])) continue;
      const current = getIn(value, path);
      if (typeof current !== 'string') continue;
      const typed = typedValue(current, issue.expected);
      if (typed === undefined) continue;
      if (setIn(value, path, typed)) changed = true;
    }
    if (!changed) return result;
  }
}

/** A union reports what each member wanted; a number in one member is worth trying. */
function leafIssues(issues: readonly z.ZodIssue[]): z.ZodIssue[] {
  return issues.flatMap((i) =>
    i.code === 'invalid_union' ? leafIssues(i.unionErrors.flatMap((e) => e.issues)) : [i],
  );
}

function typedValue(s: string, expected: string): number | boolean | undefined {
  if ((expected === 'number' || expected === 'integer') && /^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  if (expected === 'boolean' && (s === 'true' || s === 'false')) return s === 'true';
  return undefined;
}

function getIn(value: unknown, path: Path): unknown {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v;
}

function setIn(value: unknown, path: Path, next: unknown): boolean {
  const parent = getIn(value, path.slice(0, -1));
  const key = path[path.length - 1];
  if (key === undefined || parent === null || typeof parent !== 'object') return false;
  (parent as Record<string | number, unknown>)[key] = next;
  return true;
}
