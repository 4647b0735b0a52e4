import { stat } from 'node:fs/promises';
import { maxFileBytes } from '../core/read-file.js';
import { isPlainFileName } from '../media/library.js';
import { BACKUP_TABLES } from '../store/store.js';
import { digest, type ReadArchiveOptions, readArchive } from './archive.js';
import { BackupError } from './errors.js';
import {
  classifyMember,
  configMember,
  type FileEntry,
  MANIFEST_MEMBER,
  type Manifest,
  maxManifestBytes,
  parseManifest,
  SECRETS_MEMBER,
  storeMember,
} from './manifest.js';

/** secrets.enc holds at most the 1 MB secrets file, base64 (4/3) and a little JSON around it. */
const maxSealedBytes = 2 * maxFileBytes;

/** An archive that passed every check. */
export interface Verified {
  manifest: Manifest;
  /** The archive's size in bytes. */
  bytes: number;
  /** The config file's bytes (small: at most 1 MB). */
  config: Buffer;
  /** secrets.enc, still encrypted; undefined when the archive has none. */
  sealedSecrets: Buffer | undefined;
  mediaFiles: number;
}

interface Seen {
  size: number;
  sha256: string;
  lines: number;
}

/**
 * Reads the whole archive and checks it against its manifest: the gzip and tar framing, the
 * manifest's format and store schema (newer ones are refused with what to do), and that every
 * member the manifest lists is there with its size and SHA-256, with nothing else beside it.
 * Nothing is written anywhere. `label` names the archive in messages (the path as given);
 * `opts.maxUnpacked` caps what it may unpack to (readArchive).
 */
export async function verifyArchive(
  path: string,
  label = path,
  opts: ReadArchiveOptions = {},
): Promise<Verified> {
  let bytes: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new BackupError(`${label} is not a file`);
    bytes = st.size;
  } catch (err) {
    if (err instanceof BackupError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new BackupError(code === 'ENOENT' ? `${label} does not exist` : `cannot read ${label} (${code})`);
  }
  if (bytes === 0) throw new BackupError(`${label} is empty (0 bytes): not a hearth backup`);

  const seen = new Map<string, Seen>();
  const problems: string[] = [];
  let manifestText: string | undefined;
  let config: Buffer | undefined;
  let sealedSecrets: Buffer | undefined;

  await readArchive(
    path,
    label,
    async (entry) => {
      if (entry.type !== 'file') {
        problems.push(`${entry.path} is a ${entry.type}, not a file; hearth archives hold files only`);
        await digest(entry.stream);
        return;
      }
      if (seen.has(entry.path)) problems.push(`${entry.path} is in the archive twice`);
      const kind = classifyMember(entry.path, isPlainFileName);
      let kept: Buffer | undefined;
      const keep = kind?.kind === 'manifest' || kind?.kind === 'config' || kind?.kind === 'secrets';
      const limit =
        kind?.kind === 'manifest'
          ? maxManifestBytes
          : kind?.kind === 'secrets'
            ? maxSealedBytes
            : maxFileBytes;
      if (keep && entry.size > limit) {
        problems.push(`${entry.path} is ${entry.size} bytes, more than a hearth archive ever has`);
      }
      const parts: Buffer[] = [];
      const d = await digest(
        entry.stream,
        keep && entry.size <= limit ? (c) => void parts.push(c) : undefined,
      );
      if (keep && entry.size <= limit) kept = Buffer.concat(parts);
      seen.set(entry.path, d);
      if (kind === undefined) return;
      if (kind.kind === 'manifest') manifestText = kept?.toString('utf8');
      else if (kind.kind === 'config') config = kept;
      else if (kind.kind === 'secrets') sealedSecrets = kept;
    },
    opts,
  );

  if (manifestText === undefined) {
    throw new BackupError(
      seen.has(MANIFEST_MEMBER)
        ? `${label}: manifest.json is too large; not a hearth backup`
        : `${label} has no manifest.json: it is not a hearth backup, or it was cut short`,
    );
  }
  // Format first: a newer archive is refused for being newer, whatever else it holds.
  const manifest = parseManifest(manifestText, label);

  const listed = new Map<string, FileEntry>();
  for (const f of manifest.files) {
    if (listed.has(f.path)) problems.push(`manifest.json lists ${f.path} twice`);
    listed.set(f.path, f);
  }
  for (const [member, got] of seen) {
    if (member === MANIFEST_MEMBER) continue;
    const want = listed.get(member);
    if (classifyMember(member, isPlainFileName) === undefined) {
      problems.push(`${member} is not a member a hearth archive has`);
    } else if (want === undefined) {
      problems.push(`${member} is in the archive but not in manifest.json`);
    } else if (got.size !== want.size) {
      problems.push(`${member} is ${got.size} bytes; manifest.json says ${want.size}`);
    } else if (got.sha256 !== want.sha256) {
      problems.push(`${member} does not match its SHA-256 in manifest.json (its bytes changed)`);
    }
  }
  for (const f of manifest.files) {
    if (!seen.has(f.path)) problems.push(`${f.path} is missing (manifest.json lists it)`);
    else if (classifyMember(f.path, isPlainFileName) === undefined) {
      problems.push(`manifest.json lists ${f.path}, which is not a member a hearth archive has`);
    }
  }
  const configPath = configMember(manifest.config);
  if (!isPlainFileName(manifest.config)) {
    problems.push(`manifest.json names the config ${JSON.stringify(manifest.config)}, not a plain file name`);
  } else if (!listed.has(configPath)) {
    problems.push(`manifest.json does not list the config ${configPath}`);
  }
  for (const member of seen.keys()) {
    const k = classifyMember(member, isPlainFileName);
    if (k?.kind === 'config' && member !== configPath) problems.push(`${member} is a second config file`);
  }
  for (const table of BACKUP_TABLES) {
    const member = storeMember(table);
    const want = manifest.rows[table];
    if (!listed.has(member)) problems.push(`manifest.json does not list ${member}`);
    if (want === undefined) problems.push(`manifest.json does not count the rows of ${table}`);
    const got = seen.get(member);
    if (got !== undefined && want !== undefined && got.lines !== want) {
      problems.push(`${member} has ${got.lines} rows; manifest.json says ${want}`);
    }
  }

  if (problems.length > 0) {
    const list = problems.slice(0, 10).map((p) => `\n  ${p}`);
    const more = problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : '';
    throw new BackupError(
      `${label} is damaged or not a hearth backup; use another copy:${list.join('')}${more}`,
    );
  }
  if (config === undefined) throw new BackupError(`${label}: the config member could not be read`);
  const mediaFiles = manifest.files.filter((f) => classifyMember(f.path, isPlainFileName)?.kind === 'media');
  return {
    manifest,
    bytes,
    config,
    sealedSecrets: listed.has(SECRETS_MEMBER) ? sealedSecrets : undefined,
    mediaFiles: mediaFiles.length,
  };
}
