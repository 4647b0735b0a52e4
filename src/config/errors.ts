import type { z } from 'zod/v3';
import { HearthError } from '../core/errors.js';

export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** Dotted path of the field, e.g. `switches[0].port`; empty for the file itself. */
  field: string;
  message: string;
}

/** Every problem found in one config file, each with file:line:col, the field and what to do. */
export class ConfigError extends HearthError {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super('HEARTH_ERR_CONFIG', issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return i.field ? `${where}: ${i.field}: ${i.message}` : `${where}: ${i.message}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** A zod issue as a short phrase that follows a field name: `port: must be at most 65535`. */
export function describeIssue(issue: z.ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.received === 'undefined')
    return `is required (${issue.expected})`;
  if (issue.code === 'invalid_type') return `expected ${issue.expected}, received ${issue.received}`;
  if (issue.code === 'invalid_enum_value') {
    return `must be one of ${issue.options.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (issue.code === 'invalid_literal') return `must be ${JSON.stringify(issue.expected)}`;
  if (issue.code === 'too_big' || issue.code === 'too_small') {
    const limit =
      issue.code === 'too_big' ? `at most ${String(issue.maximum)}` : `at least ${String(issue.minimum)}`;
    if (issue.type === 'number') return `must be ${limit}`;
    if (issue.type === 'string') return `must be ${limit} characters long`;
  }
  return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
}

/**
 * Any error from loading a config, as a ConfigError naming the file. An unexpected one keeps only
 * its class name: its message may quote a config value, and config values can be secrets.
 */
export function asConfigError(err: unknown, file: string): ConfigError {
  if (err instanceof ConfigError) return err;
  const kind = err instanceof Error ? err.name : typeof err;
  return new ConfigError([
    {
      file,
      line: 0,
      col: 0,
      field: '',
      message: `could not be checked: hearth failed inside (${kind}); this is a bug, please report it`,
    },
  ]);
}
