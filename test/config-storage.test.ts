// storage: sqlite or postgres (never both), cluster.leaseSeconds, and a database URL that is
// never echoed, not even when it is wrong.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { parseConfig } from '../src/config/load.js';
import { drivers } from '../src/drivers/index.js';

const parse = (text: string, env: NodeJS.ProcessEnv = {}) =>
  parseConfig(text, '/srv/hearth/hearth.yaml', { drivers, env });
const issues = (text: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parse(text, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

describe('storage and cluster config', () => {
  it('defaults to SQLite and a 5 s lease', () => {
    const cfg = parse('timezone: UTC\n');
    expect(cfg.storage).toEqual({ sqlite: '/srv/hearth/data/hearth.db' });
    expect(cfg.cluster).toEqual({ leaseSeconds: 5 });
  });

  it('takes postgres.url from the environment', () => {
    const url = 'postgres://hearth:pw-from-env@db.lan:5432/hearth';
    const cfg = parse(`storage:\n  postgres:\n    url: \${HEARTH_PG_URL}\ncluster: { leaseSeconds: 10 }\n`, {
      HEARTH_PG_URL: url,
    });
    expect(cfg.storage).toEqual({ postgres: { url } });
    expect(cfg.cluster.leaseSeconds).toBe(10);
  });

  it('refuses sqlite and postgres together', () => {
    expect(issues('storage:\n  sqlite: a.db\n  postgres: { url: "postgres://h@db/hearth" }\n')).toContain(
      'either sqlite (one box) or postgres (several boxes), not both',
    );
  });

  it('never echoes a bad URL, which may hold a password', () => {
    const message = issues(`storage:\n  postgres:\n    url: \${HEARTH_PG_URL}\n`, {
      HEARTH_PG_URL: 'mysql://hearth:hunter2-secret@db.lan/hearth',
    });
    expect(message).toContain('storage.postgres.url');
    expect(message).toContain('must be a URL like postgres://');
    expect(message).not.toContain('hunter2');
  });

  it('bounds leaseSeconds to 2..60 whole seconds', () => {
    expect(issues('cluster: { leaseSeconds: 1 }\n')).toContain('cluster.leaseSeconds');
    expect(issues('cluster: { leaseSeconds: 61 }\n')).toContain('cluster.leaseSeconds');
    expect(issues('cluster: { leaseSeconds: 2.5 }\n')).toContain('cluster.leaseSeconds');
  });
});
