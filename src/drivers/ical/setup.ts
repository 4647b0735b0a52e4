import { resolve } from 'node:path';
import type { DriverContext, Running } from '../../core/driver.js';
import { CalendarEntity } from './calendar.js';
import type { IcalConfig } from './config.js';

export async function setupIcal(ctx: DriverContext, config: IcalConfig): Promise<Running> {
  const calendar = new CalendarEntity(ctx, {
    id: config.id,
    name: config.name,
    source: config.url !== undefined ? { url: config.url } : { file: resolve(config.file ?? '') },
    pollMs: config.pollSeconds * 1000,
    lookaheadMs: config.lookaheadDays * 86_400_000,
    timeoutMs: config.timeoutMs,
    timeZone: ctx.timezone ?? 'UTC',
  });
  calendar.start();
  return { stop: () => calendar.stop() };
}
