import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Two cores: files that start processes and bind ports run two at a time at most.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default', './test/support/count-reporter.ts'],
    // End-to-end tests run the built CLI (bin/hearth.js over dist/); this builds it first.
    globalSetup: ['./test/support/build-dist.ts'],
  },
});
