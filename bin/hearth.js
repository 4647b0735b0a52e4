#!/usr/bin/env node
// The compiled CLI; `npm ci` builds it (the `prepare` script), `npm run build` rebuilds it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/hearth.mjs', import.meta.url);
if (!existsSync(main)) {
  console.error('hearth is not built yet: run `npm ci` (or `npm run build`) in the hearth folder first.');
  process.exit(1);
}
await import(main.href);
