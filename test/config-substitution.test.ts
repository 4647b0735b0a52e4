import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod/v3';
import { ConfigError, formatIssue } from '../src/config/errors.js';
import { type HearthConfig, loadConfigFile, parseConfig } from '../src/config/load.js';
import type { Driver } from '../src/core/driver.js';
import { drivers } from '../src/drivers/index.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-config-subst-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The characters YAML gives a meaning at the start of a plain value. */
const leading = ['#', '&', '!', '*', '@', '`', '"', "'", '|', '>', '%'];

/** A long random body, so finding it in an error message can only be a leak. */
function tokenStarting(c: string): string {
  return `${c}${randomBytes(18).toString('hex')}`;
}

function write(files: Record<string, string>): string {
  const dir = mkdtempSync(join(root, 'case-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return join(dir, 'hearth.yaml');
}

function load(file: string, env: NodeJS.ProcessEnv = {}): HearthConfig {
  return loadConfigFile(file, { drivers, env });
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

const envToken = `http:\n  port: 0\n  token: \${HEARTH_TOKEN}\n`;
const secretToken = 'secrets: secrets.yaml\nhttp:\n  port: 0\n  token: !secret hearth_token\n';

describe('a token from the environment or !secret is the token, whatever it starts with', () => {
  it.each(leading)('through the environment: a token starting with %s is kept as it is', (c) => {
    const token = tokenStarting(c);
    expect(load(write({ 'hearth.yaml': envToken }), { HEARTH_TOKEN: token }).http.token).toBe(token);
  });

  it.each(leading)('through a quoted value in the secrets file: %s', (c) => {
    const token = tokenStarting(c);
    // JSON is YAML's double-quoted form.
    const file = write({
      'hearth.yaml': secretToken,
      'secrets.yaml': `hearth_token: ${JSON.stringify(token)}\n`,
    });
    expect(load(file).http.token).toBe(token);
  });

  it.each(leading)(
    'an unquoted value starting with %s in the secrets file is an error at its line that never shows it',
    (c) => {
      const token = tokenStarting(c);
      const file = write({
        'hearth.yaml': secretToken,
        'secrets.yaml': `other: x\nhearth_token: ${token}\n`,
      });
      const error = configError(() => load(file));
      const secrets = join(file, '..', 'secrets.yaml');
      expect(error.issues.length).toBeGreaterThan(0);
      for (const issue of error.issues) {
        expect(issue.file).toBe(secrets);
        expect(issue.line).toBeGreaterThanOrEqual(2);
      }
      expect(error.message).toContain('quote a value that starts with one of # & ! * @');
      expect(error.message).not.toContain(token.slice(1, 12));
    },
  );

  // biome-ignore-start lint/suspicious/noTemplateCurlyInString: the config's ${VAR}, not templates
  it('an unquoted ${VAR} inside a one-line mapping: one error at its line saying to quote it; quoted, it works', () => {
    const env = { HEARTH_TOKEN: 'a-token-of-sixteen-chars-or-more' };
    const bad = write({ 'hearth.yaml': 'timezone: UTC\nhttp: { port: 0, token: ${HEARTH_TOKEN} }\n' });
    const error = configError(() => load(bad, env));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({ line: 2, col: 25 });
    expect(error.message).toMatch(
      /unquoted \$\{VAR\} inside a one-line \{ \.\.\. \}.*quote it \("\$\{VAR\}"\)/,
    );
    const good = write({ 'hearth.yaml': 'timezone: UTC\nhttp: { port: 0, token: "${HEARTH_TOKEN}" }\n' });
    expect(load(good, env).http.token).toBe(env.HEARTH_TOKEN);
  });
  // biome-ignore-end lint/suspicious/noTemplateCurlyInString: the config's ${VAR}, not templates

  it('an empty secret is an error at its line in the secrets file, not a token turned off', () => {
    for (const value of ['', ' ""', " ''", ' # a comment']) {
      const file = write({ 'hearth.yaml': secretToken, 'secrets.yaml': `a: b\nhearth_token:${value}\n` });
      const error = configError(() => load(file));
      expect(error.issues.map(formatIssue)).toEqual([
        `${join(file, '..', 'secrets.yaml')}:2:1: hearth_token: is empty (used by !secret at ${file}:4); write its value, and quote a value that starts with one of # & ! * @ \` " ' | > % ('#abc' or "#abc")`,
      ]);
    }
  });
});

describe('types of substituted values come from the schema', () => {
  const text = `http:
  port: \${PORT}
  token: \${TOKEN}
switches:
  - id: lamp
    kind: wemo/v1
    name: \${NAME}
    address: 127.0.0.1
    timeoutMs: \${TIMEOUT}
    pollSeconds: \${POLL}
    simulate: \${SIMULATE}
`;
  const env = {
    PORT: '8123',
    TOKEN: '12345678901234567890',
    NAME: '42',
    TIMEOUT: '300',
    POLL: '0.5',
    SIMULATE: 'true',
  };

  it('a number or a boolean where the schema wants one, the string everywhere else', () => {
    const cfg = load(write({ 'hearth.yaml': text }), env);
    expect(cfg.http.port).toBe(8123);
    expect(cfg.http.token).toBe('12345678901234567890');
    expect(cfg.devices[0]?.config).toMatchObject({
      name: '42',
      timeoutMs: 300,
      pollSeconds: 0.5,
      simulate: true,
    });
  });

  it('a value that is not exactly a number is not turned into one, and is reported at its line', () => {
    const file = write({ 'hearth.yaml': text });
    const error = configError(() => load(file, { ...env, TIMEOUT: '3e2', SIMULATE: 'yes' }));
    const byLine = [...error.issues].sort((a, b) => a.line - b.line);
    expect(byLine.map((i) => [i.line, i.field, i.message])).toEqual([
      [9, 'switches[0].timeoutMs', 'expected number, received string (got "3e2")'],
      [11, 'switches[0].simulate', 'expected boolean, received string (got "yes")'],
    ]);
  });

  it('a substituted value is data, never YAML: a list in a variable stays a string', () => {
    const file = write({ 'hearth.yaml': `http:\n  allow: \${ALLOW}\n` });
    const error = configError(() => load(file, { ALLOW: '[10.0.0.0/8]' }));
    expect(error.issues.map((i) => [i.line, i.field, i.message])).toEqual([
      [2, 'http.allow', 'expected array, received string (got "[10.0.0.0/8]")'],
    ]);
  });

  it('a value written in the file is never converted: only substituted ones are', () => {
    const file = write({
      'hearth.yaml': 'switches:\n  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, timeoutMs: "300" }\n',
    });
    const error = configError(() => load(file));
    expect(error.issues.map((i) => i.message)).toEqual(['expected number, received string (got "300")']);
  });

  it('secrets are strings too, typed by the schema where they are used', () => {
    const file = write({
      'hearth.yaml':
        'secrets: secrets.yaml\nswitches:\n  - { id: lamp, kind: wemo/v1, address: !secret addr, timeoutMs: !secret t, name: !secret n }\n',
      'secrets.yaml': 'addr: 10.0.0.5\nt: 700\nn: 0123\n',
    });
    expect(load(file).devices[0]?.config).toMatchObject({
      address: '10.0.0.5',
      timeoutMs: 700,
      name: '0123',
    });
  });
});

describe('a failure inside hearth while checking a config', () => {
  it('is one ConfigError naming the file, without the thrown message (it could quote a secret)', () => {
    const broken: Driver = {
      name: 'broken',
      configKinds: ['broken/v1'],
      section: 'switches',
      entities: () => [],
      configSchema: z.unknown().transform(() => {
        throw new TypeError('value s3cr3t-value was bad');
      }) as unknown as Driver['configSchema'],
      setup: () => Promise.reject(new Error('never started')),
    };
    const error = configError(() =>
      parseConfig('switches:\n  - { id: x, kind: broken/v1 }\n', '/etc/hearth/hearth.yaml', {
        drivers: [broken],
        env: {},
      }),
    );
    expect(error.message).toBe(
      '/etc/hearth/hearth.yaml: could not be checked: hearth failed inside (TypeError); this is a bug, please report it',
    );
  });
});
