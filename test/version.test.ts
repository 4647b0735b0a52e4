import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hearthHomepage, hearthVersion } from '../src/version.js';
import { runCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';
import { spawnHearth } from './support/process.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
  homepage: string;
  repository: { url: string };
  bugs: { url: string };
};

it('says the version package.json says', () => {
  expect(hearthVersion).toBe(pkg.version);
});

it('names the project page package.json names, which its repository and issues are under', () => {
  expect(hearthHomepage).toBe(pkg.homepage);
  expect(pkg.repository.url).toBe(`git+${hearthHomepage}.git`);
  expect(pkg.bugs.url).toBe(`${hearthHomepage}/issues`);
});

describe('the built CLI', () => {
  it('says its version on --version, and the commit it was built from in hearth_build_info', async () => {
    const version = await runCli(['--version']);
    expect(version.stdout.trim()).toBe(pkg.version);
    const dir = tempDir();
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      `http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: ${join(dir, 'hearth.db')} }\n`,
    );
    const h = await spawnHearth(config);
    try {
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      const info = /^hearth_build_info\{version="([^"]+)",revision="([^"]+)",node="([^"]+)"\} 1$/m.exec(
        metrics,
      );
      expect(info?.slice(1)).toEqual([
        pkg.version,
        // As scripts/build.mjs takes it: HEARTH_REVISION (CI's copy of the tree and the image
        // have no .git), else git's commit.
        process.env.HEARTH_REVISION || expect.stringMatching(/^[0-9a-f]{40}(-dirty)?$/),
        process.versions.node,
      ]);
    } finally {
      h.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
