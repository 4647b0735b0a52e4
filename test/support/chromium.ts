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
