import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue, formatIssue } from '../src/config/errors.js';
import { type HearthConfig, loadConfigFile, parseConfig } from '../src/config/load.js';
import { defaultAllow } from '../src/config/schema.js';
import { drivers } from '../src/drivers/index.js';
import { kasaDriver } from '../src/drivers/kasa/index.js';
import { wemoDriver } from '../src/drivers/wemo/index.js';

/** The http keys that bound connections and name trusted proxies, at their defaults. */
const connectionDefaults = {
  maxStreamsPerClient: 10,
  maxConnectionsPerClient: 64,
  headersTimeout: 10,
  requestTimeout: 30,
  keepAliveTimeout: 5,
  trustProxy: false,
};

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'hearth-config-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const systemZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const VALID = `timezone: America/Los_Angeles
http:
  port: 8000
storage:
  sqlite: data/hearth.db
switches:
  - { id: lamp, kind: wemo/v1, name: Living room lamp, address: 192.168.1.40, port: 49153 }
  - { id: fan,  kind: kasa/v1, name: Fan, address: 192.168.1.41 }
buttons:
  - { id: bedside, name: Bedside button }
`;

/** A fresh folder of its own for each config, so relative paths and secrets files do not mix. */
function folder(): string {
  return mkdtempSync(join(root, 'case-'));
}

/** Writes `text` as `<fresh folder>/<name>` and returns the file's path. */
function writeConfig(text: string, name = 'hearth.yaml', dir = folder()): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function load(file: string, env: NodeJS.ProcessEnv = {}): HearthConfig {
  return loadConfigFile(file, { drivers, env });
}

/** The ConfigError that loading `text` from a real file throws, with that file's path. */
function failure(text: string, env: NodeJS.ProcessEnv = {}): { file: string; error: ConfigError } {
  const file = writeConfig(text);
  try {
    load(file, env);
  } catch (error) {
    if (error instanceof ConfigError) return { file, error };
    throw error;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}

/**
 * The 1-based line and column where `needle` starts in `text` (its `nth` occurrence, from 0).
 * Expected positions are computed from the YAML itself so that a reader can see what they point at.
 */
function pos(text: string, needle: string, nth = 0): { line: number; col: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`"${needle}" occurs fewer than ${nth + 1} times`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 };
}

/** A device as plain data: the driver's name and the validated config. */
function devicesOf(cfg: HearthConfig): Array<{ driver: string; config: Record<string, unknown> }> {
  return cfg.devices.map((d) => ({ driver: d.driver.name, config: d.config }));
}

describe('a valid config', () => {
  it('loads with every default filled and paths resolved against its folder', () => {
    const dir = folder();
    const file = writeConfig(VALID, 'hearth.yaml', dir);
    const cfg = load(file);

    expect(cfg.file).toBe(file);
    expect(cfg.timezone).toBe('America/Los_Angeles');
    expect(cfg.http).toEqual({
      host: '0.0.0.0',
      port: 8000,
      allow: defaultAllow,
      hostNames: [],
      maxStreams: 100,
      ...connectionDefaults,
    });
    expect(cfg.storage).toEqual({ sqlite: join(dir, 'data', 'hearth.db') });
    expect(cfg.log).toEqual({ level: 'info' });
    expect(cfg.secrets).toBeUndefined();
    expect(cfg.devices[0]?.driver).toBe(wemoDriver);
    expect(cfg.devices[1]?.driver).toBe(kasaDriver);
    expect(devicesOf(cfg)).toEqual([
      {
        driver: 'wemo',
        config: {
          id: 'lamp',
          kind: 'wemo/v1',
          name: 'Living room lamp',
          address: '192.168.1.40',
          port: 49153,
          simulate: false,
          timeoutMs: 2000,
          pollSeconds: 10,
        },
      },
      {
        driver: 'kasa',
        config: {
          id: 'fan',
          kind: 'kasa/v1',
          name: 'Fan',
          address: '192.168.1.41',
          port: 9999,
          simulate: false,
          timeoutMs: 2000,
          pollSeconds: 10,
        },
      },
    ]);
    expect(cfg.buttons).toEqual([{ id: 'bedside', name: 'Bedside button' }]);
  });

  it('fills the wemo port, names from ids and keeps values that were given', () => {
    const cfg = load(
      writeConfig(`switches:
  - { id: plug, kind: wemo/v1, address: plug.lan, timeoutMs: 500, pollSeconds: 0, simulate: true }
