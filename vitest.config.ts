import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Backstops, not product promises (docs/testing.md): a test or hook that hangs fails with a
    // message instead of holding the run. expect.poll's 1 s default is short for a loaded two-core
    // machine; a poll that must be fast says so with an assertion of its own, measured from the event.
    testTimeout: 20_000,
    hookTimeout: 30_000,
    expect: { poll: { timeout: 10_000 } },
    // Two cores: files that start processes and bind ports run two at a time at most.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default', './test/support/count-reporter.ts'],
    // End-to-end tests run the built CLI (bin/hearth.js over dist/); this builds it first.
    globalSetup: ['./test/support/build-dist.ts'],
  },
});
