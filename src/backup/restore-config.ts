/**
 * What restore reads from, and changes in, the archive's config: where its store, media folder
 * and secrets file go, and `storage:` rewritten for another kind of store (--storage). The
 * config is edited as a YAML document, so its comments and layout stay as the user wrote them.
 */
import { isAbsolute, resolve } from 'node:path';
import { type Document, isMap, isScalar, type Node, parseDocument, Scalar, visit, YAMLMap } from 'yaml';
import { configSchema } from '../config/schema.js';
import { BackupError } from './errors.js';

const secretTag = { tag: '!secret', resolve: (value: string) => value };

/** The variable `--storage postgres` points the restored config at. */
export const PG_URL_ENV = 'HEARTH_PG_URL';

export type StorageTarget =
  | { sqlite: string; postgres?: undefined }
  | { postgres: { url: string }; sqlite?: undefined };

/** Where the restored config's parts live, as `hearth start` will resolve them. */
export interface RestoreTargets {
  storage: StorageTarget;
  /** Absolute. */
  mediaDir: string;
  /** Absolute; undefined when the config names no secrets file. */
  secrets: string | undefined;
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
 * paths relative to `configFile`'s folder. Only these settings are read: the rest of the config
 * is the user's to fix after the restore (a variable not set on this box yet, say).
 */
export function restoreTargets(
  text: string,
  configDir: string,
  env: NodeJS.ProcessEnv,
  secrets: Record<string, unknown> | undefined,
): RestoreTargets {
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
  return {
    storage: s.postgres !== undefined ? { postgres: { url: s.postgres.url } } : { sqlite: abs(s.sqlite) },
    mediaDir: abs(media.data.dir),
    secrets: secretsPath === undefined ? undefined : abs(secretsPath),
  };
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
