import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { hearthHomepage, hearthVersion } from '../src/version.js';

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
