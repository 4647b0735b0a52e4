/**
 * The `automations:` entries are a section of the config: their schema is
 * src/config/sections/automations.ts. This name stays for src/cluster/controller.ts until that
 * file imports from there.
 */
export type { AutomationConfig } from '../config/sections/automations.js';