buttons:
  - { id: hall }
`),
    );
    expect(devicesOf(cfg)).toEqual([
      {
        driver: 'wemo',
        config: {
          id: 'plug',
          kind: 'wemo/v1',
          name: 'plug',
          address: 'plug.lan',
          port: 49153,
          simulate: true,
          timeoutMs: 500,
          pollSeconds: 0,
        },
      },
    ]);
    expect(cfg.buttons).toEqual([{ id: 'hall', name: 'hall' }]);
  });

  it('gives an empty file every default', () => {
    const dir = folder();
    const cfg = load(writeConfig('', 'hearth.yaml', dir));
    expect(cfg.timezone).toBe(systemZone);
    expect(cfg.http).toEqual({
      host: '0.0.0.0',
      port: 8000,
      allow: defaultAllow,
      hostNames: [],
      maxStreams: 100,
      ...connectionDefaults,
    });
    expect(cfg.storage).toEqual({ sqlite: join(dir, 'data', 'hearth.db') });
    expect(cfg.devices).toEqual([]);
    expect(cfg.buttons).toEqual([]);
  });

  it('keeps an absolute storage path and :memory: as they are', () => {
    expect(load(writeConfig('storage:\n  sqlite: /var/lib/hearth/h.db\n')).storage.sqlite).toBe(
      '/var/lib/hearth/h.db',
    );
    expect(load(writeConfig('storage:\n  sqlite: ":memory:"\n')).storage.sqlite).toBe(':memory:');
  });

  it('parseConfig resolves relative paths against the folder of the file it is given', () => {
    const cfg = parseConfig(VALID, '/srv/home/hearth.yaml', { drivers, env: {} });
    expect(cfg.file).toBe('/srv/home/hearth.yaml');
    expect(cfg.storage.sqlite).toBe('/srv/home/data/hearth.db');
    expect(cfg.devices.map((d) => d.config.id)).toEqual(['lamp', 'fan']);
  });
});

describe('config errors name file:line:col and the field', () => {
  it('a value of the wrong type points at that value', () => {
    const text = `switches:
  - id: lamp
    kind: wemo/v1
    address: 192.168.1.40
  - id: fan
    kind: kasa/v1
    address: 192.168.1.41
    port: abc
`;
    const { file, error } = failure(text);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('HEARTH_ERR_CONFIG');
    const { line, col } = pos(text, 'abc');
    expect({ line, col }).toEqual({ line: 8, col: 11 });
    expect(error.issues).toEqual([
      {
        file,
        line,
        col,
        field: 'switches[1].port',
        message: 'expected number, received string (got "abc")',
      },
    ]);
    expect(error.message).toBe(
      `${file}:8:11: switches[1].port: expected number, received string (got "abc")`,
    );
  });

  it('an unknown switch kind lists the accepted kinds', () => {
    const text = 'switches:\n  - { id: lamp, kind: hue/v1, address: 192.168.1.40 }\n';
    const { file, error } = failure(text);
    const message = 'unknown switch kind "hue/v1"; accepted: wemo/v1, kasa/v1';
    expect(error.issues).toEqual([{ file, ...pos(text, 'hue/v1'), field: 'switches[0].kind', message }]);
    expect(error.message).toBe(`${file}:2:23: switches[0].kind: ${message}`);
  });

  it('an unknown top-level key points at the key and lists the accepted ones', () => {
    const text = `timezone: UTC
swiches:
  - { id: lamp, kind: wemo/v1, address: 192.168.1.40 }
