/**
 * Archives made by hand to escape, as an attacker would make them (tar-stream and zlib, every
 * checksum right, so only the new rules stand in the way), through the built CLI: a restore
 * writes only in the folders the user named (--config-dir, and --data-dir when given), whatever
 * the archive's config says; ids in store rows follow the config's id rule;
 * buttonLimits.maxUndeclared holds after a restore; a gzip bomb stops at --max-unpacked-size.
 * Each test hashes the target and a folder beside it before and after.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { encryptSecrets } from '../src/backup/secrets-crypto.js';
import { openStore } from '../src/store/open.js';
import { sqliteMigrations } from '../src/store/sqlite/migrations.js';
import { BACKUP_TABLES, type BackupTable } from '../src/store/store.js';
import { hearthVersion } from '../src/version.js';
import { runCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';

const CHIME = Buffer.from('not really an mp3, but bytes all the same');

interface Crafted {
  /** The config member's text. */
  config: string;
  /** secrets.enc, as hearth seals it. */
  sealedSecrets?: Buffer;
  rows?: Partial<Record<BackupTable, Array<Record<string, unknown>>>>;
  media?: Record<string, Buffer>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A tar.gz with a manifest whose every size, checksum and row count is right. */
async function craft(path: string, c: Crafted): Promise<string> {
  const members: Array<{ name: string; data: Buffer }> = [
    { name: 'config/hearth.yaml', data: Buffer.from(c.config) },
  ];
  const rows: Record<string, number> = {};
  for (const table of BACKUP_TABLES) {
    const list = c.rows?.[table] ?? [];
    rows[table] = list.length;
    members.push({
      name: `store/${table}.ndjson`,
      data: Buffer.from(list.map((r) => `${JSON.stringify(r)}\n`).join('')),
    });
  }
  for (const [name, data] of Object.entries(c.media ?? { 'ding.mp3': CHIME })) {
    members.push({ name: `media/${name}`, data });
  }
  if (c.sealedSecrets) members.push({ name: 'secrets.enc', data: c.sealedSecrets });
  const manifest = {
    format: 1,
    hearth: hearthVersion,
    createdAt: new Date().toISOString(),
    host: 'attacker',
    store: { kind: 'sqlite', schema: sqliteMigrations.length },
    config: 'hearth.yaml',
    rows,
    files: members.map((m) => ({ path: m.name, size: m.data.length, sha256: sha256(m.data) })),
  };
  members.push({ name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest)) });
  const p = tar.pack();
  const chunks: Buffer[] = [];
  const read = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  for (const m of members) {
    await new Promise<void>((resolve, reject) =>
      p.entry({ name: m.name, size: m.data.length }, m.data, (err) => (err ? reject(err) : resolve())),
    );
  }
  p.finalize();
  await read;
  writeFileSync(path, gzipSync(Buffer.concat(chunks)));
  return path;
}

