import { existsSync } from 'node:fs';
import { missing } from './services.js';

/** Debian's chromium, which the browser tests and the dashboard bench drive with playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';

/** The machine has no network: nothing in the browser may try to reach it. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Why the browser tests are skipped, or undefined when they can run; where the run requires
 * chromium (HEARTH_TEST_REQUIRE, CI), importing this fails instead (services.ts).
 */
export const chromiumMissing = missing(
  'chromium',
  existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium; .ci/run does it)`,
);
