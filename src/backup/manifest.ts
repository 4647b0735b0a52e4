import { z } from 'zod/v3';
import { postgresMigrations } from '../store/postgres/migrations.js';
import { sqliteMigrations } from '../store/sqlite/migrations.js';
import { BACKUP_TABLES, type BackupTable } from '../store/store.js';
import { hearthVersion } from '../version.js';
import { BackupError } from './errors.js';

/**
 * The archive format this hearth writes and the newest it reads. Raise it only for a change an
 * older hearth would get wrong (a new kind of member, another row encoding); it then refuses
 * the archive instead of restoring part of it.
 */
export const ARCHIVE_FORMAT = 1;

/** The member that describes the others; written last (its checksums are known only then). */
export const MANIFEST_MEMBER = 'manifest.json';
/** The secrets file, encrypted (secrets-crypto.ts); only with --include-secrets. */
export const SECRETS_MEMBER = 'secrets.enc';

export const configMember = (name: string) => `config/${name}`;
export const storeMember = (table: BackupTable) => `store/${table}.ndjson`;
export const mediaMember = (name: string) => `media/${name}`;

/** The largest manifest read: a line per media file; a home has hundreds, not hundreds of thousands. */
export const maxManifestBytes = 16 * 1024 * 1024;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const fileEntrySchema = z
  .object({
    path: z.string().min(1),
    size: z.number().int().min(0),
    sha256,
  })
  .strict();
export type FileEntry = z.infer<typeof fileEntrySchema>;

/**
 * Only `format` is read before anything else: a manifest of a newer format may have any other
 * shape, and must be refused for being newer, not for the shape.
 */
const formatOnly = z.object({ format: z.number().int().min(1), hearth: z.string().optional() }).passthrough();

const manifestSchema = z
  .object({
    format: z.literal(ARCHIVE_FORMAT),
    /** The hearth version that wrote it (src/version.ts). */
    hearth: z.string().min(1),
    /** ISO time, UTC. */
    createdAt: z.string().datetime(),
    /** The host name of the box that made it. */
    host: z.string(),
    store: z
      .object({
        kind: z.enum(['sqlite', 'postgres']),
        /** How many schema migrations the store had run (its kind's numbering). */
        schema: z.number().int().min(0),
      })
      .strict(),
    /** The config file's name: the member `config/<name>`, and the file restore writes. */
    config: z.string().min(1),
    /** Rows per table of BACKUP_TABLES. */
    rows: z.record(z.number().int().min(0)),
    /** Every member but the manifest itself. */
    files: z.array(fileEntrySchema),
  })
  .strict();

export type Manifest = z.infer<typeof manifestSchema>;

/** The schema version this hearth's migrations reach for a kind of store. */
export function knownSchema(kind: 'sqlite' | 'postgres'): number {
  return kind === 'sqlite' ? sqliteMigrations.length : postgresMigrations.length;
}

/**
 * Parses and checks manifest.json: its format and store schema are ones this hearth can
 * restore, and it lists exactly the members an archive of that format has. `label` names the
 * archive in messages.
 */
export function parseManifest(text: string, label: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new BackupError(`${label}: manifest.json is not valid JSON; the archive is damaged`);
  }
  const head = formatOnly.safeParse(json);
  if (!head.success) {
    throw new BackupError(`${label}: manifest.json has no archive format number; not a hearth backup`);
  }
  const by = typeof head.data.hearth === 'string' ? `hearth ${head.data.hearth}` : 'a newer hearth';
  if (head.data.format > ARCHIVE_FORMAT) {
    throw new BackupError(
      `${label} was made by ${by} (archive format ${head.data.format}); upgrade hearth to restore it (this is hearth ${hearthVersion}, which reads format ${ARCHIVE_FORMAT})`,
    );
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || 'the top level';
    throw new BackupError(
      `${label}: manifest.json is not valid (${where}: ${issue?.message ?? 'unexpected'}); the archive is damaged`,
    );
  }
  const m = parsed.data;
  const known = knownSchema(m.store.kind);
  if (m.store.schema > known) {
    throw new BackupError(
      `${label} was made by hearth ${m.hearth} with a newer ${m.store.kind} store (schema ${m.store.schema}, this hearth knows ${known}); upgrade hearth to restore it`,
    );
  }
  const tables = Object.keys(m.rows);
  for (const t of tables) {
    if (!(BACKUP_TABLES as readonly string[]).includes(t)) {
      throw new BackupError(`${label}: manifest.json counts rows of an unknown table "${t}"`);
    }
  }
  return m;
}

/** Serialises a manifest: stable key order, one line per file entry, so a person can read it. */
export function formatManifest(m: Manifest): string {
  const files = m.files.map((f) => `    ${JSON.stringify({ path: f.path, size: f.size, sha256: f.sha256 })}`);
  const head = JSON.stringify(
    {
      format: m.format,
      hearth: m.hearth,
      createdAt: m.createdAt,
      host: m.host,
      store: m.store,
      config: m.config,
      rows: m.rows,
    },
    null,
    2,
  );
  return `${head.slice(0, -2)},\n  "files": [\n${files.join(',\n')}\n  ]\n}\n`;
}

/**
 * What kind of member a path is, by the archive's layout; undefined for a path no hearth
 * archive of this format has.
 */
export type MemberKind =
  | { kind: 'manifest' }
  | { kind: 'config'; name: string }
  | { kind: 'store'; table: BackupTable }
  | { kind: 'media'; name: string }
  | { kind: 'secrets' };

export function classifyMember(path: string, isPlainName: (name: string) => boolean): MemberKind | undefined {
  if (path === MANIFEST_MEMBER) return { kind: 'manifest' };
  if (path === SECRETS_MEMBER) return { kind: 'secrets' };
  const slash = path.indexOf('/');
  if (slash < 0) return undefined;
  const dir = path.slice(0, slash);
  const name = path.slice(slash + 1);
  if (!isPlainName(name)) return undefined;
  if (dir === 'config') return { kind: 'config', name };
  if (dir === 'media') return { kind: 'media', name };
  if (dir === 'store') {
    const table = BACKUP_TABLES.find((t) => storeMember(t) === path);
    return table === undefined ? undefined : { kind: 'store', table };
  }
  return undefined;
}
