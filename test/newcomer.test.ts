import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';
import { repoRoot, spawnReady } from './support/process.js';

/*
 * The README's first steps, as a newcomer takes them: what `npm start` prints is what the
 * README says it prints, and "Running it for real" works as written from a copied example.
 */
const run = promisify(execFile);
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The first ```sh block after the heading `## <title>`, as lines. */
function shBlock(title: string): string[] {
  const section = readme.slice(readme.indexOf(`\n## ${title}\n`));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  expect(block, `a sh block under "## ${title}"`).not.toBeNull();
  return (block?.[1] ?? '').trimEnd().split('\n');
}

describe('the README, for a newcomer', () => {
  it("lists every command the demo's banner offers, on the demo's port", async () => {
    const demo = await spawnReady(['bin/hearth.js', 'start', '--demo'], { HEARTH_PORT: '0' });
    try {
      const offered = demo
        .output()
        .split('\n')
        .filter((l) => l.startsWith('  curl'))
        .map((l) => l.trim().replaceAll(demo.url, 'http://127.0.0.1:8000'));
      expect(offered.length).toBeGreaterThan(3);
      const listed = readme
        .slice(readme.indexOf('`npm start` prints the URLs to try'))
        .split('```sh\n')[1]
        ?.split('```')[0]
        ?.split('\n')
        .map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter(Boolean);
      expect(listed).toEqual(offered);
    } finally {
      demo.child.kill('SIGTERM');
    }
    await demo.exited;
  });

  it('a copied example fails `hearth check` saying what to create, and passes after the steps the README gives', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const hearth = `node ${join(repoRoot, 'bin/hearth.js')}`;
    const steps = shBlock('Running it for real').filter((l) => !l.startsWith('npx hearth start'));
    expect(steps[0]).toMatch(/^cp examples\/hearth\.yaml hearth\.yaml/);
    expect(steps.at(-1)).toMatch(/^npx hearth check/);
    const script = steps.map((l) =>
      l.replace('examples/', `${join(repoRoot, 'examples')}/`).replace('npx hearth', hearth),
    );

    // The copy alone: both values it reads are missing, and each error says what to do.
    await run('sh', ['-c', script[0] as string], { cwd: dir });
    const bare = await runCli(['check', '--config', join(dir, 'hearth.yaml')]);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(
      /secrets file .*secrets\.yaml does not exist; create it .* `name: value` line/,
    );
    expect(bare.stderr).toMatch(/FAN_ADDRESS is not set; export it/);

    // Every step as the README writes it, in one shell (the export carries to `check`).
    const env = { ...process.env };
    delete env.FAN_ADDRESS;
    delete env.HEARTH_CONFIG;
    const { stdout } = await run('sh', ['-ec', script.join('\n')], { cwd: dir, env });
    expect(stdout).toMatch(/hearth\.yaml: ok/);
  });
});
