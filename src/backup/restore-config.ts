/**
 * What restore reads from, and changes in, the archive's config: where its store, media folder
 * and secrets file go, and `storage:` rewritten for another kind of store (--storage). The
 * config is edited as a YAML document, so its comments and layout stay as the user wrote them.
 */
import { isAbsolute, join, relative, resolve } from 'node:path';
import { type Document, isMap, isScalar, type Node, parseDocument, Scalar, visit, YAMLMap } from 'yaml';
import { configSchema } from '../config/schema.js';
import { BackupError } from './errors.js';

const secretTag = { tag: '!secret', resolve: (value: string) => value };

/** The variable `--storage postgres` points the restored config at. */
export const PG_URL_ENV = 'HEARTH_PG_URL';

export type StorageTarget =
  | { sqlite: string; postgres?: undefined }
  | { postgres: { url: string }; sqlite?: undefined };

/**
 * The folders a restore may write in: `--config-dir`, and `--data-dir` when the user names one.
 * Nothing else, whatever the archive's config says: a path of the config that falls outside
 * them is moved under `configDir` (see restoreTargets). Both absolute.
 */
export interface WriteRoots {
  configDir: string;
  dataDir?: string | undefined;
}

/** Is `path` strictly inside `dir` (not `dir` itself)? Both absolute; `..` is resolved first. */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel !== '' && rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel);
}

/** Whether restore may write at `path`: strictly inside one of the roots the user named. */
export function mayWrite(roots: WriteRoots, path: string): boolean {
  return isInside(roots.configDir, path) || (roots.dataDir !== undefined && isInside(roots.dataDir, path));
}

/** A setting of the archive's config whose path was outside the roots, and where it went instead. */
export interface Moved {
  /** `media.dir`, `storage.sqlite` or `secrets`. */
  setting: string;
  /** Where the archive's config put it (absolute). */
  from: string;
  /** Where it is restored to (absolute, inside configDir). */
  to: string;
  /** What the restored config now says (relative to configDir). */
  value: string;
}

/** The settings restore writes to, each with the value a moved one gets (relative to the config). */
const PLACED = [
  { setting: 'storage.sqlite', path: ['storage', 'sqlite'], fallback: 'data/hearth.db' },
  { setting: 'media.dir', path: ['media', 'dir'], fallback: 'data/media' },
  { setting: 'secrets', path: ['secrets'], fallback: 'secrets.yaml' },
] as const;

/** Where the restored config's parts live, as `hearth start` will resolve them. */
export interface RestoreTargets {
  storage: StorageTarget;
  /** Absolute, inside the roots. */
  mediaDir: string;
  /** Absolute, inside the roots; undefined when the config names no secrets file. */
  secrets: string | undefined;
  /** The settings that pointed outside the roots, moved under configDir (to be said aloud). */
  moved: Moved[];
  /** The config to write: the archive's, with every moved setting's new value. */
  configText: string;
  /** `buttons:` ids and `buttonLimits.maxUndeclared`, for the store's rows to be held to. */
  buttons: { declared: ReadonlySet<string>; maxUndeclared: number };
}

function parse(text: string): Document {
  const doc = parseDocument(text, { customTags: [secretTag], uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new BackupError(
      "the archive's config is not valid YAML; restore it with the hearth version that made it",
    );
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new BackupError("the archive's config is not a mapping of settings");
  }
  return doc;
}

/**
 * Sets `storage:` to the other kind's usual value: `{ postgres: { url: "${HEARTH_PG_URL}" } }`
 * or `{ sqlite: data/hearth.db }` (relative to the config, so the folder can be anywhere).
 * Comments on the key, and on the old value, are kept.
 */
export function rewriteStorage(text: string, kind: 'sqlite' | 'postgres'): string {
  const doc = parse(text);
  const top = isMap(doc.contents) ? doc.contents : new YAMLMap();
  doc.contents = top;
  const value =
    kind === 'postgres'
      ? // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's ${VAR}, not a template
        { postgres: { url: '${HEARTH_PG_URL}' } }
      : { sqlite: 'data/hearth.db' };
  const node = doc.createNode(value) as YAMLMap;
  node.flow = true;
  visit(node, {
    Scalar(key, s) {
      if (key === 'value' && typeof s.value === 'string' && s.value.includes('${'))
        s.type = Scalar.QUOTE_DOUBLE;
    },
  });
  const old = top.get('storage', true) as Node | undefined;
  if (old !== undefined && old !== null) {
    if (old.commentBefore) node.commentBefore = old.commentBefore;
    if (old.comment) node.comment = old.comment;
    top.set('storage', node);
  } else {
    top.add(doc.createPair('storage', node));
  }
  return doc.toString();
}

const envRef = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Reads `storage:`, `media.dir` and `secrets:` of the restored config as `hearth start` will:
 * `${VAR}` from `env`, `!secret name` from the restored secrets file (if the archive had one),
 * paths relative to `configDir`. Only these settings (and `buttons:`, `buttonLimits:`) are read:
 * the rest of the config is the user's to fix after the restore (a variable not set on this box
 * yet, say).
 *
 * This is the one place that decides where a restore writes. The archive's config does not: a
 * path that resolves outside `roots` (absolute, or climbing out with `..`) is moved to its
 * usual place under `configDir`, the restored config is rewritten to say so, and the move is
 * returned in `moved` for the caller to say aloud. `writesSecrets`: the secrets file is written
 * (else `secrets:` is only read by `hearth start`, and left as it is).
 */
