import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../src/config/load.js';
import { drivers } from '../src/drivers/index.js';
import { type CliResult, runCli } from './support/cli-run.js';

// A homeslice switches.json as found in the wild: two plugs, a placeholder address that
// homeslice filled from a secrets module, and a Lutron entry from its Lutron branch.
const fixture = fileURLToPath(new URL('./fixtures/homeslice/switches.json', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'hearth-import-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(root, 'case-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  copyFileSync(fixture, join(dir, 'switches.json'));
  return dir;
}

function importInto(dir: string, config = 'hearth.yaml'): Promise<CliResult> {
  return runCli(['import', 'homeslice', join(dir, 'switches.json'), '--config', join(dir, config)], {
    timeoutMs: 90_000,
  });
}

const LUTRON = [
  'skipped 1 switch(es) of a kind hearth has no driver for (hearth knows wemo/v1, kasa/v1); not imported:',
  '  dining (lutron/telnet/v1, with integration_id)',
];

const TORCH = `  - id: torch
    kind: wemo/v1
    name: Living Room Torch
    address: !secret living_room_torch
`;

const PLUGS = `  - id: lamp
    kind: wemo/v1
    name: Living room lamp
    address: 192.168.1.40
    port: 49153
  - id: fan
    kind: kasa/v1
    name: Fan
    address: 192.168.1.41
`;

describe('hearth import homeslice with a real-world switches.json', () => {
  it('into `switches: []`, into a config without switches, and next to existing entries: block YAML that loads', {
    timeout: 180_000,
  }, async () => {
    const empty = folder({
      'hearth.yaml': '# my house\ntimezone: Europe/Berlin\nswitches: []\nbuttons: []\n',
    });
    const none = folder({
      'hearth.yaml': 'secrets: my-secrets.yaml\nbuttons:\n  - { id: bedside }\n',
      'my-secrets.yaml': 'living_room_torch: 192.168.1.42\n',
    });
    const existing = folder({
      'hearth.yaml': 'switches:\n  - id: lamp\n    kind: kasa/v1\n    address: 10.0.0.5\n',
    });
    const [a, b, c] = await Promise.all([importInto(empty), importInto(none), importInto(existing)]);

    // `switches: []` becomes a block list; `secrets:` is added for the !secret, with a hint.
    expect(a.code).toBe(0);
    expect(a.stdout).toContain(`added 3 switch(es) to ${join(empty, 'hearth.yaml')}`);
    expect(a.stderr.trimEnd().split('\n')).toEqual([
      ...LUTRON,
      '1 address(es) were homeslice placeholders ({{...}}); they are now `!secret name` references; the config gets `secrets: secrets.yaml`',
      `add the real addresses to ${join(empty, 'secrets.yaml')} (keep it out of git), then run \`hearth check --config ${join(empty, 'hearth.yaml')}\`:`,
      '  living_room_torch: <address of Living Room Torch>',
    ]);
    expect(readFileSync(join(empty, 'hearth.yaml'), 'utf8')).toBe(
      `# my house\ntimezone: Europe/Berlin\nswitches:\n${PLUGS}${TORCH}buttons: []\nsecrets: secrets.yaml\n`,
    );

    // No switches key: one is added; the configured secrets file already has the name, so no hint.
    expect(b.code).toBe(0);
    expect(b.stderr.trimEnd().split('\n')).toEqual([
      ...LUTRON,
      '1 address(es) were homeslice placeholders ({{...}}); they are now `!secret name` references',
    ]);
    expect(readFileSync(join(none, 'hearth.yaml'), 'utf8')).toBe(
      `secrets: my-secrets.yaml\nbuttons:\n  - { id: bedside }\nswitches:\n${PLUGS}${TORCH}`,
    );

    // Existing entries stay; an id already there is skipped and named.
    expect(c.code).toBe(0);
    expect(c.stderr).toContain(
      `skipped lamp: an entity with that id is already in ${join(existing, 'hearth.yaml')}`,
    );
    const fanAndTorch = PLUGS.slice(PLUGS.indexOf('  - id: fan')) + TORCH;
    expect(readFileSync(join(existing, 'hearth.yaml'), 'utf8')).toBe(
      `switches:\n  - id: lamp\n    kind: kasa/v1\n    address: 10.0.0.5\n${fanAndTorch}secrets: secrets.yaml\n`,
    );

    // Each result loads with hearth's own loader once the secret is in place.
    writeFileSync(join(empty, 'secrets.yaml'), 'living_room_torch: 192.168.1.42\n');
    writeFileSync(join(existing, 'secrets.yaml'), 'living_room_torch: 192.168.1.42\n');
    for (const dir of [empty, none, existing]) {
      const cfg = loadConfigFile(join(dir, 'hearth.yaml'), { drivers, env: {} });
      expect(cfg.devices.find((d) => d.config.id === 'torch')?.config.address).toBe('192.168.1.42');
      expect(cfg.devices.some((d) => d.config.id === 'dining')).toBe(false);
    }
    const check = await runCli(['check', '--config', join(empty, 'hearth.yaml')], { timeoutMs: 90_000 });
    expect(check.stderr).toBe('');
    expect(check.stdout).toBe(
      `${join(empty, 'hearth.yaml')}: ok — 3 device(s), 0 button(s), timezone Europe/Berlin\n`,
    );
  });

  it('writes nothing into a config that is not valid YAML', { timeout: 90_000 }, async () => {
    const broken = 'switches: [\n  - { id: lamp\n';
    const dir = folder({ 'hearth.yaml': broken });
    const r = await importInto(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `hearth import: ${join(dir, 'hearth.yaml')} is not valid YAML; run \`hearth check --config ${join(dir, 'hearth.yaml')}\`, fix it, then import again\n`,
    );
    expect(readFileSync(join(dir, 'hearth.yaml'), 'utf8')).toBe(broken);
  });
});
