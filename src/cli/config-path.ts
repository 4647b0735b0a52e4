import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root, where examples/ lives: run from src/cli (tsx) or from the dist/ bundle. */
export const packageRoot = findRoot(dirname(fileURLToPath(import.meta.url)));

function findRoot(from: string): string {
  let dir = from;
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = resolve(dir, '..');
  }
  return resolve(from, '..', '..');
}

export const demoConfigPath = join(packageRoot, 'examples', 'demo.yaml');

/** --config, else $HEARTH_CONFIG, else ./hearth.yaml. */
export function configPath(option: string | undefined): string {
  return option ?? process.env.HEARTH_CONFIG ?? 'hearth.yaml';
}

export function exists(path: string): boolean {
  return existsSync(path);
}
