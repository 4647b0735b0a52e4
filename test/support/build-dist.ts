import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * vitest globalSetup: builds dist/ from the current sources once, before any test file runs.
 * The end-to-end tests start the built CLI (`node bin/hearth.js`, as users and systemd do), so
 * a fault that only bundling brings in fails a test; and a stale dist/ from an older checkout
 * can never be what is tested.
 */
export default async function buildDist(): Promise<void> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  try {
    await promisify(execFile)(process.execPath, ['scripts/build.mjs'], { cwd: root, timeout: 120_000 });
  } catch (err) {
    const { stderr, message } = err as { stderr?: string; message: string };
    throw new Error(`the tests need dist/, and \`node scripts/build.mjs\` failed: ${stderr || message}`);
  }
}