`;
    const { file, error } = failure(text);
    const message =
      'unknown key "swiches"; accepted keys here: timezone, http, storage, cluster, configstacks, mqtt, homeassistant, secrets, log, media, switches, coffee, sprinklers, speakers, calendars, things, zigbee2mqtt, automations, history, backup, buttons, buttonLimits';
    expect(error.issues).toEqual([{ file, line: 2, col: 1, field: 'swiches', message }]);
    expect(error.message).toBe(`${file}:2:1: swiches: ${message}`);
  });

  it('an unknown key inside a switch entry points at that key', () => {
    const text = `switches:
  - id: lamp
    kind: wemo/v1
    address: 192.168.1.40
    adress: 192.168.1.41
`;
    const { file, error } = failure(text);
    expect(error.issues).toEqual([
      { file, line: 5, col: 5, field: 'switches[0].adress', message: 'unknown key "adress"' },
    ]);
    expect(error.message).toBe(`${file}:5:5: switches[0].adress: unknown key "adress"`);
  });

  it('a missing address is reported on its switch entry', () => {
    const text = `switches:
  - id: lamp
    kind: wemo/v1
    name: Lamp
`;
    const { file, error } = failure(text);
    expect(error.issues).toEqual([
      { file, ...pos(text, 'id: lamp'), field: 'switches[0].address', message: 'is required (string)' },
    ]);
    expect(error.message).toBe(`${file}:2:5: switches[0].address: is required (string)`);
  });

  it('a time zone that is not IANA', () => {
    const text = 'timezone: Mars/Olympus_Mons\n';
    const { file, error } = failure(text);
    const message =
      'is not a known IANA time zone (e.g. America/Los_Angeles, Europe/Berlin) (got "Mars/Olympus_Mons")';
    expect(error.issues).toEqual([{ file, line: 1, col: 11, field: 'timezone', message }]);
    expect(error.message).toBe(`${file}:1:11: timezone: ${message}`);
  });

  it('an id used by a switch and a button is reported at the second one', () => {
    const text = `switches:
  - { id: lamp, kind: wemo/v1, address: 192.168.1.40 }
buttons:
  - { id: lamp, name: Lamp button }
`;
    const { file, error } = failure(text);
    const message = 'id "lamp" is already used by switches[0]; every entity id must be unique';
    expect(error.issues).toEqual([{ file, ...pos(text, 'lamp', 1), field: 'buttons[0].id', message }]);
    expect(error.message).toBe(`${file}:4:11: buttons[0].id: ${message}`);
  });

  it('an id used by two switches is reported at the second one', () => {
    const text = `switches:
  - { id: lamp, kind: wemo/v1, address: 192.168.1.40 }
  - { id: lamp, kind: kasa/v1, address: 192.168.1.41 }
`;
    const { file, error } = failure(text);
    expect(error.issues).toEqual([
      {
        file,
        line: 3,
        col: 11,
        field: 'switches[1].id',
        message: 'id "lamp" is already used by switches[0]; every entity id must be unique',
      },
    ]);
  });

  it('ids with characters outside A-Z a-z 0-9 _ - are refused, for switches and buttons', () => {
    const text = `switches:
  - { id: "living room lamp", kind: wemo/v1, address: 192.168.1.40 }
buttons:
  - { id: bed/side }
