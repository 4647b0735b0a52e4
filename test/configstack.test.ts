// `hearth configstack` end to end: the built CLI against a real SQLite file and a fresh
// PostgreSQL database, with real processes racing, renewing, and being killed.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, formatIssue } from '../src/config/errors.js';
import { parseConfig } from '../src/config/load.js';
import { drivers } from '../src/drivers/index.js';
import { runCli, startCli } from './support/cli-run.js';
import { createTestDatabase, postgresMissing, type TestDatabase } from './support/postgres.js';
import { until } from './support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'hearth-configstack-test-'));
let pg: TestDatabase;
beforeAll(async () => {
  if (!postgresMissing) pg = await createTestDatabase();
});
afterAll(async () => {
  await pg?.drop();
  rmSync(root, { recursive: true, force: true });
});

const STACKS = `configstacks:
  speakers:
    - { room: kitchen, speaker: 192.168.1.50 }
    - { room: hall, speaker: 192.168.1.51 }
    - room: porch
      speaker: 192.168.1.52
      volume: 30
  race: [{ n: 0 }, { n: 1 }, { n: 2 }]
  solo: [{ n: 0 }]
  solo2: [{ n: 0 }]
  solo3: [{ n: 0 }]
  keyed:
    - { room: attic, token: "\${STACK_TOKEN:-unset}", db: "postgres://hearth:\${STACK_PW:-unset}@db.lan/hearth" }
`;
// Substituted into the entry of `keyed` (the other tests run without them): `configstack list` never prints them.
const STACK_ENV = { STACK_TOKEN: 'stack-token-5c1e9a7f3b2d', STACK_PW: 'stackpw8e4f2a6c' };

