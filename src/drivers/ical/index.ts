/**
 * The iCal driver: one feed (a `calendars:` entry; `kind: ical/v1` is the default there) becomes
 * one `calendar` entity, `on` while one of its events is in progress, firing `start` and `end`
 * at each occurrence's instants for calendar triggers of automations. Reading and expanding the
 * feed is feed.ts; polling and timing is calendar.ts; setup.ts starts one. The entry's schema
 * is config.ts.
 */
import type { Driver } from '../../core/driver.js';
import { type IcalConfig, icalConfigSchema } from './config.js';

/** iCal feeds (`kind: ical/v1`), one `calendar` entity each. */
export const icalDriver: Driver<IcalConfig> = {
  name: 'ical',
  configKinds: ['ical/v1'],
  section: 'calendars',
  configSchema: icalConfigSchema,
  entities: (c) => [{ id: c.id, kind: 'calendar', name: c.name, timeoutMs: c.timeoutMs }],

  // calendar.ts and feed.ts bring node-ical and its Temporal polyfills (≈ 350 kB): only a
  // config with a calendar loads them.
  setup: async (ctx, config) => (await import('./setup.js')).setupIcal(ctx, config),
};

export { type IcalConfig, icalConfigSchema } from './config.js';
