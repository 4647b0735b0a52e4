/**
 * `hearth backup`, `hearth backup verify` and `hearth restore` through the built CLI, on a real
 * SQLite store, real media files and real archives: what an archive holds, that a damaged one
 * (a flipped byte, cut short, a member missing or added, a newer format, not gzip at all) is
 * refused by both verify and restore with nothing in the target changed, and the encrypted
 * secrets file's round trip.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open.js';
import { sqliteMigrations } from '../src/store/sqlite/migrations.js';
import { BACKUP_TABLES } from '../src/store/store.js';
import { hearthVersion } from '../src/version.js';
import { runCli, startCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';
import { until } from './support/wait.js';

const PASS = 'correct horse battery staple';
const TOKEN = 'backup-test-token-0123456789abcdef';
const CHIME = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 256));

const CONFIG = `# the box's config: comments survive a restore
http: { host: 127.0.0.1, port: 0, token: !secret hearth_token }
storage: { sqlite: data/hearth.db } # one box
media: { dir: data/media }
secrets: secrets.yaml
buttons:
  - { id: bedside, name: Bedside button }
automations:
  - id: evening
    triggers: [{ webhook: true }]
    actions: [{ command: bedside.on }]
`;

interface Member {
  name: string;
  data: Buffer;
}

/** Every member of an archive, in order (test archives are small). */
async function members(archive: string | Buffer): Promise<Member[]> {
  const raw = gunzipSync(typeof archive === 'string' ? readFileSync(archive) : archive);
  const extract = tar.extract();
  const out: Member[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      out.push({ name: entry.header.name, data: Buffer.concat(parts) });
    }
  })();
  extract.end(raw);
  await done;
  return out;
}

/** A tar.gz of these members, as hearth would write it. */
async function pack(list: Member[]): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  const read = (async () => {
    for await (const c of p) chunks.push(c as Buffer);
  })();
  for (const m of list) {
    await new Promise<void>((resolve, reject) =>
      p.entry({ name: m.name, size: m.data.length }, m.data, (err) => (err ? reject(err) : resolve())),
    );
  }
  p.finalize();
  await read;
  return gzipSync(Buffer.concat(chunks));
}

