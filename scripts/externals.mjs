// The packages the built CLI (dist/) loads from node_modules at run time instead of bundling:
// scripts/build.mjs leaves them out of the bundle, and scripts/prune-runtime.mjs keeps exactly
// these and what they depend on in the image. A trailing `/*` means every package of a scope.
export const externals = [
  // Native addons: they find their compiled parts relative to their own files.
  'better-sqlite3',
  'serialport',
  '@serialport/*',
  // Optional, native: systemd's notify socket (src/cli/systemd.ts).
  'unix-dgram',
  // Loaded only with storage.postgres (src/store/open.ts): one box never parses it.
  'pg',
  // node-ical's CommonJS files are sloppy-mode code, and an ES module bundle is strict as a
  // whole: there, node-ical's copyDateMeta (`target.tz = source.tz` on a Date whose `tz` it had
  // made read-only) throws "Cannot assign to read only property 'tz'" instead of doing nothing,
  // expandRecurringEvent fails, and every event it expands is lost (a calendar trigger never
  // fired in the built CLI while it did from source). Loaded by Node from node_modules it keeps
  // the semantics its authors tested. node-ical 0.27 fixes this but needs Node 22.
  // test/built-cli.test.ts runs this bundle on such a feed.
  'node-ical',
  // The two schema compilers are never loaded (see src/server/app.ts); keeping them out of the
  // bundle saves parsing 250 kB at every start.
  '@fastify/ajv-compiler',
  '@fastify/fast-json-stringify-compiler',
];
