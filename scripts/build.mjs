// Builds dist/hearth.mjs: the CLI and everything it always needs in one minified ES module.
// One file loads several times faster than hundreds of modules, which is most of start-up
// time on a Raspberry Pi. What only some configs use (a driver's code, node-ical, the
// prom-client registry) is behind a dynamic import() and lands in dist/chunks/, loaded the
// first time it is needed. Packages with native addons (better-sqlite3, serialport) stay
// outside: they find their compiled parts relative to their own files.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

// --outdir: somewhere else than dist/ (a test inspects a build without touching the real one).
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } });
const outdir = values.outdir;
// Chunk names carry a content hash: without this, old chunks would pile up build after build.
rmSync(join(outdir, 'chunks'), { recursive: true, force: true });

await build({
  entryPoints: { hearth: 'src/cli/main.ts' },
  outdir,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  // The two schema compilers are never loaded (see src/server/app.ts); keeping them out of the
  // bundle saves parsing 250 kB at every start.
  //
  // node-ical stays outside too. Its CommonJS files are sloppy-mode code, and an ES module
  // bundle is strict as a whole: there, node-ical's copyDateMeta (`target.tz = source.tz` on a
  // Date whose `tz` it had made read-only) throws "Cannot assign to read only property 'tz'"
  // instead of doing nothing, expandRecurringEvent fails, and every event it expands is lost
  // (a calendar trigger never fired in the built CLI while it did from source). Loaded by Node
  // from node_modules it keeps the semantics its authors tested. node-ical 0.27 fixes this but
  // needs Node 22. test/built-cli.test.ts runs this bundle on such a feed.
  external: [
    'better-sqlite3',
    // Loaded only with storage.postgres (src/store/open.ts): one box never parses it.
    'pg',
    'node-ical',
    'serialport',
    '@serialport/*',
    '@fastify/ajv-compiler',
    '@fastify/fast-json-stringify-compiler',
  ],
  // Some bundled packages are CommonJS and call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __hearthRequire } from 'node:module'; const require = __hearthRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
