// Builds dist/hearth.mjs (and the dashboard, dist/web: see the end): the CLI and everything it always needs in one minified ES module.
// One file loads several times faster than hundreds of modules, which is most of start-up
// time on a Raspberry Pi. What only some configs use (a driver's code, node-ical, prom-client's
// default metrics) is behind a dynamic import() and lands in dist/chunks/, loaded the
// first time it is needed. Packages with native addons (better-sqlite3, serialport) stay
// outside: they find their compiled parts relative to their own files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { externals } from './externals.mjs';

// --outdir: somewhere else than dist/ (a test inspects a build without touching the real one).
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } });
const outdir = values.outdir;
// The commit this build is made from, for hearth_build_info: $HEARTH_REVISION (the image's
// build, whose context has no .git), else git's, `-dirty` when tracked files had changes.
function revision() {
  if (process.env.HEARTH_REVISION) return process.env.HEARTH_REVISION;
  try {
    const git = (...args) =>
      execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('rev-parse', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '-dirty' : ''}`;
  } catch {
    return 'unknown';
  }
}

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
  define: { __HEARTH_REVISION__: JSON.stringify(revision()) },
  // Why each one: scripts/externals.mjs.
  external: externals,
  // uri-js (under kubernetes-models' validator) requires Node's deprecated built-in `punycode`,
  // which prints DEP0040 on stderr from Node 21 on: the npm package of the same code instead.
  alias: { punycode: 'punycode/' },
  // Some bundled packages are CommonJS and call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __hearthRequire } from 'node:module'; const require = __hearthRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

// The dashboard (web/): a Preact app bundled into content-hashed files under dist/web/assets,
// which the control listener serves with a year's caching, and an index.html that names
// them, served with no-cache. esbuild does it alone: no other build tool is installed.
const web = join(outdir, 'web');
rmSync(web, { recursive: true, force: true });
const app = await build({
  entryPoints: { app: 'web/main.tsx' },
  outdir: join(web, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(app.metafile.outputs).map((f) => basename(f));
const script = outputs.find((f) => f.endsWith('.js'));
const style = outputs.find((f) => f.endsWith('.css'));
if (!script || !style)
  throw new Error(`the dashboard build made no script or no style: ${outputs.join(', ')}`);
mkdirSync(web, { recursive: true });
writeFileSync(
  join(web, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>hearth</title>
<link rel="stylesheet" href="/app/assets/${style}">
<script type="module" src="/app/assets/${script}"></script>
</head>
<body>
<div id="app"><noscript><p>The hearth dashboard needs JavaScript.</p></noscript></div>
</body>
</html>
`,
);
