import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { type Document, isMap, isSeq, parseDocument, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { z } from 'zod/v3';
import { describeIssue, formatPath } from '../config/errors.js';
import { reasonOf } from '../core/errors.js';
import { readSmallFile } from '../core/read-file.js';
import { drivers } from '../drivers/index.js';
import { configPath, exists } from './config-path.js';

/**
 * One entry of the homeslice project's switches.json. Only id and kind are common to every
 * entry: a kind hearth has no driver for (homeslice's Lutron branch) has fields of its own.
 */
const homesliceEntry = z
  .object({
    id: z.string().min(1),
    kind: z.string().min(1),
  })
  .passthrough();

/** The fields of a plug entry (wemo/v1, kasa/v1) that hearth takes over. */
const plugEntry = z.object({
  id: z.string(),
  kind: z.string(),
  name: z.string().optional(),
  address: z.string(),
  port: z.number().int().optional(),
});

type Entry = z.infer<typeof homesliceEntry>;

/**
 * homeslice kept real addresses in a secrets module and wrote `{{Living Room Torch}}` in the
 * JSON; such an address becomes `!secret living_room_torch`.
 */
const placeholder = /^\{\{\s*(.*?)\s*\}\}$/;

const secretTag = { tag: '!secret', resolve: (value: string) => value };

export function registerImport(program: Command): void {
  const imp = program.command('import').description('bring an existing installation over');
  imp
    .command('homeslice')
    .description('add the switches of a homeslice switches.json to the config (comments and order are kept)')
    .argument('<switches.json>', "the homeslice lightswitch service's config")
    .option('-c, --config <file>', 'config file to update (created if missing)')
    .option('--dry-run', 'print the resulting config instead of writing it')
    .action((file: string, opts: { config?: string; dryRun?: boolean }) => {
      const fail = (message: string) => {
        console.error(`hearth import: ${message}`);
        process.exitCode = 1;
      };
      let entries: Entry[];
      try {
        entries = z.array(homesliceEntry).parse(JSON.parse(readSmallFile(file)));
      } catch (err) {
        return fail(`${file} is not a homeslice switches.json (${reasonOfJson(err)})`);
      }

      const target = configPath(opts.config);
      let doc: Document;
      try {
        doc = parseDocument(exists(target) ? readSmallFile(target) : '', { customTags: [secretTag] });
      } catch (err) {
        return fail(`cannot read ${target} (${reasonOf(err)}); nothing was changed`);
      }
      if (doc.errors.length > 0) {
        return fail(
          `${target} is not valid YAML; run \`hearth check --config ${target}\`, fix it, then import again`,
        );
      }
      if (doc.contents !== null && !isMap(doc.contents)) {
        return fail(`${target} is not a mapping of settings; nothing was changed`);
      }
      const result = addSwitches(doc, entries, target, file);
      for (const line of result.notes) console.error(line);

      const out = doc.toString();
      if (opts.dryRun) {
        process.stdout.write(out);
        return;
      }
      writeFileSync(target, out);
      console.log(
        `added ${result.added} switch(es) to ${target}; run \`hearth check --config ${target}\` to validate it`,
      );
    });
}

interface Added {
  added: number;
  /** What the user must know: skipped entries, dropped fields, secrets to add. */
  notes: string[];
}

/** Appends the entries hearth can run to `switches:` as block YAML; the rest is named in notes. */
function addSwitches(doc: Document, entries: Entry[], target: string, source: string): Added {
  const fresh = !isMap(doc.contents);
  const top: YAMLMap = isMap(doc.contents) ? doc.contents : new YAMLMap();
  doc.contents = top;
  const found: unknown = top.get('switches', true);
  let seq: YAMLSeq;
  if (isSeq(found)) seq = found;
  else {
    seq = new YAMLSeq();
    top.set('switches', seq);
  }
  // `switches: []` is a flow sequence; block entries inside it would print as mis-indented flow.
  seq.flow = false;

  const known = drivers.filter((d) => d.section === 'switches').flatMap((d) => d.configKinds);
  const buttons = top.get('buttons', true);
  // Ids must be unique across switches and buttons, and within the file being imported.
  const have = new Set(
    [...seq.items, ...(isSeq(buttons) ? buttons.items : [])].map((i) =>
      isMap(i) ? String(i.get('id')) : '',
    ),
  );
  const notes: string[] = [];
  const unknownKinds: Array<{ id: string; kind: string; fields: string[] }> = [];
  const secrets = new Map<string, string>();
  let added = 0;

  for (const e of entries) {
    if (!known.includes(e.kind)) {
      const fields = Object.keys(e).filter((k) => !['id', 'kind', 'name'].includes(k));
      unknownKinds.push({ id: e.id, kind: e.kind, fields });
      continue;
    }
    const plug = plugEntry.safeParse(e);
    if (!plug.success) {
      const why = plug.error.issues.map((i) => `${formatPath(i.path)}: ${describeIssue(i)}`).join('; ');
      notes.push(`skipped ${e.id}: ${why} (in ${source})`);
      continue;
    }
    const p = plug.data;
    if (have.has(p.id)) {
      notes.push(`skipped ${p.id}: an entity with that id is already in ${target} or earlier in ${source}`);
      continue;
    }
    have.add(p.id);
    const extra = Object.keys(e).filter((k) => !['id', 'kind', 'name', 'address', 'port'].includes(k));
    if (extra.length > 0)
      notes.push(`${p.id}: dropped ${extra.join(', ')} (hearth's ${p.kind} has no such field)`);

    const entry = new YAMLMap();
    entry.set('id', p.id);
    entry.set('kind', p.kind);
    entry.set('name', p.name ?? p.id);
    const ph = placeholder.exec(p.address);
    if (ph) {
      const name = secretName(ph[1] ?? '', p.id);
      const ref = new Scalar(name);
      ref.tag = '!secret';
      entry.set('address', ref);
      secrets.set(name, ph[1] || p.id);
    } else {
      entry.set('address', p.address);
    }
    if (p.port !== undefined && p.port !== 0) entry.set('port', p.port);
    seq.items.push(entry);
    added++;
  }

  const secretsSetting = top.get('secrets');
  let addedSecretsKey = false;
  if (secrets.size > 0 && typeof secretsSetting !== 'string') {
    // First in a new file, where a reader meets it before any !secret; last in an existing one,
    // so it does not slip between a comment and the key the comment is about.
    const pair = doc.createPair('secrets', 'secrets.yaml');
    if (fresh) top.items.unshift(pair);
    else top.items.push(pair);
    addedSecretsKey = true;
  }
  const secretsFile = resolve(
    dirname(resolve(target)),
    typeof secretsSetting === 'string' ? secretsSetting : 'secrets.yaml',
  );

  if (unknownKinds.length > 0) {
    notes.push(
      `skipped ${unknownKinds.length} switch(es) of a kind hearth has no driver for (hearth knows ${known.join(', ')}); not imported:`,
      ...unknownKinds.map(
        (u) => `  ${u.id} (${u.kind}${u.fields.length > 0 ? `, with ${u.fields.join(', ')}` : ''})`,
      ),
    );
  }
  const missing = [...secrets].filter(([name]) => !hasSecret(secretsFile, name));
  if (secrets.size > 0) {
    notes.push(
      `${secrets.size} address(es) were homeslice placeholders ({{...}}); they are now \`!secret name\` references${addedSecretsKey ? `; the config gets \`secrets: secrets.yaml\`` : ''}`,
    );
  }
  if (missing.length > 0) {
    notes.push(
      `add the real addresses to ${secretsFile} (keep it out of git), then run \`hearth check --config ${target}\`:`,
      ...missing.map(([name, label]) => `  ${name}: <address of ${label}>`),
    );
  }
  return { added, notes };
}

/** `Living Room Torch` → `living_room_torch`; a name of only symbols falls back to the id. */
function secretName(label: string, id: string): string {
  const slug = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '');
  return slug(label) || `${slug(id) || 'switch'}_address`;
}

/** Whether the secrets file already defines `name`; its values are never read out. */
function hasSecret(file: string, name: string): boolean {
  try {
    const doc = parseDocument(readSmallFile(file), { schema: 'failsafe' });
    return isMap(doc.contents) && doc.contents.has(name);
  } catch {
    return false;
  }
}

function reasonOfJson(err: unknown): string {
  if (err instanceof z.ZodError) {
    return err.issues.map((i) => `${formatPath(i.path) || 'the top level'}: ${describeIssue(i)}`).join('; ');
  }
  return reasonOf(err);
}