`;
    const { file, error } = failure(text);
    const rule = 'must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -';
    // Both are reported; which section's issues come first is not part of the contract.
    const byLine = [...error.issues].sort((a, b) => a.line - b.line);
    expect(byLine).toEqual([
      {
        file,
        ...pos(text, '"living room lamp"'),
        field: 'switches[0].id',
        message: `${rule} (got "living room lamp")`,
      },
      { file, ...pos(text, 'bed/side'), field: 'buttons[0].id', message: `${rule} (got "bed/side")` },
    ]);
  });

  it('a YAML syntax error names the line where the parser stopped', () => {
    // The flow map of the lamp is never closed; the parser notices at `http:` on line 3.
    const text = `switches:
  - { id: lamp, kind: wemo/v1, address: 192.168.1.40
http:
  port: 8000
`;
    const { file, error } = failure(text);
    expect(error.issues).toHaveLength(1);
    const issue = error.issues[0] as ConfigIssue;
    expect(issue.message).toBe(
      'Flow map in block collection must be sufficiently indented and end with a } (YAML syntax)',
    );
    expect({ file: issue.file, line: issue.line, col: issue.col, field: issue.field }).toEqual({
      file,
      line: 3,
      col: 1,
      field: '',
    });
    expect(error.message).toBe(`${file}:3:1: ${issue.message}`);
  });

  it('reports every problem of the switch list together, in order', () => {
    const text = `switches:
  - { id: lamp, kind: wemo/v1, address: 192.168.1.40, port: abc }
  - { id: heater, kind: zigbee/v1, address: 192.168.1.42 }
  - { id: fan, kind: kasa/v1 }
`;
    const { file, error } = failure(text);
    expect(error.issues).toEqual([
      {
        file,
        ...pos(text, 'abc'),
        field: 'switches[0].port',
        message: 'expected number, received string (got "abc")',
      },
      {
        file,
        ...pos(text, 'zigbee/v1'),
        field: 'switches[1].kind',
        message: 'unknown switch kind "zigbee/v1"; accepted: wemo/v1, kasa/v1',
      },
      { file, ...pos(text, '{ id: fan'), field: 'switches[2].address', message: 'is required (string)' },
    ]);
    expect(error.message.split('\n')).toEqual(error.issues.map(formatIssue));
    expect(error.message.split('\n')[0]).toBe(
      `${file}:2:61: switches[0].port: expected number, received string (got "abc")`,
    );
  });

  it('reports every top-level problem together', () => {
    const text = `timezone: Nowhere/Here
http:
  port: 99999
swiches: []
`;
    const { file, error } = failure(text);
    expect(error.issues.map((i) => [i.file, i.line, i.col, i.field])).toEqual([
      [file, 1, 11, 'timezone'],
      [file, 3, 9, 'http.port'],
      [file, 4, 1, 'swiches'],
    ]);
    expect(error.issues[1]?.message).toBe('must be at most 65535 (got 99999)');
  });

  it('reports a top-level problem and a switch problem together, not only the first', () => {
    const text = `timezone: Nowhere/Here
switches:
  - { id: lamp, kind: wemo/v1, address: 192.168.1.40, port: abc }
`;
    const { file, error } = failure(text);
    expect(error.issues.map((i) => [i.file, i.line, i.col, i.field])).toEqual([
      [file, 1, 11, 'timezone'],
      [file, pos(text, 'abc').line, pos(text, 'abc').col, 'switches[0].port'],
    ]);
  });

  it('a file that cannot be read is a ConfigError naming the path as given', () => {
    const missing = join(folder(), 'missing.yaml');
    let error: unknown;
    try {
      load(missing);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      {
        file: missing,
        line: 0,
        col: 0,
        field: '',
        message: `cannot read the config file (ENOENT: no such file or directory, open '${missing}'); pass --config with the path of your hearth.yaml, or start from examples/hearth.yaml`,
      },
    ]);
  });
});

describe(`\${VAR} substitution`, () => {
  const text = `http:
  host: \${HOST:-127.0.0.1}
  port: \${PORT}
storage:
  sqlite: \${DATA_DIR}/hearth.db
switches:
  - id: lamp
    kind: wemo/v1
    address: lamp-\${SUFFIX:-1}.lan
    port: \${LAMP_PORT:-49152}
`;

  it('takes values from the env option, defaults from :-, and makes a whole-scalar number a number', () => {
    const cfg = load(writeConfig(text), { PORT: '8123', DATA_DIR: '/var/lib/hearth' });
    expect(cfg.http).toEqual({
      host: '127.0.0.1',
      port: 8123,
      allow: defaultAllow,
      hostNames: [],
      maxStreams: 100,
      ...connectionDefaults,
    });
    expect(cfg.storage.sqlite).toBe('/var/lib/hearth/hearth.db');
    expect(cfg.devices[0]?.config).toMatchObject({ address: 'lamp-1.lan', port: 49152 });
  });

  it('a set variable wins over its default; an empty one falls back to the default', () => {
    const cfg = load(writeConfig(text), {
      PORT: '9000',
      DATA_DIR: '/data',
      HOST: '',
      SUFFIX: 'kitchen',
      LAMP_PORT: '49154',
    });
    expect(cfg.http).toEqual({
      host: '127.0.0.1',
      port: 9000,
      allow: defaultAllow,
      hostNames: [],
      maxStreams: 100,
      ...connectionDefaults,
    });
    expect(cfg.devices[0]?.config).toMatchObject({ address: 'lamp-kitchen.lan', port: 49154 });
  });

  it('a quoted reference stays a string, but a port takes a string of digits as its number', () => {
    const quoted = `http:\n  port: "\${PORT}"\n`;
    expect(load(writeConfig(quoted), { PORT: '8123' }).http.port).toBe(8123);
    const { file, error } = failure(quoted, { PORT: '81x3' });
    expect(error.issues).toEqual([
      {
        file,
        line: 2,
        col: 9,
        field: 'http.port',
        message: 'expected number, received string (got "81x3")',
      },
    ]);
  });

  it('an unset variable is an error at its line that names it; the env option replaces process.env', () => {
    // PATH is set in process.env; with `env` given it must not leak in.
    const { file, error } = failure(text, { DATA_DIR: '/data', PATH: undefined });
    const message = `environment variable PORT is not set; export it, or write \${PORT:-default}`;
    expect(error.issues).toEqual([{ file, ...pos(text, `\${PORT}`), field: '', message }]);
    expect(error.message).toBe(`${file}:3:9: ${message}`);

    const path = failure(`storage:\n  sqlite: \${PATH}/x.db\n`, {});
    expect(path.error.issues.map((i) => [i.line, i.col, i.message])).toEqual([
      [2, 11, `environment variable PATH is not set; export it, or write \${PATH:-default}`],
    ]);
  });

  it('every unset variable is reported, one per line', () => {
    const { file, error } = failure(text, {});
    expect(error.issues.map((i) => [i.file, i.line, i.col])).toEqual([
      [file, 3, 9],
      [file, 5, 11],
    ]);
    expect(error.issues[1]?.message).toBe(
      `environment variable DATA_DIR is not set; export it, or write \${DATA_DIR:-default}`,
    );
  });
});

describe('!secret', () => {
  it('reads values from the secrets file next to the config', () => {
    const dir = folder();
    writeFileSync(join(dir, 'secrets.yaml'), 'lamp_address: 10.1.2.3\nlamp_port: 49154\n');
    const text = `secrets: secrets.yaml
switches:
  - { id: lamp, kind: wemo/v1, address: !secret lamp_address, port: !secret lamp_port }
`;
    const cfg = load(writeConfig(text, 'hearth.yaml', dir));
    expect(cfg.secrets).toBe(join(dir, 'secrets.yaml'));
    expect(cfg.devices[0]?.config).toMatchObject({ id: 'lamp', address: '10.1.2.3', port: 49154 });
  });

  it('a name that is not in the secrets file is an error naming it', () => {
    const dir = folder();
    writeFileSync(join(dir, 'secrets.yaml'), 'lamp_address: 10.1.2.3\n');
    const text = `secrets: secrets.yaml
switches:
  - { id: lamp, kind: wemo/v1, address: !secret fan_address }
`;
    const file = writeConfig(text, 'hearth.yaml', dir);
    let error: unknown;
    try {
      load(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message =
      'secret "fan_address" is not in the secrets file secrets.yaml; add a line `fan_address: <value>` there';
    expect((error as ConfigError).issues).toEqual([
      { file, ...pos(text, 'fan_address'), field: '', message },
    ]);
  });

  it('!secret without a secrets file configured is an error at its line', () => {
    const text = 'switches:\n  - { id: lamp, kind: wemo/v1, address: !secret lamp_address }\n';
    const { file, error } = failure(text);
    expect(error.issues).toEqual([
      {
        file,
        ...pos(text, 'lamp_address'),
        field: '',
        message:
          '!secret is used but no `secrets:` file is configured; add `secrets: secrets.yaml` at the top level',
      },
    ]);
  });

  it('a configured secrets file that does not exist is an error naming its path and what goes in it', () => {
    const dir = folder();
    const text = 'secrets: secrets.yaml\nswitches:\n  - { id: lamp, kind: wemo/v1, address: !secret lamp }\n';
    const file = writeConfig(text, 'hearth.yaml', dir);
    const secrets = join(dir, 'secrets.yaml');
    expect(() => load(file)).toThrow(
      `${file}:3:49: the secrets file ${secrets} does not exist; create it (mode 0600, out of git) with one \`name: value\` line for each \`!secret name\` in the config`,
    );
  });
});

