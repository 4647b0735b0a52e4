import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KasaClient } from '../src/drivers/kasa/client.js';
import { WemoClient } from '../src/drivers/wemo/client.js';
import { binaryStateText, CONTROL_PATH, GET_REQUEST, SERVICE_TYPE } from '../src/drivers/wemo/soap.js';
import { type RunningCli, runCli, startCli } from './support/cli-run.js';

// Every test starts the built CLI (`node bin/hearth.js`), a second or more each on two shared cores.
const SLOW = { timeout: 90_000 };

const root = mkdtempSync(join(tmpdir(), 'hearth-cli-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const running: RunningCli[] = [];
afterEach(async () => {
  for (const cli of running.splice(0)) await cli.stop('SIGKILL');
});

const systemZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const HINT = 'Fix the config file at the line shown, then run `hearth check`.';

const GOOD = `timezone: America/Los_Angeles
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

const HOMESLICE = JSON.stringify([
  { id: 'lamp', kind: 'wemo/v1', name: 'Lamp', address: '192.168.1.40', port: 49153 },
  { id: 'fan', kind: 'kasa/v1', name: 'Fan', address: '192.168.1.41', port: 0 },
]);

/** Writes `files` into a fresh folder and returns the folder. */
function folder(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(root, 'case-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('hearth --help', () => {
  it('lists start, check, sim, import, backup and restore', SLOW, async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: hearth \[options\] \[command\]$/m);
    expect(r.stdout).toMatch(/^ {2}start \[options\] +run hearth: every role in this process/m);
    expect(r.stdout).toMatch(/^ {2}check \[options\] +validate a config file without starting anything/m);
    // The descriptions wrap at 80 columns, where the longest command name puts them.
    expect(r.stdout).toMatch(
      /^ {2}sim \[options\] <device> +run a simulated device that speaks the real\s+protocol/m,
    );
    expect(r.stdout).toMatch(/^ {2}import +bring an existing installation over$/m);
    expect(r.stdout).toMatch(/^ {2}backup \[options\] +write one archive/m);
    expect(r.stdout).toMatch(/^ {2}restore \[options\] <archive> +restore an archive into a folder/m);
  });
});

describe('hearth check', () => {
  it('a good config exits 0 and prints ok with the counts', SLOW, async () => {
    const file = join(folder({ 'good.yaml': GOOD }), 'good.yaml');
    const r = await runCli(['check', '--config', file]);
    expect(r).toEqual({
      code: 0,
      signal: null,
      stdout: `${file}: ok — 2 device(s), 1 button(s), timezone America/Los_Angeles\n`,
      stderr: '',
    });
  });

  it('reads the path from HEARTH_CONFIG when --config is not given', SLOW, async () => {
    const file = join(folder({ 'good.yaml': GOOD }), 'good.yaml');
    const r = await runCli(['check'], { env: { HEARTH_CONFIG: file } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: ok — 2 device(s), 1 button(s), timezone America/Los_Angeles\n`);
  });

  it('a bad config exits 1 and prints file:line:col: field: on stderr', SLOW, async () => {
    const bad = `# a port that is not a number
switches:
  - { id: lamp, kind: wemo/v1, address: 192.168.1.40, port: abc }
`;
    const file = join(folder({ 'bad.yaml': bad }), 'bad.yaml');
    const r = await runCli(['check', '--config', file]);
    expect(r).toEqual({
      code: 1,
      signal: null,
      stdout: '',
      stderr: `${file}:3:61: switches[0].port: expected number, received string (got "abc")\n1 problem(s) found. ${HINT}\n`,
    });
  });

  it('a missing config exits 1 and says it cannot be read and what to pass', SLOW, async () => {
    const file = join(folder(), 'missing.yaml');
    const r = await runCli(['check', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe(
      `${file}: cannot read the config file (ENOENT: no such file or directory, open '${file}'); pass --config with the path of your hearth.yaml, or start from examples/hearth.yaml`,
    );
  });
});

