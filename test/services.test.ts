import { describe, expect, it } from 'vitest';
import { freePort } from './support/mosquitto.js';
import { postgresProblem } from './support/postgres.js';
import { missing, requiredServices } from './support/services.js';

// A service the tests need and cannot find: skipped with the reason said, where nothing requires
// it; a failure where the run requires it (HEARTH_TEST_REQUIRE, or CI), as .ci/run does.
describe('test/support/services.ts', () => {
  const inTests = { VITEST: 'true' };

  it('reads HEARTH_TEST_REQUIRE, and CI as all of them unless it says otherwise', () => {
    expect([...requiredServices({})]).toEqual([]);
    expect([...requiredServices({ HEARTH_TEST_REQUIRE: 'postgres, mosquitto' })]).toEqual([
      'postgres',
      'mosquitto',
    ]);
    expect([...requiredServices({ CI: 'true' })]).toEqual(['postgres', 'mosquitto', 'chromium']);
    expect([...requiredServices({ CI: '1', HEARTH_TEST_REQUIRE: 'none' })]).toEqual([]);
    expect([...requiredServices({ HEARTH_TEST_REQUIRE: 'all' })]).toHaveLength(3);
    expect(() => requiredServices({ HEARTH_TEST_REQUIRE: 'postgress' })).toThrow(
      'HEARTH_TEST_REQUIRE=postgress: "postgress" is not a service; name some of postgres, mosquitto, chromium, or all, or none',
    );
  });

  it('skips a missing service, saying why, unless the run requires it', () => {
    expect(missing('postgres', undefined, { ...inTests, CI: 'true' })).toBeUndefined();
    expect(missing('postgres', 'nothing on 127.0.0.1:5432', inTests)).toBe('nothing on 127.0.0.1:5432');
    expect(() =>
      missing('postgres', 'nothing on 127.0.0.1:5432', { ...inTests, HEARTH_TEST_REQUIRE: 'postgres' }),
    ).toThrow(
      'postgres is required in this run (HEARTH_TEST_REQUIRE=postgres), and nothing on 127.0.0.1:5432',
    );
    expect(() => missing('chromium', '/usr/bin/chromium is missing', { ...inTests, CI: '1' })).toThrow(
      'chromium is required in this run (CI=1), and /usr/bin/chromium is missing',
    );
    // The benchmarks use the same support outside a test run: they only hear the reason.
    expect(missing('mosquitto', 'not installed', { HEARTH_TEST_REQUIRE: 'all' })).toBe('not installed');
  });

  it('tells why a PostgreSQL cannot be used: nobody listening, named by host and port only', async () => {
    const port = await freePort();
    const why = await postgresProblem(`postgres://postgres:pw-never-shown@127.0.0.1:${port}/postgres`);
    expect(why).toBe(
      `cannot reach PostgreSQL at 127.0.0.1:${port}/postgres (ECONNREFUSED): start it, or point HEARTH_TEST_PG_URL at one (.ci/run installs and starts it)`,
    );
  });
});