describe('the examples', () => {
  it('examples/demo.yaml validates, with HEARTH_PORT defaulting to 8000', () => {
    const demo = join(repoRoot, 'examples', 'demo.yaml');
    const cfg = load(demo, {});
    expect(cfg.timezone).toBe('America/Los_Angeles');
    expect(cfg.http).toEqual({
      host: '127.0.0.1',
      port: 8000,
      allow: defaultAllow,
      hostNames: [],
      maxStreams: 100,
      ...connectionDefaults,
    });
    expect(cfg.storage.sqlite).toBe(join(repoRoot, 'data', 'demo.db'));
    expect(cfg.devices.map((d) => [d.driver.name, d.config.id, d.config.simulate])).toEqual([
      ['wemo', 'lamp', true],
      ['wemo', 'heater-plug', true],
      ['kasa', 'fan', true],
      ['mrcoffeebot', 'coffee', true],
      ['relay-board', 'garden', true],
      ['sonos', 'kitchen', true],
    ]);
    expect(cfg.automations.map((a) => a.id)).toEqual(['bedside-lamp']);
    expect(cfg.buttons).toEqual([{ id: 'bedside', name: 'Bedside button' }]);
    expect(load(demo, { HEARTH_PORT: '8080' }).http.port).toBe(8080);
  });

  it('examples/hearth.yaml validates next to a secrets.yaml, with FAN_ADDRESS set', () => {
    const dir = folder();
    const file = join(dir, 'hearth.yaml');
    copyFileSync(join(repoRoot, 'examples', 'hearth.yaml'), file);
    writeFileSync(join(dir, 'secrets.yaml'), 'lamp_address: 192.168.1.40\n');
    const cfg = load(file, { FAN_ADDRESS: '192.168.1.41' });
    expect(cfg.timezone).toBe('America/Los_Angeles');
    expect(cfg.http).toEqual({
      host: '0.0.0.0',
      port: 8000,
      allow: defaultAllow,
      hostNames: [],
      maxStreams: 100,
      ...connectionDefaults,
    });
    expect(cfg.storage.sqlite).toBe(join(dir, 'data', 'hearth.db'));
    expect(cfg.secrets).toBe(join(dir, 'secrets.yaml'));
    expect(devicesOf(cfg)).toEqual([
      {
        driver: 'wemo',
        config: {
          id: 'lamp',
          kind: 'wemo/v1',
          name: 'Living room lamp',
          address: '192.168.1.40',
          port: 49153,
          simulate: false,
          timeoutMs: 2000,
          pollSeconds: 10,
        },
      },
      {
        driver: 'kasa',
        config: {
          id: 'fan',
          kind: 'kasa/v1',
          name: 'Fan',
          address: '192.168.1.41',
          port: 9999,
          simulate: false,
          timeoutMs: 2000,
          pollSeconds: 10,
        },
      },
    ]);
    expect(cfg.buttons).toEqual([{ id: 'bedside', name: 'Bedside button' }]);
  });

  it('examples/hearth.yaml without FAN_ADDRESS names the variable at its line', () => {
    const dir = folder();
    mkdirSync(join(dir, 'conf'));
    const file = join(dir, 'conf', 'hearth.yaml');
    copyFileSync(join(repoRoot, 'examples', 'hearth.yaml'), file);
    writeFileSync(join(dir, 'conf', 'secrets.yaml'), 'lamp_address: 192.168.1.40\n');
    const { line, col } = pos(readFileSync(file, 'utf8'), `"\${FAN_ADDRESS}"`);
    expect({ line, col }).toEqual({ line: 15, col: 51 });
    expect(() => load(file, {})).toThrow(
      `${file}:15:51: environment variable FAN_ADDRESS is not set; export it, or write \${FAN_ADDRESS:-default}`,
    );
  });
});
