import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: where examples/ lives, whether run from src/ (tsx) or dist/. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const demoConfigPath = join(packageRoot, 'examples', 'demo.yaml');

/** --config, else $HEARTH_CONFIG, else ./hearth.yaml. */
export function configPath(option: string | undefined): string {
  return option ?? process.env.HEARTH_CONFIG ?? 'hearth.yaml';
}

export function exists(path: string): boolean {
  return existsSync(path);
}
