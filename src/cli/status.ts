import type { Command } from 'commander';
import { asConfigError } from '../config/errors.js';
import { loadConfigFile } from '../config/load.js';
import { reasonOf } from '../core/errors.js';
import { drivers } from '../drivers/index.js';
import { openStore } from '../store/open.js';
import { configPath } from './config-path.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      "print the cluster's members and who leads what, from the shared store (the same as GET /api/v1/cluster)",
    )
    .option('-c, --config <file>', 'config file (default: $HEARTH_CONFIG or ./hearth.yaml)')
    .option('--json', 'print JSON instead of tables')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const path = configPath(opts.config);
      let config: ReturnType<typeof loadConfigFile>;
      try {
        config = loadConfigFile(path, { drivers });
      } catch (caught) {
        console.error(asConfigError(caught, path).message);
        process.exitCode = 1;
        return;
      }
      if (!('postgres' in config.storage)) {
        console.log(
          `${path}: one box (storage.sqlite): one process runs every role, there are no leases. GET /api/v1/cluster on it says the same.`,
        );
        return;
      }
      try {
        const store = await openStore(config.storage);
        try {
          const [members, leases] = await Promise.all([store.members.list(), store.leases.list()]);
          if (opts.json) {
            console.log(JSON.stringify({ members, leases }, null, 2));
            return;
          }
          const ago = (ms: number) => (ms < 1000 ? 'now' : `${Math.round(ms / 1000)} s ago`);
          console.log(
            table(
              ['member', 'role', 'agent', 'host', 'pid', 'started', 'last seen'],
              members.map((m) => [
                m.id,
                m.role,
                m.agent ?? '',
                m.host,
                String(m.pid),
                new Date(m.startedAt).toISOString(),
                ago(m.silentMs),
              ]),
            ),
          );
          console.log();
          console.log(
            table(
              ['lease', 'holder', 'token', 'held', 'expires'],
              leases.map((l) => [
                l.name,
                l.holder,
                String(l.token),
                l.held ? 'yes' : 'no',
                new Date(l.expiresAt).toISOString(),
              ]),
            ),
          );
        } finally {
          await store.close();
        }
      } catch (err) {
        console.error(`hearth status: ${reasonOf(err)}`);
        process.exitCode = 1;
      }
    });
}

function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) return `${head.join('  ')}\n(none)`;
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