describe('hearth import homeslice', () => {
  it('creates a config from switches.json that then passes check', SLOW, async () => {
    const dir = folder({ 'switches.json': HOMESLICE });
    const target = join(dir, 'new.yaml');
    const r = await runCli(['import', 'homeslice', join(dir, 'switches.json'), '--config', target]);
    expect(r).toEqual({
      code: 0,
      signal: null,
      stdout: `added 2 switch(es) to ${target}; run \`hearth check --config ${target}\` to validate it\n`,
      stderr: '',
    });
    // port 0 means "unset" in homeslice, so the kasa default applies.
    expect(readFileSync(target, 'utf8')).toBe(`switches:
  - id: lamp
    kind: wemo/v1
    name: Lamp
    address: 192.168.1.40
    port: 49153
  - id: fan
    kind: kasa/v1
    name: Fan
    address: 192.168.1.41
`);

    const check = await runCli(['check', '--config', target]);
    expect(check.code).toBe(0);
    expect(check.stdout).toBe(`${target}: ok — 2 device(s), 0 button(s), timezone ${systemZone}\n`);
  });

  it('keeps the comments of an existing config and skips ids it already has', SLOW, async () => {
    const existing = `# my house
timezone: Europe/Berlin # where I live
switches:
  # the lamp by the window
  - { id: lamp, kind: wemo/v1, address: 10.0.0.5 }
buttons:
  - { id: bedside } # by the bed
`;
    const dir = folder({ 'switches.json': HOMESLICE, 'hearth.yaml': existing });
    const target = join(dir, 'hearth.yaml');
    const r = await runCli(['import', 'homeslice', join(dir, 'switches.json'), '--config', target]);
    expect(r).toEqual({
      code: 0,
      signal: null,
      stdout: `added 1 switch(es) to ${target}; run \`hearth check --config ${target}\` to validate it\n`,
      stderr: `skipped lamp: an entity with that id is already in ${target} or earlier in ${join(dir, 'switches.json')}\n`,
    });
    expect(readFileSync(target, 'utf8')).toBe(`# my house
timezone: Europe/Berlin # where I live
switches:
  # the lamp by the window
  - { id: lamp, kind: wemo/v1, address: 10.0.0.5 }
  - id: fan
    kind: kasa/v1
    name: Fan
    address: 192.168.1.41
buttons:
  - { id: bedside } # by the bed
`);

    const check = await runCli(['check', '--config', target]);
    expect(check.code).toBe(0);
    expect(check.stdout).toBe(`${target}: ok — 2 device(s), 1 button(s), timezone Europe/Berlin\n`);
  });

  it('--dry-run prints the result and writes nothing', SLOW, async () => {
    const existing = '# mine\nswitches:\n  - { id: desk, kind: kasa/v1, address: 10.0.0.9 }\n';
    const dir = folder({ 'switches.json': HOMESLICE, 'hearth.yaml': existing });
    const target = join(dir, 'hearth.yaml');
    const r = await runCli([
      'import',
      'homeslice',
      join(dir, 'switches.json'),
      '--config',
      target,
      '--dry-run',
    ]);
    expect(r).toEqual({
      code: 0,
      signal: null,
      stdout: `# mine
switches:
  - { id: desk, kind: kasa/v1, address: 10.0.0.9 }
  - id: lamp
    kind: wemo/v1
    name: Lamp
    address: 192.168.1.40
    port: 49153
  - id: fan
    kind: kasa/v1
    name: Fan
    address: 192.168.1.41
`,
      stderr: '',
    });
    expect(readFileSync(target, 'utf8')).toBe(existing);

    const fresh = join(dir, 'fresh.yaml');
    const r2 = await runCli([
      'import',
      'homeslice',
      join(dir, 'switches.json'),
      '--config',
      fresh,
      '--dry-run',
    ]);
    expect(r2.code).toBe(0);
    expect(r2.stdout).toBe(`switches:
  - id: lamp
    kind: wemo/v1
    name: Lamp
    address: 192.168.1.40
    port: 49153
  - id: fan
    kind: kasa/v1
    name: Fan
    address: 192.168.1.41
`);
    expect(existsSync(fresh)).toBe(false);
  });

  it('an id twice in switches.json is imported once, so the result passes check', SLOW, async () => {
    const twice = JSON.stringify([
      { id: 'lamp', kind: 'wemo/v1', address: '192.168.1.40' },
      { id: 'lamp', kind: 'kasa/v1', address: '192.168.1.41' },
    ]);
    const dir = folder({ 'switches.json': twice });
    const target = join(dir, 'new.yaml');
    const r = await runCli(['import', 'homeslice', join(dir, 'switches.json'), '--config', target]);
    expect(r.code).toBe(0);
    expect(readFileSync(target, 'utf8')).toBe(
      'switches:\n  - id: lamp\n    kind: wemo/v1\n    name: lamp\n    address: 192.168.1.40\n',
    );
    const check = await runCli(['check', '--config', target]);
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
  });

  it('malformed JSON exits 1 with a clear error and writes nothing', SLOW, async () => {
    const broken = '[{"id":';
    const dir = folder({ 'switches.json': broken });
    const target = join(dir, 'new.yaml');
    let reason = '';
    try {
      JSON.parse(broken);
    } catch (err) {
      reason = (err as Error).message;
    }
    expect(reason).not.toBe('');
    const json = join(dir, 'switches.json');
    const r = await runCli(['import', 'homeslice', json, '--config', target]);
    expect(r).toEqual({
      code: 1,
      signal: null,
      stdout: '',
      stderr: `hearth import: ${json} is not a homeslice switches.json (${reason})\n`,
    });
    expect(existsSync(target)).toBe(false);
  });

  it('JSON of the wrong shape exits 1 and writes nothing', SLOW, async () => {
    const dir = folder({ 'switches.json': '{"switches":[]}' });
    const json = join(dir, 'switches.json');
    const target = join(dir, 'new.yaml');
    const r = await runCli(['import', 'homeslice', json, '--config', target]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.startsWith(`hearth import: ${json} is not a homeslice switches.json (`)).toBe(true);
    expect(r.stderr).toContain('expected array, received object');
    expect(existsSync(target)).toBe(false);
  });
});

