// A process that reads from a PostgreSQL store as fast as it can, its event loop busy between
// rounds, while the test cuts its connections: a crash (an 'error' event nobody listens to) ends
// it with a non-zero exit and the error on stderr. Prints how many reads went through.
// Usage: node --import tsx test/support/pg-cut-storm.ts <url> <ms>
import { openStore } from '../../src/store/open.js';

const [url, ms] = process.argv.slice(2);
if (!url || !ms) {
  console.error('usage: pg-cut-storm.ts <url> <ms>');
  process.exit(2);
}
const store = await openStore({ postgres: { url } });
console.log('up');
let ok = 0;
let failed = 0;
const end = performance.now() + Number(ms);
while (performance.now() < end) {
  const reads = [0, 1, 2, 3].map((i) =>
    store.states.get(`storm${i}`).then(
      () => ok++,
      () => failed++,
    ),
  );
  await new Promise((r) => setTimeout(r, Math.random() * 3));
  // Busy, as a loaded box is: what the database sends meanwhile arrives in one read, so a fresh
  // connection's "ready" and the cut that follows it are handled together.
  const busyUntil = performance.now() + Math.random() * 10;
  while (performance.now() < busyUntil);
  await Promise.all(reads);
}
await store.close();
console.log(JSON.stringify({ ok, failed }));