for (const { name, storage } of [
  { name: 'sqlite', storage: () => 'storage: { sqlite: data/hearth.db }' },
  { name: 'postgres', storage: () => `storage: { postgres: { url: "${pg.url}" } }` },
])
  describe.skipIf(name === 'postgres' && postgresMissing)(`hearth configstack on ${name}`, () => {
    let dir: string;
    let config: string;
    const cli = (...args: string[]) => runCli(['configstack', ...args, '--config', config]);
    const out = (file: string) => join(dir, 'out', file);

    beforeAll(() => {
      dir = mkdtempSync(join(root, `${name}-`));
      config = join(dir, 'hearth.yaml');
      writeFileSync(config, `${storage()}\n${STACKS}`);
    });

    it('writes the claimed entry, gives the same holder the same entry, and exits 3 when all are held', async () => {
      const a = await cli('claim', 'speakers', '--holder', 'pod-a', '--out', out('a.yaml'));
      expect(a.stderr).toBe('');
      expect(a.code).toBe(0);
      expect(a.stdout).toMatch(/^claimed speakers\[0\] for pod-a: wrote .*a\.yaml$/m);
      expect(parse(readFileSync(out('a.yaml'), 'utf8'))).toEqual({
        room: 'kitchen',
        speaker: '192.168.1.50',
      });
      // Only its owner reads it: an entry may hold a secret after substitution.
      expect(statSync(out('a.yaml')).mode & 0o777).toBe(0o600);
      const b = await cli('claim', 'speakers', '--holder', 'pod-b', '--out', out('b.yaml'));
      expect(b.stdout).toMatch(/claimed speakers\[1\] for pod-b/);
      const c = await cli('claim', 'speakers', '--holder', 'pod-c', '--out', out('c.yaml'));
      expect(parse(readFileSync(out('c.yaml'), 'utf8'))).toEqual({
        room: 'porch',
        speaker: '192.168.1.52',
        volume: 30,
      });
      expect(c.code).toBe(0);
      // pod-a restarts: the same entry.
      const again = await cli('claim', 'speakers', '--holder', 'pod-a', '--out', out('a2.yaml'));
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/claimed speakers\[0\] for pod-a/);
      expect(readFileSync(out('a2.yaml'), 'utf8')).toBe(readFileSync(out('a.yaml'), 'utf8'));
      // A fourth replica: nothing left.
      const d = await cli('claim', 'speakers', '--holder', 'pod-d', '--out', out('d.yaml'));
      expect(d.code).toBe(3);
      expect(d.stderr.trim()).toBe(
        'hearth configstack claim: no free entry in the configstack speakers: all 3 are held by live holders (`hearth configstack list speakers` shows them); add an entry or stop a replica',
      );
      expect(existsSync(out('d.yaml'))).toBe(false);
      // Written by rename: no temp file is left behind.
      expect(readdirSync(join(dir, 'out')).sort()).toEqual(['a.yaml', 'a2.yaml', 'b.yaml', 'c.yaml']);
      const list = await cli('list', 'speakers', '--json');
      expect(list.code).toBe(0);
      expect(
        (JSON.parse(list.stdout) as { index: number; holder: string }[]).map((r) => [r.index, r.holder]),
      ).toEqual([
        [0, 'pod-a'],
        [1, 'pod-b'],
        [2, 'pod-c'],
      ]);
    }, 60_000); // seven CLI starts in a row: on a loaded two-core machine each can take seconds

    it('list redacts secret values of the entries, in the table and in --json; the claimed file has them', async () => {
      const run = (...args: string[]) =>
        runCli(['configstack', ...args, '--config', config], { env: STACK_ENV });
      const claimed = await run('claim', 'keyed', '--holder', 'pod-k', '--out', out('keyed.yaml'));
      expect(claimed.code).toBe(0);
      expect(parse(readFileSync(out('keyed.yaml'), 'utf8')).token).toBe(STACK_ENV.STACK_TOKEN);
      const [table, json] = await Promise.all([run('list', 'keyed'), run('list', 'keyed', '--json')]);
      for (const r of [table, json]) {
        expect(r.code).toBe(0);
        for (const secret of Object.values(STACK_ENV)) expect(r.stdout + r.stderr).not.toContain(secret);
      }
      expect(table.stdout).toContain('"token":"***"');
      expect(JSON.parse(json.stdout)[0]).toMatchObject({
        holder: 'pod-k',
        changed: false,
        entry: { room: 'attic', token: '***', db: 'postgres://hearth:***@db.lan/hearth' },
      });
    }, 60_000);

    it('exits 2 for a stack the config lacks or a bad --ttl, naming what there is', async () => {
      const r = await cli('claim', 'speaker', '--holder', 'x', '--out', out('x.yaml'));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('has no configstack "speaker"; it has: speakers, race, solo');
      const t = await cli('claim', 'solo', '--holder', 'x', '--out', out('x.yaml'), '--ttl', '0.5');
      expect(t.code).toBe(2);
      expect(t.stderr).toContain('--ttl must be a whole number of seconds');
      expect(existsSync(out('x.yaml'))).toBe(false);
    });

    it('gives 3 entries to exactly 3 of 8 processes claiming at once', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          cli('claim', 'race', '--holder', `racer-${i}`, '--out', out(`race-${i}.yaml`)),
        ),
      );
      const codes = results.map((r) => r.code);
      expect(codes.filter((c) => c === 0)).toHaveLength(3);
      expect(codes.filter((c) => c === 3)).toHaveLength(5);
      const won = results.flatMap((r, i) =>
        r.code === 0 ? [parse(readFileSync(out(`race-${i}.yaml`), 'utf8'))] : [],
      );
      expect(won.map((e: { n: number }) => e.n).sort()).toEqual([0, 1, 2]);
    }, 60_000);

    it('keeps a held entry past its TTL; after hold is killed with -9, another holder gets it once the TTL runs out', async () => {
      expect(
        (await cli('claim', 'solo', '--holder', 'pi-1', '--out', out('pi-1.yaml'), '--ttl', '2')).code,
      ).toBe(0);
      const holder = startCli([
        'configstack',
        'hold',
        'solo',
        '--holder',
        'pi-1',
        '--ttl',
        '2',
        '--config',
        config,
      ]);
      /** When the claim on solo[0] runs out, as the store has it; null when it is not held. */
      const expiresAt = async (): Promise<number | null> => {
        const list = await cli('list', 'solo', '--json');
        expect(list.code, list.stderr).toBe(0);
        return (JSON.parse(list.stdout) as { expiresAt: number | null }[])[0]?.expiresAt ?? null;
      };
      try {
        await holder.waitFor(/holding solo\[0\] for pi-1; renewing every 0\.666 s/);
        // Past the 2 s of the claim: the holder renewed it all along, so it is still taken.
        const claimedUntil = await until(expiresAt, { what: 'the claim of solo[0]' });
        await until(
          async () => ((await expiresAt()) ?? 0) > claimedUntil + 1000 && Date.now() > claimedUntil,
          {
            what: "solo[0]'s first TTL over, renewed beyond it",
          },
        );
        expect((await cli('claim', 'solo', '--holder', 'pi-2', '--out', out('pi-2.yaml'))).code).toBe(3);
        expect(await holder.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
        // The last renewal holds it until its expiry, and not a moment longer: a claim that ended
        // before then is refused, one that began after it gets the entry, however slow each CLI
        // start is on a loaded machine.
        const lastUntil = await expiresAt();
        const attempts: Array<{ start: number; end: number; code: number | null }> = [];
        await until(
          async () => {
            const start = Date.now();
            const r = await cli('claim', 'solo', '--holder', 'pi-2', '--out', out('pi-2.yaml'));
            attempts.push({ start, end: Date.now(), code: r.code });
            return r.code === 0;
          },
          {
            timeoutMs: 30_000,
            intervalMs: 300,
            what: () => `pi-2 to get solo[0] (${JSON.stringify(attempts)})`,
          },
        );
        for (const a of attempts) {
          if (lastUntil !== null && a.end < lastUntil) expect(a.code, JSON.stringify(a)).toBe(3);
          if (lastUntil === null || a.start > lastUntil) expect(a.code, JSON.stringify(a)).toBe(0);
        }
        expect(parse(readFileSync(out('pi-2.yaml'), 'utf8'))).toEqual({ n: 0 });
        // pi-1 comes back and finds its entry gone.
        const back = await cli('hold', 'solo', '--holder', 'pi-1');
        expect(back.code).toBe(4);
        expect(back.stderr).toContain('pi-1 holds no entry of the configstack solo');
      } finally {
        await holder.stop('SIGKILL');
      }
    }, 60_000);

    it('releases on SIGTERM: the next replica gets the entry at once', async () => {
      expect(
        (await cli('claim', 'solo2', '--holder', 'pi-1', '--out', out('s2.yaml'), '--ttl', '60')).code,
      ).toBe(0);
      const holder = startCli(['configstack', 'hold', 'solo2', '--holder', 'pi-1', '--config', config]);
      await holder.waitFor(/holding solo2\[0\]/);
      expect((await cli('claim', 'solo2', '--holder', 'pi-2', '--out', out('s2b.yaml'))).code).toBe(3);
      expect(await holder.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(holder.stdout()).toContain('released solo2[0]');
      const next = await cli('claim', 'solo2', '--holder', 'pi-2', '--out', out('s2b.yaml'));
      expect(next.code).toBe(0);
    }, 30_000);

    it('hold exits 4 when another holder took the entry while it could not renew', async () => {
      expect((await cli('claim', 'solo3', '--holder', 'pi-1', '--out', out('s3.yaml'))).code).toBe(0);
      const holder = startCli([
        'configstack',
        'hold',
        'solo3',
        '--holder',
        'pi-1',
        '--ttl',
        '3',
        '--config',
        config,
      ]);
      try {
        await holder.waitFor(/holding solo3\[0\]/);
        // Stands in for a lost claim (a partition longer than the TTL): released behind its back
        // and taken by another replica.
        expect((await cli('release', 'solo3', '--holder', 'pi-1')).code).toBe(0);
        expect((await cli('claim', 'solo3', '--holder', 'pi-2', '--out', out('s3b.yaml'))).code).toBe(0);
        // It finds out at its next renewal (every second) and exits by itself.
        await until(() => holder.child.exitCode !== null, { what: 'hold to exit by itself' });
        // SIGCONT does nothing to it: stop() then only answers how it ended.
        expect(await holder.stop('SIGCONT')).toEqual({ code: 4, signal: null });
        expect(holder.stderr()).toContain('lost solo3[0]');
      } finally {
        await holder.stop('SIGKILL');
      }
    }, 30_000);
  });

