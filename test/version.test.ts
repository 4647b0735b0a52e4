import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { hearthVersion } from '../src/version.js';

it('says the version package.json says', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  expect(hearthVersion).toBe(pkg.version);
});
