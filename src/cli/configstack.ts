import { hostname } from 'node:os';
import type { Command } from 'commander';
import type { StackOptions } from './configstack-run.js';

const configOption = [
  '-c, --config <file>',
  'config file (default: $HEARTH_CONFIG or ./hearth.yaml)',
] as const;
const holderOption = [
  '--holder <name>',
  "who claims: one name per replica, e.g. $HOSTNAME (a pod's name); default this machine's host name",
] as const;
const ttlOption = [
  '--ttl <seconds>',
  'the claim runs out this long after the last claim or renewal unless renewed (1-86400)',
  '60',
] as const;

/**
 * `hearth configstack ...`: per-replica configs. The work is in ./configstack-run.ts, imported
 * only when one of these commands runs, so `hearth start` never parses it.
 */
export function registerConfigstack(program: Command): void {
  const cmd = program
    .command('configstack')
    .description('per-replica configs: each replica claims one entry of a `configstacks:` list');
  cmd
    .command('claim')
    .description(
      'claim an entry of the stack NAME for --holder (the same one again after a restart) and write it as YAML to --out; exit 3 when every entry is held',
    )
    .argument('<name>', 'the stack, a key under configstacks:')
    .requiredOption('-o, --out <file>', 'where to write the claimed entry (replaced atomically)')
    .option(...configOption)
    .option(holderOption[0], holderOption[1], hostname())
    .option(...ttlOption)
    .action(async (name: string, opts: StackOptions) =>
      (await import('./configstack-run.js')).claim(name, opts),
    );
  cmd
    .command('hold')
    .description(
      "keep --holder's claim on the stack NAME alive (renewing every third of --ttl) until SIGTERM, then release it; exit 4 if the claim is lost",
    )
    .argument('<name>', 'the stack, a key under configstacks:')
    .option(...configOption)
    .option(holderOption[0], holderOption[1], hostname())
    .option(...ttlOption)
    .action(async (name: string, opts: StackOptions) =>
      (await import('./configstack-run.js')).hold(name, opts),
    );
  cmd
    .command('release')
    .description("give --holder's entry of the stack NAME back at once")
    .argument('<name>', 'the stack, a key under configstacks:')
    .option(...configOption)
    .option(holderOption[0], holderOption[1], hostname())
    .action(async (name: string, opts: StackOptions) =>
      (await import('./configstack-run.js')).release(name, opts),
    );
  cmd
    .command('list')
    .description('print who holds which entry of the stack NAME')
    .argument('<name>', 'the stack, a key under configstacks:')
    .option(...configOption)
    .option('--json', 'print JSON instead of a table')
    .action(async (name: string, opts: Omit<StackOptions, 'holder' | 'ttl'>) =>
      (await import('./configstack-run.js')).list(name, opts),
    );
}
