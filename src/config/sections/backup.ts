import { z } from 'zod/v3';
import { cronExpression } from './automations.js';

/** Archives kept at most by `keep:`; a home's backups fit in far fewer. */
export const maxKeep = 1000;

/**
 * `backup:`: where `hearth backup` writes its archives, and the schedule that runs it inside
 * hearth (the controller leader in a cluster). See docs/backups.md.
 */
export const backupSchema = z
  .object({
    /** The folder of the archives, relative to the config file's folder. */
    dir: z.string().min(1).default('backups'),
    /** A cron expression in `timezone:`, e.g. "0 3 * * *" (03:00 daily). Left out: no scheduled backups. */
    every: cronExpression.optional(),
    /** How many scheduled archives are kept in `dir`; older ones are deleted after a success. */
    keep: z.number().int().min(1).max(maxKeep).default(14),
    /** Also put the secrets file in scheduled archives, encrypted with $HEARTH_BACKUP_PASSPHRASE. */
    includeSecrets: z.boolean().default(false),
  })
  .strict()
  .default({});

export type BackupConfig = z.output<typeof backupSchema>;
