/**
 * `backup:` is a section of the config: its schema is src/config/sections/backup.ts. This name
 * stays for src/cluster/controller.ts until that file imports from there.
 */
export type { BackupConfig } from '../config/sections/backup.js';