describe('hearth sim', () => {
  async function startSim(device: string): Promise<{ cli: RunningCli; port: number }> {
    const cli = startCli(['sim', device, '--port', '0']);
    running.push(cli);
    const m = await cli.waitFor(new RegExp(`^${device} simulator listening on 127\\.0\\.0\\.1:(\\d+)$`, 'm'));
    const port = Number(m[1]);
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65_536);
    return { cli, port };
  }

  it('sim wemo answers SOAP on the port it prints, and stops cleanly on SIGTERM', SLOW, async () => {
    const { cli, port } = await startSim('wemo');
    expect(cli.stdout()).toBe(`wemo simulator listening on 127.0.0.1:${port}\n`);

    // A raw SOAP call, as a plug gets it.
    const res = await fetch(`http://127.0.0.1:${port}${CONTROL_PATH}`, {
      method: 'POST',
      headers: {
        'Content-Type': 'text/xml; charset="utf-8"',
        SOAPACTION: `"${SERVICE_TYPE}#GetBinaryState"`,
      },
      body: GET_REQUEST,
      signal: AbortSignal.timeout(5000),
    });
    expect(res.status).toBe(200);
    expect(binaryStateText(await res.text())).toBe('0');

    const client = new WemoClient({ host: '127.0.0.1', port });
    expect(await client.getBinaryState(AbortSignal.timeout(5000))).toBe(false);
    expect(await client.setBinaryState(true, AbortSignal.timeout(5000))).toBe(true);
    expect(await client.getBinaryState(AbortSignal.timeout(5000))).toBe(true);

    expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(cli.stderr()).toBe('');
  });

  it(
    'sim kasa answers the Kasa protocol on the port it prints, and stops cleanly on SIGTERM',
    SLOW,
    async () => {
      const { cli, port } = await startSim('kasa');
      expect(cli.stdout()).toBe(`kasa simulator listening on 127.0.0.1:${port}\n`);

      const client = new KasaClient({ host: '127.0.0.1', port });
      expect(await client.getState(AbortSignal.timeout(5000))).toBe(false);
      expect(client.deviceType).toBe('plug');
      expect(await client.setState(true, AbortSignal.timeout(5000))).toBe(true);
      expect(await client.getState(AbortSignal.timeout(5000))).toBe(true);

      expect(await cli.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(cli.stderr()).toBe('');
    },
  );

  it('sim nosuch exits non-zero naming the simulators there are', SLOW, async () => {
    const r = await runCli(['sim', 'nosuch']);
    expect(r).toEqual({
      code: 2,
      signal: null,
      stdout: '',
      stderr:
        'hearth sim: no simulator named "nosuch"; choose one of: wemo, kasa, coffee (mrcoffeebot), sprinklers (relay-board), speakers (sonos), zigbee2mqtt\n',
    });
  });
});
