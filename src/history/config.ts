/**
 * `history:` is a section of the config: its schema is src/config/sections/history.ts. This name
 * stays for src/cluster/controller.ts until that file imports from there.
 */
export type { HistoryConfig } from '../config/sections/history.js';