/** Every file and folder under `dir`: mode, size, SHA-256 and mtime. Equal before and after: untouched. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return ['(absent)'];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const st = lstatSync(path);
      const mode = (st.mode & 0o777).toString(8);
      if (st.isDirectory()) {
        out.push(`${rel}${name}/ ${mode}`);
        walk(path, `${rel}${name}/`);
      } else {
        out.push(`${rel}${name} ${mode} ${st.size} ${sha256(readFileSync(path))} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir, '');
  return out;
}

describe('restore of a hostile archive writes only where the user said', () => {
  const root = tempDir('hearth-hostile-');
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;

  /**
   * A case folder: `target/` holds an earlier restore (so --force has something to replace),
   * `outside/` beside it holds a real SQLite store with a row, a media folder and a file.
   */
  async function scene() {
    const dir = join(root, `case-${++n}`);
    const target = join(dir, 'target');
    const outside = join(dir, 'outside');
    mkdirSync(join(target, 'data', 'media'), { recursive: true });
    writeFileSync(join(target, 'hearth.yaml'), 'http: { port: 0 }\n');
    writeFileSync(join(target, 'data', 'media', 'old.mp3'), 'old');
    mkdirSync(join(outside, 'media'), { recursive: true });
    writeFileSync(join(outside, 'media', 'family.mp3'), 'the family chime');
    writeFileSync(join(outside, 'notes.txt'), 'keep me');
    const store = await openStore({ sqlite: join(outside, 'victim.db') });
    await store.states.put({ id: 'mine', kind: 'button', state: 'on', updatedAt: 1 });
    await store.close();
    return { dir, target, outside, archive: join(dir, 'hostile.tar.gz') };
  }

  /** Restores `archive` into `target` with --force and returns the run. */
  const restore = (archive: string, target: string, more: string[] = [], env: Record<string, string> = {}) =>
    runCli(['restore', archive, '--config-dir', target, '--force', ...more], { env });

  const escapes: Array<[string, (s: { outside: string }) => string, string, string]> = [
    [
      'an absolute media.dir',
      (s) => `storage: { sqlite: data/hearth.db }\nmedia: { dir: ${join(s.outside, 'media')} }\n`,
      'media.dir',
      'data/media',
    ],
    [
      'a media.dir that climbs out with ..',
      () => 'storage: { sqlite: data/hearth.db }\nmedia: { dir: ../outside/media }\n',
      'media.dir',
      'data/media',
    ],
    [
      'an absolute storage.sqlite',
      (s) => `storage: { sqlite: ${join(s.outside, 'victim.db')} }\nmedia: { dir: data/media }\n`,
      'storage.sqlite',
      'data/hearth.db',
    ],
    [
      'a storage.sqlite that climbs out with ..',
      () => 'storage: { sqlite: data/../../outside/victim.db }\n',
      'storage.sqlite',
      'data/hearth.db',
    ],
  ];

  for (const [what, config, setting, value] of escapes) {
    it(`${what}: verify says so; restore --force moves it under --config-dir, says so, and leaves the folder beside untouched`, async () => {
      const s = await scene();
      await craft(s.archive, {
        config: config(s),
        rows: { entity_state: [{ id: 'theirs', kind: 'button', state: 'off', updated_at: 2 }] },
      });
      const before = tree(s.outside);
      const r = await restore(s.archive, s.target);
      // The folder beside the target first: without the rule, --force replaced what it held.
      expect(tree(s.outside)).toEqual(before);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(
        `hearth restore: the archive's config put ${setting} at ${setting === 'media.dir' ? join(s.outside, 'media') : join(s.outside, 'victim.db')}, outside --config-dir: restored to ${join(s.target, value)} instead, and the restored config says ${setting}: ${value}.`,
      );
      // What the archive held is in the target, and its config says where, for `hearth start`.
      const cfg = readFileSync(join(s.target, 'hearth.yaml'), 'utf8');
      expect(cfg).toContain(value);
      expect(cfg).not.toContain('outside');
      expect(readdirSync(join(s.target, 'data', 'media'))).toEqual(['ding.mp3']);
      const store = await openStore({ sqlite: join(s.target, 'data', 'hearth.db') });
      try {
        expect((await store.states.list()).map((x) => x.id)).toEqual(['theirs']);
      } finally {
        await store.close();
      }
      const check = await runCli(['check', '--config', join(s.target, 'hearth.yaml')]);
      expect(check.code, check.stderr).toBe(0);
      const v = await runCli(['backup', 'verify', s.archive]);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stderr).toMatch(
        new RegExp(
          `^hearth backup verify: note: the config puts ${setting.replace('.', '\\.')} at .*, outside its own folder; hearth restore writes only in --config-dir`,
        ),
      );
    });
  }

  it('--force never deletes a folder outside --config-dir: a media.dir of ../outside (the folder beside it) stays whole', async () => {
    const s = await scene();
    // Without the rule, --force renamed the folder the config named away and deleted it.
    await craft(s.archive, { config: 'media: { dir: ../outside }\n' });
    const before = tree(s.outside);
    const r = await restore(s.archive, s.target);
    expect(tree(s.outside)).toEqual(before);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /the archive's config put media\.dir at .*\/outside, outside --config-dir: restored to /,
    );
    expect(readdirSync(join(s.target, 'data', 'media'))).toEqual(['ding.mp3']);
  });

  it('a secrets: path that climbs out is written as secrets.yaml in --config-dir; the file it named stays', async () => {
    const s = await scene();
    const pass = 'a passphrase of some length';
    await craft(s.archive, {
      config: 'secrets: ../outside/notes.txt\n',
      sealedSecrets: await encryptSecrets(Buffer.from('token: overwritten\n'), pass),
    });
    const before = tree(s.outside);
    const r = await restore(s.archive, s.target, [], { HEARTH_BACKUP_PASSPHRASE: pass });
    expect(tree(s.outside)).toEqual(before);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `the archive's config put secrets at ${join(s.outside, 'notes.txt')}, outside --config-dir: restored to ${join(s.target, 'secrets.yaml')} instead`,
    );
    expect(readFileSync(join(s.target, 'secrets.yaml'), 'utf8')).toBe('token: overwritten\n');
  });

  it('--data-dir names a second folder: an absolute media.dir and store inside it stay where the config says', async () => {
    const s = await scene();
    const data = join(s.dir, 'var-lib-hearth');
    await craft(s.archive, {
      config: `storage: { sqlite: ${join(data, 'hearth.db')} }\nmedia: { dir: ${join(data, 'media')} }\n`,
    });
    const before = tree(s.outside);
    const r = await restore(s.archive, s.target, ['--data-dir', data]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(readdirSync(join(data, 'media'))).toEqual(['ding.mp3']);
    expect(existsSync(join(data, 'hearth.db'))).toBe(true);
    expect(tree(s.outside)).toEqual(before);
  });

  const badIds: Array<[string, BackupTable, Record<string, unknown>]> = [
    ['a "+" (an MQTT wildcard)', 'entity_state', { id: 'a+b', kind: 'button', state: 'on', updated_at: 1 }],
    ['a "#" (an MQTT wildcard)', 'entity_state', { id: 'a#', kind: 'button', state: 'on', updated_at: 1 }],
    ['a "/" (a path)', 'entity_state', { id: '../x', kind: 'button', state: 'on', updated_at: 1 }],
    ['a NUL', 'entity_state', { id: 'a\u0000b', kind: 'button', state: 'on', updated_at: 1 }],
    ['65 characters', 'entity_state', { id: 'x'.repeat(65), kind: 'button', state: 'on', updated_at: 1 }],
    ['a "+" in a history row', 'history_raw', { entity: 'temp+', at: 1, num: 1, text: null }],
    ['a "#" in a schedule mark', 'automation_mark', { automation: 'night#', at: 1 }],
  ];

  for (const [what, table, row] of badIds) {
    it(`an id with ${what} in store/${table}.ndjson is refused; the target and the folder beside it stay as they were`, async () => {
      const s = await scene();
      await craft(s.archive, { config: 'storage: { sqlite: data/hearth.db }\n', rows: { [table]: [row] } });
      const target = tree(s.target);
      const outside = tree(s.outside);
      const r = await restore(s.archive, s.target);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^hearth restore: cannot load the store .*: the backup cannot be restored: row 1 of ${table}: \\w+ ".*" is not an id \\(must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -\\); nothing was restored`,
        ),
      );
      expect(tree(s.target)).toEqual(target);
      expect(tree(s.outside)).toEqual(outside);
    });
  }

  it('more undeclared buttons than buttonLimits.maxUndeclared is refused; as many as it allows restore', async () => {
    const s = await scene();
    const config = 'buttons: [{ id: bedside }]\nbuttonLimits: { maxUndeclared: 3 }\n';
    const button = (id: string) => ({ id, kind: 'button', state: 'on', updated_at: 1 });
    // Declared buttons never count.
    const allowed = [button('bedside'), button('u1'), button('u2'), button('u3')];
    await craft(s.archive, { config, rows: { entity_state: [...allowed, button('u4')] } });
    const target = tree(s.target);
    const outside = tree(s.outside);
    const r = await restore(s.archive, s.target);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^hearth restore: store\/entity_state\.ndjson holds more than 3 buttons that are not under buttons: in the archive's config, the most its buttonLimits\.maxUndeclared allows; .*Nothing was changed/,
    );
    expect(tree(s.target)).toEqual(target);
    expect(tree(s.outside)).toEqual(outside);

    await craft(s.archive, { config, rows: { entity_state: allowed } });
    const ok = await restore(s.archive, s.target);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/store +.*hearth\.db \(4 rows\)/);
  });

  it('a gzip bomb stops at --max-unpacked-size in verify and restore, with the limit and how to raise it', async () => {
    const s = await scene();
    // 32 MiB of zeros: some 32 KiB compressed. Every checksum is right: only the limit stops it.
    await craft(s.archive, {
      config: 'storage: { sqlite: data/hearth.db }\n',
      media: { 'bomb.mp3': Buffer.alloc(32 * 1024 * 1024) },
    });
    expect(readFileSync(s.archive).length).toBeLessThan(256 * 1024);
    const message =
      /unpacks to more than 1 MiB, the limit \(--max-unpacked-size, default 16 GiB\): a gzip bomb, or an archive far bigger than a home's; nothing was written\. If the archive is yours, raise the limit: --max-unpacked-size 4MiB/;

    const v = await runCli(['backup', 'verify', s.archive, '--max-unpacked-size', '1MiB']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/^hearth backup verify: /);
    expect(v.stderr).toMatch(message);

    const target = tree(s.target);
    const outside = tree(s.outside);
    const r = await restore(s.archive, s.target, ['--max-unpacked-size', '1MiB']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^hearth restore: /);
    expect(r.stderr).toMatch(message);
    expect(tree(s.target)).toEqual(target);
    expect(tree(s.outside)).toEqual(outside);

    // The default is generous: the same archive passes without the option.
    const whole = await runCli(['backup', 'verify', s.archive]);
    expect(whole.code, whole.stderr).toBe(0);
  });
});