describe('configstacks: in the config', () => {
  const problems = (text: string): string[] => {
    try {
      parseConfig(text, '/etc/hearth/hearth.yaml', { drivers, env: {} });
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map(formatIssue);
      throw err;
    }
    return [];
  };

  it('takes a map of names to lists of mappings', () => {
    const cfg = parseConfig(STACKS, '/etc/hearth/hearth.yaml', { drivers, env: {} });
    expect(cfg.configstacks.speakers?.[2]).toEqual({ room: 'porch', speaker: '192.168.1.52', volume: 30 });
    expect(parseConfig('', '/x.yaml', { drivers, env: {} }).configstacks).toEqual({});
  });

  it('names a bad stack name, an entry that is not a mapping, and too many entries at their line', () => {
    expect(problems('configstacks:\n  "a b": [{ x: 1 }]\n')).toEqual([
      '/etc/hearth/hearth.yaml:2:10: configstacks.a b: must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -',
    ]);
    expect(problems('configstacks:\n  s:\n    - { x: 1 }\n    - just text\n    - [1, 2]\n')).toEqual([
      `/etc/hearth/hearth.yaml:4:7: configstacks.s[1]: must be a mapping (key: value lines, or { key: value }): it becomes the replica's YAML file (got "just text")`,
      `/etc/hearth/hearth.yaml:5:7: configstacks.s[2]: must be a mapping (key: value lines, or { key: value }): it becomes the replica's YAML file`,
    ]);
    const many = `configstacks:\n  big:\n${'    - { x: 1 }\n'.repeat(1001)}`;
    expect(problems(many)).toEqual([
      '/etc/hearth/hearth.yaml:3:5: configstacks.big: has more than 1000 entries',
    ]);
    expect(problems(`configstacks:\n  ok:\n${'    - { x: 1 }\n'.repeat(1000)}`)).toEqual([]);
  });
});
