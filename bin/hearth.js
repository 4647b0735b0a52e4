#!/usr/bin/env node
// The compiled CLI. Every `npm ci` builds it (the `prepare` script; esbuild is a dependency,
// so a production install, `npm ci --omit=dev`, builds it too); `npm run build` rebuilds it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/hearth.mjs', import.meta.url);
if (!existsSync(main)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  console.error(
    `hearth is not built: ${fileURLToPath(main)} is missing (an install with --ignore-scripts skips the build). ` +
      `Run \`npm run build\` in ${root}, or \`npm ci\` there again.`,
  );
  process.exit(1);
}
await import(main.href);