/** Every file and folder under `dir` with its mode and SHA-256: equal before and after means untouched. */
function snapshot(dir: string): string[] {
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
        const sum = createHash('sha256').update(readFileSync(path)).digest('hex');
        out.push(`${rel}${name} ${mode} ${st.size} ${sum} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir, '');
  return out;
}

const manifestOf = (list: Member[]) =>
  JSON.parse(list.find((m) => m.name === 'manifest.json')?.data.toString('utf8') ?? 'null');

describe('hearth backup, backup verify and restore', () => {
  const root = tempDir('hearth-backup-');
  const box = join(root, 'box');
  const config = join(box, 'hearth.yaml');
  const archives = join(root, 'archives');
  let plain: string;
  let withSecrets: string;
  let n = 0;
  const scratch = (name: string) => join(root, `${name}-${++n}`);

  beforeAll(async () => {
    mkdirSync(join(box, 'data', 'media'), { recursive: true });
    writeFileSync(config, CONFIG);
    writeFileSync(join(box, 'secrets.yaml'), `hearth_token: ${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(join(box, 'data', 'media', 'ding.mp3'), CHIME);
    writeFileSync(join(box, 'data', 'media', 'Glocke Küche.mp3'), CHIME.subarray(0, 1234));
    // A store with a row in every kept table, written through hearth's own store.
    const store = await openStore({ sqlite: join(box, 'data', 'hearth.db') });
    await store.states.put({ id: 'bedside', kind: 'button', state: 'on', updatedAt: 1_700_000_000_000 });
    await store.states.put({ id: 'porch', kind: 'button', state: 'off', updatedAt: 1_700_000_001_000 });
    const run = await store.automations.start('evening', 'webhook', 1_700_000_002_000);
    await store.automations.finish(run, 'ok', 1_700_000_002_050, null);
    await store.automations.setMark('evening', 1_700_000_003_000);
    await store.history.append([
      { id: 'bedside', at: 1_700_000_000_000, num: null, text: 'on' },
      { id: 'temp', at: 1_700_000_000_000, num: 21.5, text: null },
    ]);
    await store.history.compact(1_700_000_300_000, 0, 300_000);
    await store.close();

    const a = await runCli(['backup', '--config', config, '--to', archives, '--json']);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    plain = JSON.parse(a.stdout).archive;
    // Two archives in one second would share a name: the next one is made in the next second.
    const madeAt = Date.parse(JSON.parse(a.stdout).createdAt);
    await until(() => Date.now() >= Math.floor(madeAt / 1000) * 1000 + 1000, {
      what: 'the second after the first archive',
    });
    const b = await runCli(['backup', '--config', config, '--to', archives, '--json', '--include-secrets'], {
      env: { HEARTH_BACKUP_PASSPHRASE: PASS },
    });
    expect(b.code, b.stderr).toBe(0);
    withSecrets = JSON.parse(b.stdout).archive;
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes one archive, hearth-<host>-<time>.tar.gz, of the config, every kept table, the media and a manifest', async () => {
    expect(plain).toMatch(/\/hearth-[A-Za-z0-9._-]+-\d{8}T\d{6}Z\.tar\.gz$/);
    expect(readdirSync(archives).sort()).toEqual(
      [plain, withSecrets].map((p) => p.slice(archives.length + 1)).sort(),
    );
    // The archive may hold a token: only its owner reads it.
    expect(statSync(plain).mode & 0o777).toBe(0o600);

    const list = await members(plain);
    const names = list.map((m) => m.name);
    expect(names).toEqual([
      'config/hearth.yaml',
      ...BACKUP_TABLES.map((t) => `store/${t}.ndjson`),
      'media/Glocke Küche.mp3',
      'media/ding.mp3',
      'manifest.json',
    ]);
    expect(list[0]?.data.toString('utf8')).toBe(CONFIG);
    expect(list.find((m) => m.name === 'media/ding.mp3')?.data.equals(CHIME)).toBe(true);

    const manifest = manifestOf(list);
    expect(manifest).toMatchObject({
      format: 1,
      hearth: hearthVersion,
      store: { kind: 'sqlite', schema: sqliteMigrations.length },
      config: 'hearth.yaml',
      rows: { entity_state: 2, automation_run: 1, automation_mark: 1 },
    });
    expect(Date.parse(manifest.createdAt)).toBeGreaterThan(Date.now() - 120_000);
    // Every member but the manifest, with its real size and SHA-256.
    expect(manifest.files.map((f: { path: string }) => f.path)).toEqual(names.slice(0, -1));
    for (const f of manifest.files as Array<{ path: string; size: number; sha256: string }>) {
      const data = list.find((m) => m.name === f.path)?.data ?? Buffer.alloc(0);
      expect([f.path, f.size, f.sha256]).toEqual([
        f.path,
        data.length,
        createHash('sha256').update(data).digest('hex'),
      ]);
    }
    // One row per line, a JSON object each.
    const states = list
      .find((m) => m.name === 'store/entity_state.ndjson')
      ?.data.toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(states?.map((s) => [s.id, s.state])).toEqual([
      ['bedside', 'on'],
      ['porch', 'off'],
    ]);
    // No secrets in an archive made without --include-secrets.
    expect(gunzipSync(readFileSync(plain)).includes(TOKEN)).toBe(false);
  });

  it('backup verify checks a whole archive and says what it holds', async () => {
    const r = await runCli(['backup', 'verify', plain]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^ok: .*made by hearth .* a sqlite store .* of \d+ rows, 2 media file\(s\), no secrets file; every checksum matches\n$/,
    );
    const j = await runCli(['backup', 'verify', plain, '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({
      ok: true,
      mediaFiles: 2,
      secrets: 'none',
      store: { kind: 'sqlite' },
    });
  });

  /** A broken copy of the plain archive, and the message both verify and restore must give. */
  const broken: Array<[string, () => Promise<Buffer>, RegExp]> = [
    [
      'a flipped byte in a member',
      async () => {
        const list = await members(plain);
        const m = list.find((x) => x.name === 'media/ding.mp3');
        if (m) m.data[100] = (m.data[100] ?? 0) ^ 0x01;
        return pack(list);
      },
      /media\/ding\.mp3 does not match its SHA-256 in manifest\.json/,
    ],
    [
      'a flipped byte in the compressed data',
      async () => {
        const b = Buffer.from(readFileSync(plain));
        const i = Math.floor(b.length / 2);
        b[i] = (b[i] ?? 0) ^ 0xff;
        return b;
      },
      // Whichever notices first: the tar framing, gzip's own check, or the end coming early.
      /is (damaged: (its gzip data is corrupt|the tar inside is not valid)|truncated)/,
    ],
    [
      'a truncated file',
      async () => readFileSync(plain).subarray(0, Math.floor(readFileSync(plain).length * 0.6)),
      /is truncated: it ends in the middle/,
    ],
    [
      'a missing member',
      async () => pack((await members(plain)).filter((m) => m.name !== 'store/automation_run.ndjson')),
      /store\/automation_run\.ndjson is missing \(manifest\.json lists it\)/,
    ],
    [
      'an extra member of no kind hearth knows',
      async () => {
        const list = await members(plain);
        list.splice(1, 0, { name: 'notes/readme.txt', data: Buffer.from('hello') });
        return pack(list);
      },
      /notes\/readme\.txt is not a member a hearth archive has/,
    ],
    [
      'an extra media file the manifest does not list',
      async () => {
        const list = await members(plain);
        list.splice(-1, 0, { name: 'media/extra.mp3', data: Buffer.from('x') });
        return pack(list);
      },
      /media\/extra\.mp3 is in the archive but not in manifest\.json/,
    ],
    [
      'a manifest from a newer hearth',
      async () => {
        const list = await members(plain);
        const m = manifestOf(list);
        const last = list[list.length - 1];
        if (last) last.data = Buffer.from(JSON.stringify({ ...m, format: 2, hearth: '9.9.9' }));
        return pack(list);
      },
      /was made by hearth 9\.9\.9 \(archive format 2\); upgrade hearth to restore it/,
    ],
    [
      'a store schema newer than this hearth knows',
      async () => {
        const list = await members(plain);
        const m = manifestOf(list);
        const last = list[list.length - 1];
        if (last) last.data = Buffer.from(JSON.stringify({ ...m, store: { kind: 'sqlite', schema: 999 } }));
        return pack(list);
      },
      /newer sqlite store \(schema 999, this hearth knows \d+\); upgrade hearth to restore it/,
    ],
    [
      'no manifest',
      async () => pack((await members(plain)).filter((m) => m.name !== 'manifest.json')),
      /has no manifest\.json: it is not a hearth backup, or it was cut short/,
    ],
    [
      'not gzip at all',
      async () => Buffer.from('just some text, not an archive\n'),
      /is not a hearth backup: it is not a gzip file/,
    ],
    ['an empty file', async () => Buffer.alloc(0), /is empty \(0 bytes\)/],
  ];

  for (const [what, make, message] of broken) {
    it(`refuses ${what} in verify and in restore, and changes nothing`, async () => {
      const bad = `${scratch('bad')}.tar.gz`;
      writeFileSync(bad, await make());
      const v = await runCli(['backup', 'verify', bad]);
      expect(v.code).toBe(1);
      expect(v.stdout).toBe('');
      expect(v.stderr).toMatch(/^hearth backup verify: /);
      expect(v.stderr).toMatch(message);

      // A folder that holds an earlier restore: even with --force nothing in it may change.
      const target = scratch('target');
      mkdirSync(join(target, 'data', 'media'), { recursive: true });
      writeFileSync(join(target, 'hearth.yaml'), 'http: { port: 0 }\n');
      writeFileSync(join(target, 'data', 'media', 'old.mp3'), 'old');
      const before = snapshot(target);
      const r = await runCli(['restore', bad, '--config-dir', target, '--force']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^hearth restore: /);
      expect(r.stderr).toMatch(message);
      expect(snapshot(target)).toEqual(before);

      // A new folder is not even created.
      const fresh = scratch('fresh');
      const f = await runCli(['restore', bad, '--config-dir', fresh]);
      expect(f.code).toBe(1);
      expect(existsSync(fresh)).toBe(false);
    });
  }

  it('restores into a new folder: the config as it was, the store, the media; then refuses to do it again without --force', async () => {
    const target = scratch('restored');
    const r = await runCli(['restore', withSecrets, '--config-dir', target], {
      env: { HEARTH_BACKUP_PASSPHRASE: PASS },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`start it: hearth start --config ${join(target, 'hearth.yaml')}`);
    expect(readFileSync(join(target, 'hearth.yaml'), 'utf8')).toBe(CONFIG);
    expect(readFileSync(join(target, 'secrets.yaml'), 'utf8')).toBe(`hearth_token: ${TOKEN}\n`);
    expect(statSync(join(target, 'secrets.yaml')).mode & 0o777).toBe(0o600);
    expect(statSync(join(target, 'hearth.yaml')).mode & 0o777).toBe(0o640);
    expect(statSync(join(target, 'data', 'media')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(target, 'data', 'media', 'ding.mp3')).equals(CHIME)).toBe(true);
    expect(readdirSync(join(target, 'data', 'media')).sort()).toEqual(['Glocke Küche.mp3', 'ding.mp3']);
    // Nothing of the restore's own is left beside what it restored.
    expect(readdirSync(target).sort()).toEqual(['data', 'hearth.yaml', 'secrets.yaml']);
    expect(readdirSync(join(target, 'data')).filter((f) => f.startsWith('.'))).toEqual([]);

    const store = await openStore({ sqlite: join(target, 'data', 'hearth.db') });
    try {
      expect((await store.states.list()).map((s) => [s.id, s.state, s.updatedAt])).toEqual([
        ['bedside', 'on', 1_700_000_000_000],
        ['porch', 'off', 1_700_000_001_000],
      ]);
      const runs = await store.automations.runs('evening', 10);
      expect(runs.map((x) => [x.trigger, x.outcome, x.startedAt, x.endedAt])).toEqual([
        ['webhook', 'ok', 1_700_000_002_000, 1_700_000_002_050],
      ]);
      expect(await store.automations.getMark('evening')).toBe(1_700_000_003_000);
      expect(await store.history.has('temp')).toBe(true);
    } finally {
      await store.close();
    }
    const check = await runCli(['check', '--config', join(target, 'hearth.yaml')]);
    expect(check.code, check.stderr).toBe(0);

    // Again into the same folder: refused, and nothing changes.
    const before = snapshot(target);
    const again = await runCli(['restore', plain, '--config-dir', target]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is not empty .*pass --force .*Nothing was changed/);
    expect(snapshot(target)).toEqual(before);
  });

  it('a big media file and many store rows: backup and restore write through back-pressure and say nothing on stderr', async () => {
    // Each write that fills a stream's buffer waits for 'drain': hundreds of times here. A wait
    // that left an error listener behind each time made Node warn (MaxListenersExceededWarning).
    const big = scratch('big');
    mkdirSync(join(big, 'data', 'media'), { recursive: true });
    writeFileSync(join(big, 'hearth.yaml'), 'storage: { sqlite: data/hearth.db }\n');
    writeFileSync(join(big, 'data', 'media', 'long.mp3'), Buffer.alloc(8 * 1024 * 1024, 7));
    const store = await openStore({ sqlite: join(big, 'data', 'hearth.db') });
    await store.history.append(
      Array.from({ length: 20_000 }, (_, i) => ({
        id: 'temp',
        at: 1_700_000_000_000 + i,
        num: i / 10,
        text: null,
      })),
    );
    await store.close();
    const made = await runCli([
      'backup',
      '--config',
      join(big, 'hearth.yaml'),
      '--to',
      scratch('big-out'),
      '--json',
    ]);
    expect([made.code, made.stderr]).toEqual([0, '']);
    const target = scratch('big-restored');
    const r = await runCli(['restore', JSON.parse(made.stdout).archive, '--config-dir', target]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(statSync(join(target, 'data', 'media', 'long.mp3')).size).toBe(8 * 1024 * 1024);
  });

  it('a row the store refuses (checksums right) restores nothing and leaves nothing behind', async () => {
    // An archive whose bytes match its manifest, with a row no store takes: the store's load
    // fails after everything was staged, and all of it must go again.
    const list = await members(plain);
    const states = list.find((m) => m.name === 'store/entity_state.ndjson');
    if (states)
      states.data = Buffer.from(states.data.toString('utf8').replace(/^[^\n]*\n/, '{"id":"broken"}\n'));
    const m = manifestOf(list);
    for (const f of m.files) {
      const data = list.find((x) => x.name === f.path)?.data ?? Buffer.alloc(0);
      f.size = data.length;
      f.sha256 = createHash('sha256').update(data).digest('hex');
    }
    const last = list[list.length - 1];
    if (last) last.data = Buffer.from(JSON.stringify(m));
    const archive = `${scratch('bad-row')}.tar.gz`;
    writeFileSync(archive, await pack(list));
    expect((await runCli(['backup', 'verify', archive])).code).toBe(0);

    const fresh = join(scratch('fresh-parent'), 'a', 'b');
    const r = await runCli(['restore', archive, '--config-dir', fresh]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^hearth restore: cannot load the store .*hearth\.db: /);
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync(join(fresh, '..', '..'))).toBe(false);

    // Over an earlier restore, with --force: its store keeps every row it had.
    const target = scratch('over');
    const first = await runCli(['restore', plain, '--config-dir', target]);
    expect(first.code, first.stderr).toBe(0);
    const forced = await runCli(['restore', archive, '--config-dir', target, '--force']);
    expect(forced.code).toBe(1);
    expect(readdirSync(target).sort()).toEqual(['data', 'hearth.yaml']);
    expect(readdirSync(join(target, 'data', 'media')).sort()).toEqual(['Glocke Küche.mp3', 'ding.mp3']);
    const store = await openStore({ sqlite: join(target, 'data', 'hearth.db') });
    try {
      expect((await store.states.list()).map((s) => s.id)).toEqual(['bedside', 'porch']);
    } finally {
      await store.close();
    }
  });

  it('refuses a non-empty media folder in --data-dir, outside the target folder, without --force', async () => {
    // The config keeps its media folder elsewhere (an absolute path), and it is not empty; the
    // user names the folder that holds it with --data-dir (else it would move under the target).
    const elsewhere = scratch('media');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'mine.mp3'), 'mine');
    const list = await members(plain);
    const cfg = list[0];
    if (cfg)
      cfg.data = Buffer.from(CONFIG.replace('media: { dir: data/media }', `media: { dir: ${elsewhere} }`));
    const m = manifestOf(list);
    m.files[0] = {
      path: 'config/hearth.yaml',
      size: cfg?.data.length,
      sha256: createHash('sha256')
        .update(cfg?.data ?? '')
        .digest('hex'),
    };
    const last = list[list.length - 1];
    if (last) last.data = Buffer.from(JSON.stringify(m));
    const archive = `${scratch('elsewhere')}.tar.gz`;
    writeFileSync(archive, await pack(list));

    const target = scratch('empty-target');
    const before = snapshot(elsewhere);
    const r = await runCli(['restore', archive, '--config-dir', target, '--data-dir', root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`the media folder ${elsewhere} is not empty`));
    expect(existsSync(target)).toBe(false);
    expect(snapshot(elsewhere)).toEqual(before);

    const forced = await runCli(['restore', archive, '--config-dir', target, '--force', '--data-dir', root]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readdirSync(elsewhere).sort()).toEqual(['Glocke Küche.mp3', 'ding.mp3']);
  });

  describe('the secrets file', () => {
    it('is in the archive only encrypted, and backup verify checks the passphrase when it has one', async () => {
      const list = await members(withSecrets);
      expect(list.map((m) => m.name)).toContain('secrets.enc');
      expect(gunzipSync(readFileSync(withSecrets)).includes(TOKEN)).toBe(false);
      const sealed = JSON.parse(list.find((m) => m.name === 'secrets.enc')?.data.toString('utf8') ?? '{}');
      expect(sealed).toMatchObject({ hearthSecrets: 1, kdf: 'scrypt' });

      const noPass = await runCli(['backup', 'verify', withSecrets]);
      expect(noPass.code).toBe(0);
      expect(noPass.stdout).toContain('set HEARTH_BACKUP_PASSPHRASE to check the passphrase too');
      const good = await runCli(['backup', 'verify', withSecrets], {
        env: { HEARTH_BACKUP_PASSPHRASE: PASS },
      });
      expect(good.code).toBe(0);
      expect(good.stdout).toContain('the passphrase opens it');
      const wrong = await runCli(['backup', 'verify', withSecrets], {
        env: { HEARTH_BACKUP_PASSPHRASE: 'not the passphrase at all' },
      });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/the passphrase in HEARTH_BACKUP_PASSPHRASE does not open secrets\.enc/);
    });

    it('a restore with a wrong or no passphrase is refused and changes nothing; --without-secrets restores the rest', async () => {
      const target = scratch('secret-target');
      mkdirSync(target);
      writeFileSync(join(target, 'keep.txt'), 'keep');
      const before = snapshot(target);
      const wrong = await runCli(['restore', withSecrets, '--config-dir', target, '--force'], {
        env: { HEARTH_BACKUP_PASSPHRASE: 'not the passphrase at all' },
      });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(
        /^hearth restore: the passphrase in HEARTH_BACKUP_PASSPHRASE does not open secrets\.enc/,
      );
      expect(wrong.stderr).not.toContain('not the passphrase at all');
      expect(snapshot(target)).toEqual(before);

      const none = await runCli(['restore', withSecrets, '--config-dir', target, '--force']);
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(
        /HEARTH_BACKUP_PASSPHRASE is not set: export it .*or pass --without-secrets/,
      );
      expect(snapshot(target)).toEqual(before);

      const without = await runCli([
        'restore',
        withSecrets,
        '--config-dir',
        target,
        '--force',
        '--without-secrets',
      ]);
      expect(without.code, without.stderr).toBe(0);
      expect(existsSync(join(target, 'secrets.yaml'))).toBe(false);
      // The config needs its secrets file back before it starts: said, with the command to check.
      expect(without.stderr).toMatch(/the restored config has problems on this box/);
      expect(without.stderr).toMatch(/hearth check --config/);
      expect(readFileSync(join(target, 'keep.txt'), 'utf8')).toBe('keep');
    });

    it('--include-secrets without a passphrase, or with a short one, is refused and leaves nothing behind', async () => {
      const to = scratch('refused');
      const none = await runCli(['backup', '--config', config, '--to', to, '--include-secrets']);
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(
        /^hearth backup: --include-secrets encrypts the secrets file with a passphrase, and HEARTH_BACKUP_PASSPHRASE is not set/,
      );
      const short = await runCli(['backup', '--config', config, '--to', to, '--include-secrets'], {
        env: { HEARTH_BACKUP_PASSPHRASE: 'short' },
      });
      expect(short.code).toBe(1);
      expect(short.stderr).toMatch(/HEARTH_BACKUP_PASSPHRASE is too short \(5 characters\); use at least 12/);
      expect(short.stderr).not.toContain('short\n');
      expect(existsSync(to) ? readdirSync(to) : []).toEqual([]);
    });
  });

  it('a backup stopped half-way leaves no archive and no .partial; 1 GB of media streams through in little memory', async () => {
    const big = scratch('bigbox');
    mkdirSync(join(big, 'data', 'media'), { recursive: true });
    const bigConfig = join(big, 'hearth.yaml');
    writeFileSync(bigConfig, 'http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: data/hearth.db }\n');
    // Sparse: a gigabyte on no disk, read as zeros.
    const media = join(big, 'data', 'media', 'long.mp3');
    writeFileSync(media, '');
    truncateSync(media, 1024 ** 3);
    const to = scratch('big-archives');

    const stopped = startCli(['backup', '--config', bigConfig, '--to', to]);
    await until(() => existsSync(to) && readdirSync(to).some((f) => f.endsWith('.partial')), {
      timeoutMs: 20_000,
      what: () => `a .partial archive in ${to} (stderr: ${stopped.stderr()})`,
    });
    const end = await stopped.stop('SIGTERM');
    expect(end.code).toBe(1);
    expect(stopped.stderr()).toMatch(/hearth backup: stopped by SIGTERM; no archive was written/);
    expect(readdirSync(to)).toEqual([]);

    // The whole of it, with the peak memory of the process watched from outside.
    const run = startCli(['backup', '--config', bigConfig, '--to', to, '--json']);
    let peakKb = 0;
    const pid = run.child.pid;
    const watch = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // Exited.
      }
    }, 50);
    const result = await new Promise<{ code: number | null }>((resolve) =>
      run.child.once('close', (code) => resolve({ code })),
    );
    clearInterval(watch);
    expect(result.code, run.stderr()).toBe(0);
    const out = JSON.parse(run.stdout());
    expect(out.mediaFiles).toBe(1);
    // A progress line for large media, on stderr.
    expect(run.stderr()).toMatch(/hearth backup: media .* of 1\.0 GB \(\d+%\)/);
    expect(peakKb).toBeGreaterThan(0);
    expect(peakKb).toBeLessThan(250 * 1024);
    console.log(`1 GB of media: archive ${out.bytes} bytes, peak RSS ${Math.round(peakKb / 1024)} MB`);
    rmSync(big, { recursive: true, force: true });
    rmSync(to, { recursive: true, force: true });
  }, 180_000);
});
