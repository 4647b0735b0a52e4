import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isMap, isSeq, parseDocument, YAMLSeq } from 'yaml';
import { z } from 'zod/v3';
import { describeIssue, formatPath } from '../config/errors.js';
import { reasonOf } from '../core/errors.js';
import { configPath, exists } from './config-path.js';

/** One entry of the homeslice project's switches.json. */
const homesliceSwitch = z.object({
  id: z.string(),
  kind: z.string(),
  name: z.string().optional(),
  address: z.string(),
  port: z.number().int().optional(),
});

export function registerImport(program: Command): void {
  const imp = program.command('import').description('bring an existing installation over');
  imp
    .command('homeslice')
    .description('add the switches of a homeslice switches.json to the config (comments and order are kept)')
    .argument('<switches.json>', "the homeslice lightswitch service's config")
    .option('-c, --config <file>', 'config file to update (created if missing)')
    .option('--dry-run', 'print the resulting config instead of writing it')
    .action((file: string, opts: { config?: string; dryRun?: boolean }) => {
      let entries: z.infer<typeof homesliceSwitch>[];
      try {
        entries = z.array(homesliceSwitch).parse(JSON.parse(readFileSync(file, 'utf8')));
      } catch (err) {
        const reason =
          err instanceof z.ZodError
            ? err.issues
                .map((i) => `${formatPath(i.path) || 'the top level'}: ${describeIssue(i)}`)
                .join('; ')
            : reasonOf(err);
        console.error(`hearth import: ${file} is not a homeslice switches.json (${reason})`);
        process.exitCode = 1;
        return;
      }
      const target = configPath(opts.config);
      const doc = parseDocument(exists(target) ? readFileSync(target, 'utf8') : '');
      if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
      let list = doc.get('switches', true);
      if (!isSeq(list)) {
        list = new YAMLSeq();
        doc.set('switches', list);
      }
      const seq = list as YAMLSeq;
      // Ids must be unique across switches and buttons, and within the file being imported.
      const buttons = doc.get('buttons', true);
      const have = new Set(
        [...seq.items, ...(isSeq(buttons) ? buttons.items : [])].map((i) =>
          isMap(i) ? String(i.get('id')) : '',
        ),
      );
      let added = 0;
      for (const e of entries) {
        if (have.has(e.id)) {
          console.error(
            `skipped ${e.id}: an entity with that id is already in ${target} or earlier in ${file}`,
          );
          continue;
        }
        have.add(e.id);
        const entry: Record<string, unknown> = {
          id: e.id,
          kind: e.kind,
          name: e.name ?? e.id,
          address: e.address,
        };
        if (e.port !== undefined && e.port !== 0) entry.port = e.port;
        const node = doc.createNode(entry);
        node.flow = true;
        seq.items.push(node);
        added++;
      }
      const out = doc.toString();
      if (opts.dryRun) {
        process.stdout.write(out);
        return;
      }
      writeFileSync(target, out);
      console.log(
        `added ${added} switch(es) to ${target}; run \`hearth check --config ${target}\` to validate it`,
      );
    });
}
