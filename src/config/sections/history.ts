import { z } from 'zod/v3';
import { durationSchema } from '../duration.js';

const DAY = 86_400_000;

/**
 * `history:`: what the recorder keeps and for how long. Numbers are kept raw for `raw`, then as
 * buckets of `step` (min, mean, max, count) until `downsampled`; text (on/off, open/closed) is
 * kept as its changes until `downsampled`. Rows are written every `flush`, or as soon as `batch`
 * are waiting; at most `buffer` wait (a flood drops the oldest, counted).
 */
export const historySchema = z
  .object({
    enabled: z.boolean().default(true),
    raw: durationSchema.default('7d'),
    downsampled: durationSchema.default('365d'),
    step: durationSchema.default('5m'),
    flush: durationSchema.default('60s'),
    batch: z.number().int().min(1).max(100_000).default(1000),
    buffer: z.number().int().min(1).max(1_000_000).default(50_000),
    /** Entity ids never recorded. */
    exclude: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.step > DAY) ctx.addIssue({ code: 'custom', path: ['step'], message: 'must be at most 1d' });
    if (h.step > h.raw)
      ctx.addIssue({ code: 'custom', path: ['step'], message: 'must not be longer than `raw`' });
    if (h.downsampled < h.raw)
      ctx.addIssue({ code: 'custom', path: ['downsampled'], message: 'must not be shorter than `raw`' });
    if (h.flush > 3_600_000) ctx.addIssue({ code: 'custom', path: ['flush'], message: 'must be at most 1h' });
  })
  .default({});

export type HistoryConfig = z.output<typeof historySchema>;
