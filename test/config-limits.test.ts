import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, formatIssue } from '../src/config/errors.js';
import { type HearthConfig, loadConfigFile } from '../src/config/load.js';
import { drivers } from '../src/drivers/index.js';
import { runCli } from './support/cli-run.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-config-limits-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function folder(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(root, 'case-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function load(file: string): HearthConfig {
  return loadConfigFile(file, { drivers, env: {} });
}

/** The one-line messages of the ConfigError that loading `file` throws. */
function problems(file: string): string[] {
  try {
    load(file);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue);
    throw err;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

/** Nine aliases of nine aliases ...: a few hundred bytes that expand to 9^6 strings. */
const ALIAS_BOMB = `a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]
`;

const QUOTE = 'quote a value that starts with one of # & ! * @ ` " \' | > % (\'#abc\' or "#abc")';
const NOT_A_FILE = 'pass --config with the path of your hearth.yaml, or start from examples/hearth.yaml';

describe('YAML that cannot become a config is a ConfigError, never a crash', () => {
  it('an alias bomb is refused quickly', () => {
    const file = join(folder({ 'hearth.yaml': ALIAS_BOMB }), 'hearth.yaml');
    const started = performance.now();
    expect(problems(file)).toEqual([
      `${file}: its aliases (*name) expand to more than 100 copies; write the values out, or use fewer nested aliases`,
    ]);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('an alias without an anchor is reported at its line', () => {
    const file = join(folder({ 'hearth.yaml': 'http:\n  <<: *nope\n  port: 1\n' }), 'hearth.yaml');
    expect(problems(file)).toEqual([
      `${file}:2:7: an alias (*name) with no anchor (&name) before it; ${QUOTE}`,
    ]);
  });

  it('a merge of something that is not a mapping is reported at its line', () => {
    const file = join(folder({ 'hearth.yaml': 'timezone: UTC\nhttp:\n  <<: 5\n' }), 'hearth.yaml');
    expect(problems(file)).toEqual([
      `${file}:3:7: \`<<\` merges mappings only: write \`<<: *name\` where \`&name\` marks a mapping`,
    ]);
  });

  it('a merge of a mapping works, so one entry can share another one’s settings', () => {
    const text = `switches:
  - &plug { id: lamp, kind: wemo/v1, address: 10.0.0.5, timeoutMs: 700 }
  - <<: *plug
    id: fan
    address: 10.0.0.6
`;
    const cfg = load(join(folder({ 'hearth.yaml': text }), 'hearth.yaml'));
    expect(cfg.devices.map((d) => [d.config.id, d.config.address, d.config.timeoutMs])).toEqual([
      ['lamp', '10.0.0.5', 700],
      ['fan', '10.0.0.6', 700],
    ]);
  });

  it('a key given twice, and an unknown !tag (which YAML would make an empty value), are errors', () => {
    const file = join(
      folder({ 'hearth.yaml': 'http:\n  port: 1\n  port: 2\n  token: !abcdefghijklmnopq\n' }),
      'hearth.yaml',
    );
    expect(problems(file)).toEqual([
      `${file}:3:3: Map keys must be unique (YAML syntax)`,
      `${file}:4:10: Unresolved tag (YAML syntax); ${QUOTE}`,
    ]);
  });
});

describe('only small regular files are read', () => {
  it('a config over 1 MB is refused before it is parsed', () => {
    const file = join(
      folder({ 'hearth.yaml': `timezone: UTC\n#${'x'.repeat(2 * 1024 * 1024)}\n` }),
      'hearth.yaml',
    );
    expect(problems(file)).toEqual([
      `${file}: cannot read the config file (it is ${2 * 1024 * 1024 + 16} bytes; hearth reads at most 1 MB); ${NOT_A_FILE}`,
    ]);
  });

  it('a config of 1 MB is still read', () => {
    const text = `timezone: UTC\n#${'x'.repeat(1024 * 1024 - 20)}\n`;
    expect(text.length).toBeLessThanOrEqual(1024 * 1024);
    expect(load(join(folder({ 'hearth.yaml': text }), 'hearth.yaml')).timezone).toBe('UTC');
  });

  it('a directory is refused with what it is', () => {
    const dir = folder();
    mkdirSync(join(dir, 'conf'));
    expect(problems(join(dir, 'conf'))).toEqual([
      `${join(dir, 'conf')}: cannot read the config file (it is a directory, not a regular file); ${NOT_A_FILE}`,
    ]);
  });

  it('a secrets file over 1 MB, or a directory, is refused at the !secret that needs it', () => {
    const dir = folder({
      'hearth.yaml': 'secrets: secrets.yaml\nhttp:\n  token: !secret t\n',
      'secrets.yaml': `t: ${'x'.repeat(1024 * 1024 + 1)}\n`,
    });
    const file = join(dir, 'hearth.yaml');
    const secrets = join(dir, 'secrets.yaml');
    expect(problems(file)).toEqual([
      `${file}:3:18: cannot read secrets file ${secrets}: it is ${1024 * 1024 + 5} bytes; hearth reads at most 1 MB`,
    ]);
    rmSync(secrets);
    mkdirSync(secrets);
    expect(problems(file)).toEqual([
      `${file}:3:18: cannot read secrets file ${secrets}: it is a directory, not a regular file`,
    ]);
  });
});

// Through the real CLI, in a child process: a FIFO that hung the open, or /dev/zero that filled
// memory, would hang or kill that child, not the test runner.
describe('hearth check and start on what is not a config: one line, exit 1, no stack', () => {
  it('a FIFO, /dev/zero, a FIFO as secrets file, an alias bomb and `<<: *nope`', {
    timeout: 120_000,
  }, async () => {
    const dir = folder({
      'bomb.yaml': ALIAS_BOMB,
      'nope.yaml': 'http:\n  <<: *nope\n',
      'uses-fifo.yaml': 'secrets: fifo\nhttp:\n  token: !secret t\n',
    });
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const cases: Array<[string[], RegExp]> = [
      [
        ['check', '--config', fifo],
        /: cannot read the config file \(it is a named pipe, not a regular file\)/,
      ],
      [
        ['check', '--config', '/dev/zero'],
        /: cannot read the config file \(it is a character device, not a regular file\)/,
      ],
      [
        ['check', '--config', join(dir, 'uses-fifo.yaml')],
        /:3:18: cannot read secrets file .*fifo: it is a named pipe/,
      ],
      [
        ['check', '--config', join(dir, 'bomb.yaml')],
        /: its aliases \(\*name\) expand to more than 100 copies/,
      ],
      [
        ['start', '--config', join(dir, 'bomb.yaml')],
        /: its aliases \(\*name\) expand to more than 100 copies/,
      ],
      [['start', '--config', join(dir, 'nope.yaml')], /:2:7: an alias \(\*name\) with no anchor/],
      [
        ['start', '--config', fifo],
        /: cannot read the config file \(it is a named pipe, not a regular file\)/,
      ],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args, { timeoutMs: 90_000 })));
    results.forEach((r, i) => {
      const [args, pattern] = cases[i] as [string[], RegExp];
      const path = args[2] as string;
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 1, stdout: '' });
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines[0]?.startsWith(path)).toBe(true);
      expect(lines[0]).toMatch(pattern);
      // The message, then at most the problem count or the hint: no stack trace.
      expect(lines.length).toBeLessThanOrEqual(2);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    });
  });
});
