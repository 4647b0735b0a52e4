/**
 * The real services some tests need: PostgreSQL, Mosquitto, Debian's chromium. Where one is
 * missing, the tests that need it are skipped and the run says why; where HEARTH_TEST_REQUIRE
 * names it, a missing service fails the test file instead, so a run that must test everything
 * (CI: `.ci/run` sets `postgres,mosquitto,chromium`) can never pass by skipping.
 *
 * HEARTH_TEST_REQUIRE: a comma-separated list of services, `all` or `none`. Unset, it is `all`
 * when CI is set (CI=true or CI=1, as CI systems set it) and `none` otherwise.
 */

export const SERVICES = ['postgres', 'mosquitto', 'chromium'] as const;
export type Service = (typeof SERVICES)[number];

/** The services a missing one of fails the run, from HEARTH_TEST_REQUIRE (and CI). */
export function requiredServices(env: NodeJS.ProcessEnv = process.env): ReadonlySet<Service> {
  const ci = env.CI === 'true' || env.CI === '1';
  const raw = (env.HEARTH_TEST_REQUIRE ?? (ci ? 'all' : 'none')).trim();
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const out = new Set<Service>();
  for (const name of names) {
    if (name === 'all') for (const s of SERVICES) out.add(s);
    else if (name === 'none') continue;
    else if ((SERVICES as readonly string[]).includes(name)) out.add(name as Service);
    else {
      throw new Error(
        `HEARTH_TEST_REQUIRE=${raw}: "${name}" is not a service; name some of ${SERVICES.join(', ')}, or all, or none`,
      );
    }
  }
  return out;
}

/**
 * `why` is what keeps `service` from being used here, or undefined when it can be. Returns it, for
 * `describe.skipIf(...)`, once it has said that the tests needing it are skipped and why; throws
 * when the service is required (HEARTH_TEST_REQUIRE), which fails the file that imported it.
 * Outside a test run (the benchmarks import the same support) it only returns `why`.
 */
export function missing(
  service: Service,
  why: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (why === undefined || !env.VITEST) return why;
  if (requiredServices(env).has(service)) {
    const by =
      env.HEARTH_TEST_REQUIRE === undefined
        ? `CI=${env.CI}`
        : `HEARTH_TEST_REQUIRE=${env.HEARTH_TEST_REQUIRE}`;
    throw new Error(`${service} is required in this run (${by}), and ${why}`);
  }
  console.warn(`skipping the tests that need ${service}: ${why}`);
  return why;
}
