// Leaves in node_modules only what the built CLI loads at run time: the packages that
// scripts/build.mjs keeps out of its bundle (scripts/externals.mjs) and what they depend on,
// as package-lock.json resolves them. Everything else is already inside dist/ (fastify,
// kubernetes-models, zod, ...) or was needed only to build it (esbuild). Of the native
// addons it keeps the compiled module for this platform and drops their C sources, object
// files and other platforms' prebuilt binaries.
//
// The image's build stage runs it after `node scripts/build.mjs` (Dockerfile); a production
// install on a box keeps node_modules whole (`npm ci --omit=dev` again must find it as npm
// left it). Run from the folder that holds package-lock.json and node_modules; `--dry-run`
// prints what it would remove. Prints the sizes before and after.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { externals } from './externals.mjs';

const { values } = parseArgs({ options: { 'dry-run': { type: 'boolean', default: false } } });
const dryRun = values['dry-run'];
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
/** @type {Record<string, {dependencies?: Record<string,string>, optionalDependencies?: Record<string,string>, dev?: boolean}>} */
const packages = lock.packages;

/** Where Node finds `name` required from the package at `from` (a lock path, '' for the root). */
function resolve(from, name) {
  for (let dir = from; ; dir = parentPackage(dir)) {
    const candidate = `${dir === '' ? '' : `${dir}/`}node_modules/${name}`;
    if (packages[candidate] && existsSync(candidate)) return candidate;
    if (dir === '') return undefined;
  }
}

/** The lock path of the package whose node_modules holds `path`: 'node_modules/a/node_modules/b' -> 'node_modules/a'. */
function parentPackage(path) {
  const at = path.lastIndexOf('/node_modules/');
  return at === -1 ? '' : path.slice(0, at);
}

const keep = new Set();
const queue = [];
for (const name of externals) {
  const matches = name.endsWith('/*')
    ? Object.keys(packages).filter(
        (p) => p.startsWith(`node_modules/${name.slice(0, -1)}`) && !p.slice(13).includes('/node_modules/'),
      )
    : [resolve('', name)];
  for (const path of matches) if (path) queue.push(path);
}
while (queue.length > 0) {
  const path = queue.pop();
  if (keep.has(path)) continue;
  keep.add(path);
  const { dependencies = {}, optionalDependencies = {} } = packages[path];
  for (const dep of Object.keys({ ...dependencies, ...optionalDependencies })) {
    const found = resolve(path, dep);
    // An optional dependency that was not installed (another platform's, or one that failed
    // to build) is simply absent.
    if (found) queue.push(found);
    else if (!(dep in optionalDependencies)) throw new Error(`${path} needs ${dep}, which is not installed`);
  }
}

function size(path) {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st || st.isSymbolicLink()) return 0;
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, entry) => sum + size(join(path, entry)), 0);
}

function remove(path) {
  if (dryRun) console.log(`would remove ${path}`);
  else rmSync(path, { recursive: true, force: true });
}

/** The folder a package's entry point is in ('lib' for lib/index.js), '' when at its top. */
function mainFolder(path) {
  const { main = 'index.js' } = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8'));
  return main.replace(/^\.\//, '').split('/').slice(0, -1)[0] ?? '';
}

const before = size('node_modules');
// Packages not kept, unless a kept one lives in their own node_modules (then only that stays).
for (const path of Object.keys(packages)) {
  if (path === '' || keep.has(path) || !existsSync(path)) continue;
  if ([...keep].some((k) => k.startsWith(`${path}/`))) continue;
  remove(path);
}
// Empty scope folders, npm's links to the removed packages' commands, and its record of a tree
// that is no longer this one.
for (const entry of readdirSync('node_modules')) {
  const path = join('node_modules', entry);
  if (entry.startsWith('@') && !dryRun && readdirSync(path).length === 0) remove(path);
}
remove('node_modules/.bin');
remove('node_modules/.package-lock.json');
// The native addons: the compiled module stays, the means of making it go.
const platform = `${process.platform}-${process.arch}`;
for (const path of keep) {
  if (!existsSync(join(path, 'binding.gyp'))) continue;
  // C and C++ sources (better-sqlite3's deps/ is SQLite's, 10 MB), unless the package's own
  // entry point is in one of them.
  for (const folder of ['src', 'deps']) {
    const dir = join(path, folder);
    if (existsSync(dir) && mainFolder(path) !== folder) remove(dir);
  }
  const build = join(path, 'build');
  if (existsSync(build)) {
    for (const entry of readdirSync(build)) if (entry !== 'Release') remove(join(build, entry));
    const release = join(build, 'Release');
    if (existsSync(release))
      for (const entry of readdirSync(release)) if (!entry.endsWith('.node')) remove(join(release, entry));
  }
  const prebuilds = join(path, 'prebuilds');
  if (existsSync(prebuilds))
    for (const entry of readdirSync(prebuilds)) if (entry !== platform) remove(join(prebuilds, entry));
}
const after = dryRun ? before : size('node_modules');
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
console.log(`node_modules: ${mb(before)} -> ${mb(after)}; ${keep.size} packages kept for the run time`);
