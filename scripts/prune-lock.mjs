// Drops from package-lock.json the optional dependencies that the lock has no entry for.
//
// Why: the npm registry reachable from our machines serves platform packages (biome's,
// esbuild's, rollup's native builds) for linux-x64 only; npm silently records no entry for
// the others, and `npm ci` then refuses its own lock ("Missing: ... from lock file"). Run
// `node scripts/prune-lock.mjs` after every `npm install` that changes the lock; CI's
// `npm ci` fails if it was forgotten. On a machine with the full registry, plain
// `npm install` writes a complete lock and this is not needed.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;

/** Whether `name` resolves from the lock entry at `key`, as Node resolves node_modules upwards. */
function resolves(key, name) {
  let dir = key;
  for (;;) {
    if (packages[`${dir ? `${dir}/` : ''}node_modules/${name}`]) return true;
    if (!dir) return false;
    const i = dir.lastIndexOf('/node_modules/');
    dir = i >= 0 ? dir.slice(0, i) : '';
  }
}

let removed = 0;
for (const [key, entry] of Object.entries(packages)) {
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    if (resolves(key, name)) continue;
    delete entry.optionalDependencies[name];
    removed++;
  }
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`prune-lock: removed ${removed} optional dependencies the registry does not serve here`);
