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