export function restoreTargets(
  text: string,
  roots: WriteRoots,
  env: NodeJS.ProcessEnv,
  secrets: Record<string, unknown> | undefined,
  writesSecrets = secrets !== undefined,
): RestoreTargets {
  const configDir = roots.configDir;
  const doc = parse(text);
  const problems: string[] = [];
  for (const key of ['storage', 'media', 'secrets']) {
    const node = doc.get(key, true);
    if (node === undefined || node === null || typeof node !== 'object') continue;
    visit(node as Node, {
      Scalar(_k, s) {
        if (s.tag === '!secret') {
          const name = String(s.value);
          const value = secrets?.[name];
          if (typeof value !== 'string' || value === '') {
            problems.push(
              secrets === undefined
                ? `${key} uses !secret ${name}, and the archive has no secrets file (it was made without --include-secrets)`
                : `${key} uses !secret ${name}, which the archive's secrets file does not have`,
            );
            return;
          }
          s.value = value;
          s.tag = undefined;
          return;
        }
        if (typeof s.value !== 'string' || !s.value.includes('${')) return;
        s.value = s.value.replace(envRef, (_m, name: string, fallback: string | undefined) => {
          const v = env[name];
          if (v !== undefined && v !== '') return v;
          if (fallback !== undefined) return fallback;
          problems.push(`${key} needs the environment variable ${name}, which is not set; export it`);
          return '';
        });
      },
    });
  }
  if (problems.length > 0) throw new BackupError(`cannot tell where to restore: ${problems.join('; ')}`);
  const data = (doc.toJS({ maxAliasCount: 100 }) ?? {}) as Record<string, unknown>;
  const storage = configSchema.shape.storage.safeParse(data.storage);
  if (!storage.success) {
    // Never the value: it may be a database URL with its password.
    const issue = storage.error.issues[0];
    throw new BackupError(
      `the archive's config has a storage: setting this hearth cannot use (${issue?.path.join('.') || 'storage'}: ${issue?.message ?? 'invalid'}); restore with --storage sqlite or --storage postgres`,
    );
  }
  const media = configSchema.shape.media.safeParse(data.media);
  if (!media.success) {
    throw new BackupError(`the archive's config has a media: setting this hearth cannot use`);
  }
  const secretsPath = typeof data.secrets === 'string' && data.secrets !== '' ? data.secrets : undefined;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(configDir, p));
  const s = storage.data;
  if (s.sqlite === ':memory:') {
    throw new BackupError(
      "the archive's config keeps its store in memory (sqlite: ':memory:'); restore with --storage sqlite",
    );
  }

  // Where each path goes: where the config says if the user named a folder that holds it, else
  // its usual place under configDir, with the restored config rewritten to match.
  const out = parse(text);
  const moved: Moved[] = [];
  const place = (which: (typeof PLACED)[number], value: string): string => {
    const wanted = abs(value);
    if (mayWrite(roots, wanted)) return wanted;
    const to = join(configDir, which.fallback);
    out.setIn(which.path, out.createNode(which.fallback));
    moved.push({ setting: which.setting, from: wanted, to, value: which.fallback });
    return to;
  };
  const [sqliteSetting, mediaSetting, secretsSetting] = PLACED;
  const storageTarget: StorageTarget =
    s.postgres !== undefined
      ? { postgres: { url: s.postgres.url } }
      : { sqlite: place(sqliteSetting, s.sqlite) };
  const mediaDir = place(mediaSetting, media.data.dir);
  const secretsFile =
    secretsPath === undefined
      ? undefined
      : writesSecrets
        ? place(secretsSetting, secretsPath)
        : abs(secretsPath);

  const declared = configSchema.shape.buttons.safeParse(data.buttons);
  const limits = configSchema.shape.buttonLimits.safeParse(data.buttonLimits);
  return {
    storage: storageTarget,
    mediaDir,
    secrets: secretsFile,
    moved,
    configText: moved.length > 0 ? out.toString() : text,
    buttons: {
      declared: new Set(declared.success ? declared.data.map((b) => b.id) : []),
      // A config whose limit hearth cannot read (it will not start either): the default.
      maxUndeclared: limits.success
        ? limits.data.maxUndeclared
        : configSchema.shape.buttonLimits.parse(undefined).maxUndeclared,
    },
  };
}

/**
 * The paths of the archive's config that point outside its own folder (absolute, or climbing
 * out with `..`), as written: what `hearth backup verify` warns a restore will move. A value
 * with `${VAR}` or `!secret` is judged only where it is restored.
 */
export function pathsOutside(text: string): Array<{ setting: string; value: string }> {
  let doc: Document;
  try {
    doc = parse(text);
  } catch {
    return [];
  }
  const found: Array<{ setting: string; value: string }> = [];
  for (const which of PLACED) {
    const node = doc.getIn(which.path, true);
    if (!isScalar(node) || node.tag === '!secret' || typeof node.value !== 'string') continue;
    const value = node.value;
    if (value.includes('${') || value === ':memory:') continue;
    if (isAbsolute(value) || !isInside('/config', resolve('/config', value)))
      found.push({ setting: which.setting, value });
  }
  return found;
}

/** The secrets file's `name: value` pairs (YAML, every value a string), for `!secret` in storage. */
export function secretValues(text: string): Record<string, unknown> {
  const doc = parseDocument(text, { schema: 'failsafe' });
  if (doc.errors.length > 0 || !isMap(doc.contents)) return {};
  const out: Record<string, unknown> = {};
  for (const pair of doc.contents.items) {
    if (isScalar(pair.key) && isScalar(pair.value)) out[String(pair.key.value)] = pair.value.value;
  }
  return out;
}
