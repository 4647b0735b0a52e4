import { dirname, isAbsolute, resolve } from 'node:path';
import {
  isMap,
  isPair,
  isScalar,
  type LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  visit,
} from 'yaml';
import { ConfigError, type ConfigIssue, formatPath } from '../config/errors.js';
import { parseYaml } from '../config/yaml.js';
import { readSmallFile } from '../core/read-file.js';

/**
 * The hearth.yaml the pods read (the ConfigMap), made from the user's file by replacing whole
 * scalars in its text, each on its own line, so every later error still names the user's line:
 *
 * - `storage.postgres.url` and `mqtt.url` point at the `postgres` and `mosquitto` Services
 *   (with TLS files, `mqtt.url` stays: its host is the name of the broker's certificate);
 * - `mqtt.ca`, `cert` and `key` name the files of the Secret hearth-mqtt-tls in the pods;
 * - a literal secret (`http.token`, a password, a calendar URL) becomes a `${VAR}`;
 * - `!secret name` becomes `${NAME}` (the pods have no secrets file);
 * - with the in-cluster broker, `mqtt.username` and `mqtt.password` become (or are added as)
 *   `${HEARTH_MQTT_USERNAME}` and `${HEARTH_MQTT_PASSWORD}`: each role's own user.
 *
 * Every other `${VAR}` left in the result is an environment variable the pods get from the Secret.
 */
export interface PreparedConfig {
  /** The ConfigMap's hearth.yaml. */
  text: string;
  /** Every variable the text references, sorted by name. */
  vars: ConfigVar[];
  /** Environment in which `text` validates at render time (placeholders for unset secrets). */
  validationEnv: Record<string, string>;
  /**
   * With the in-cluster broker: `mqtt.username` and `mqtt.password` are `${HEARTH_MQTT_USERNAME}`
   * and `${HEARTH_MQTT_PASSWORD}` (written, or added), which each Deployment sets to its role's
   * user; those two are not among `vars`.
   */
  perRoleUsers: boolean;
  /** `mqtt.ca`, `cert` and `key` as written (the text now names the mounted files instead). */
  tls: TlsFile[];
}

/** One MQTT TLS file: the pods read it from the Secret hearth-mqtt-tls, mounted at tlsDir. */
export interface TlsFile {
  field: 'ca' | 'cert' | 'key';
  /** Its key in the Secret, and its file name under tlsDir. */
  secretKey: string;
  /** The path the config gives, relative to the config file's folder or absolute. */
  path: string;
}

/** Where the hearth pods mount the Secret hearth-mqtt-tls; the ConfigMap's mqtt.ca/cert/key point here. */
export const tlsDir = '/etc/hearth/tls';
const tlsSecretKeys = { ca: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

export interface ConfigVar {
  name: string;
  /** From the environment, a literal lifted out of the file, or the secrets file; undefined if none. */
  value: string | undefined;
  /** Written `${NAME:-default}`: the pods may go without it. */
  optional: boolean;
}

export const pgPasswordVar = 'HEARTH_PG_PASSWORD';
/** What each hearth pod's environment says its broker user and password are (objects.ts sets them). */
export const mqttUserVar = 'HEARTH_MQTT_USERNAME';
export const mqttPasswordVar = 'HEARTH_MQTT_PASSWORD';
export const inClusterPgUrl = `postgres://hearth:\${${pgPasswordVar}}@postgres:5432/hearth`;
export const inClusterMqttUrl = 'mqtt://mosquitto:1883';

/** A field whose value is a secret when written literally. */
const secretKey = /token|password|passphrase|secret/i;
const envRef = /\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g;
const placeholder = 'placeholder0123456789abcdef';

interface Edit {
  start: number;
  end: number;
  text: string;
}

export function prepareConfig(text: string, file: string, env: NodeJS.ProcessEnv): PreparedConfig {
  const parsed = parseYaml(text, file, { customTags: [{ tag: '!secret', resolve: (v: string) => v }] });
  if (parsed.issues.length > 0) throw new ConfigError(parsed.issues);
  const { doc, lineCounter } = parsed;
  const issues: ConfigIssue[] = [];
  const at = (path: (string | number)[], message: string) => {
    let node: unknown;
    for (let n = path.length; n >= 0 && !node; n--)
      node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    issues.push({ file, ...position(lineCounter, node as Node), field: formatPath(path), message });
  };

  const edits: Edit[] = [];
  const lifted = new Map<string, string>();
  const replace = (node: Scalar, value: string, from = node.range?.[0]) => {
    const range = node.range;
    if (!range || from === undefined) return;
    edits.push({ start: from, end: range[1], text: JSON.stringify(value) });
  };

  const scalarAt = (path: string[]) => {
    const node = doc.getIn(path, true);
    return isScalar(node) ? node : undefined;
  };
  const pgUrl = scalarAt(['storage', 'postgres', 'url']);
  if (!pgUrl) {
    at(
      ['storage', 'postgres'],
      `kube render needs a cluster config: \`storage: { postgres: { url: "\${HEARTH_PG_URL}" } }\` (in the pods it points at the postgres Service)`,
    );
  } else {
    if (typeof pgUrl.value === 'string' && !pgUrl.value.includes('${') && pgUrl.tag !== '!secret') {
      try {
        const password = decodeURIComponent(new URL(pgUrl.value).password);
        if (password) lifted.set(pgPasswordVar, password);
      } catch {
        // Not a URL: the config's own validation says so at its line.
      }
    }
    replace(pgUrl, inClusterPgUrl, tagStart(text, pgUrl));
  }
  const mqttUrl = scalarAt(['mqtt', 'url']);
  if (!mqttUrl) {
    at(
      ['mqtt', 'url'],
      'kube render needs the broker of a cluster: `mqtt: { url: mqtt://HOST:1883 }` (in the pods it points at the mosquitto Service)',
    );
  }
  // TLS files: each path becomes the file in the mounted Secret. The pods then connect to the
  // broker by the name in mqtt.url, the one its certificate holds, so that stays as written.
  const tls: TlsFile[] = [];
  const tlsNodes = new Set<Scalar>();
  for (const field of ['ca', 'cert', 'key'] as const) {
    if (!doc.hasIn(['mqtt', field])) continue;
    const node = scalarAt(['mqtt', field]);
    if (!node || typeof node.value !== 'string' || node.tag !== undefined || node.value.includes('${')) {
      at(
        ['mqtt', field],
        "must be a path written out (relative to the config file's folder) for kube render, which puts the file into the Secret hearth-mqtt-tls",
      );
      continue;
    }
    tlsNodes.add(node);
    tls.push({ field, secretKey: tlsSecretKeys[field], path: node.value });
    replace(node, `${tlsDir}/${tlsSecretKeys[field]}`);
  }
  if (mqttUrl && tls.length === 0) replace(mqttUrl, inClusterMqttUrl, tagStart(text, mqttUrl));
  // The in-cluster broker has a user per role: each pod's environment names its own.
  const perRoleUsers = doc.getIn(['cluster', 'kubernetes', 'mqtt', 'external']) === undefined;
  const userNodes = new Set<Scalar>();
  const missingUser: string[] = [];
  if (perRoleUsers && mqttUrl) {
    for (const [field, name] of [
      ['username', mqttUserVar],
      ['password', mqttPasswordVar],
    ] as const) {
      const node = scalarAt(['mqtt', field]);
      if (node) {
        userNodes.add(node);
        replace(node, `\${${name}}`, tagStart(text, node));
      } else missingUser.push(`${field}: ${JSON.stringify(`\${${name}}`)}`);
    }
  }

  // The secrets file, when it is here: `!secret name` becomes `${NAME}` with its value.
  const secretsPath = doc.get('secrets');
  let secretValues: Record<string, unknown> = {};
  if (typeof secretsPath === 'string') {
    const path = isAbsolute(secretsPath) ? secretsPath : resolve(dirname(file), secretsPath);
    try {
      const data = parseDocument(readSmallFile(path), { schema: 'failsafe' }).toJS() as unknown;
      if (data && typeof data === 'object' && !Array.isArray(data))
        secretValues = data as Record<string, unknown>;
    } catch {
      // Not here (a CI checkout): the values must come from the environment, like every other var.
    }
  }

  visit(doc, {
    Scalar(_key, node, path) {
      const parent = path[path.length - 1];
      if (isPair(parent) && parent.key === node) return;
      if (node === pgUrl || node === mqttUrl || tlsNodes.has(node) || userNodes.has(node)) return;
      const keyName = isPair(parent) && isScalar(parent.key) ? String(parent.key.value) : '';
      const fieldPath = doc.contents ? pathOf(path, node) : [];
      if (node.tag === '!secret') {
        const name = envName(String(node.value));
        const value = secretValues[String(node.value)];
        if (typeof value === 'string' && value !== '') lifted.set(name, value);
        replace(node, `\${${name}}`, tagStart(text, node));
        return;
      }
      if (typeof node.value !== 'string' || node.value.includes('${')) return;
      const isCalendarUrl = fieldPath[0] === 'calendars' && keyName === 'url';
      if (secretKey.test(keyName) || isCalendarUrl) {
        const name =
          fieldPath.join('.') === 'http.token'
            ? 'HEARTH_TOKEN'
            : fieldPath.join('.') === 'mqtt.password'
              ? 'MQTT_PASSWORD'
              : envName(`hearth_${fieldPath.join('_')}`);
        lifted.set(name, node.value);
        replace(node, `\${${name}}`);
      }
    },
  });
  if (issues.length > 0) throw new ConfigError(issues);

  edits.sort((a, b) => b.start - a.start);
  let out = text;
  for (const e of edits) {
    // Keep every line where it was: a replaced scalar that spanned lines leaves its newlines.
    const newlines = out.slice(e.start, e.end).split('\n').length - 1;
    out = out.slice(0, e.start) + e.text + '\n'.repeat(newlines) + out.slice(e.end);
  }
  if (missingUser.length > 0) out = addToMapping(out, 'mqtt', missingUser);

  // Which variables the result references, and in which fields (for placeholders).
  const result = parseDocument(out, { customTags: [{ tag: '!secret', resolve: (v: string) => v }] });
  const refs = new Map<
    string,
    { optional: boolean; secretLike: boolean; urlLike: boolean; whole: boolean }
  >();
  visit(result, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string') return;
      const parent = path[path.length - 1];
      if (isPair(parent) && parent.key === node) return;
      const keyName = isPair(parent) && isScalar(parent.key) ? String(parent.key.value) : '';
      for (const m of node.value.matchAll(envRef)) {
        const name = m[1] as string;
        const prior = refs.get(name);
        const secretLike = secretKey.test(keyName) || /url$/i.test(keyName);
        refs.set(name, {
          optional: (prior?.optional ?? true) && m[2] !== undefined,
          secretLike: (prior?.secretLike ?? true) && secretLike,
          urlLike: /url$/i.test(keyName) && m[0] === node.value,
          whole: m[0] === node.value,
        });
      }
    },
  });
  // Each pod's own: the Deployments set them, the Secret hearth-env does not hold them.
  const fromPod = new Set(perRoleUsers ? [mqttUserVar, mqttPasswordVar] : []);
  const vars: ConfigVar[] = [...refs.entries()]
    .filter(([name]) => !fromPod.has(name))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, r]) => ({ name, value: nonEmpty(env[name]) ?? lifted.get(name), optional: r.optional }));
  const validationEnv: Record<string, string> = {};
  for (const v of vars) {
    const r = refs.get(v.name);
    if (v.value !== undefined) validationEnv[v.name] = v.value;
    else if (!v.optional && r?.secretLike) {
      // A secret need not be here to render: it goes into the Secret, not into the manifests.
      validationEnv[v.name] = r.urlLike ? 'https://placeholder.invalid/' : placeholder;
    }
  }

  if (perRoleUsers) {
    validationEnv[mqttUserVar] = 'hearth-api';
    validationEnv[mqttPasswordVar] = placeholder;
  }
  return { text: out, vars, validationEnv, perRoleUsers, tls };
}

/**
 * `text` with `pairs` (`key: value`, YAML) added to the top-level mapping `section`: on its line
 * in a flow mapping (`mqtt: { url: ... }`), as new lines at its top in a block mapping (the
 * lines below then move down).
 */
function addToMapping(text: string, section: string, pairs: readonly string[]): string {
  const doc = parseDocument(text, { customTags: [{ tag: '!secret', resolve: (v: string) => v }] });
  const map = doc.get(section, true);
  if (!isMap(map) || !map.range) throw new Error(`${section}: is not a mapping`);
  if (map.flow) {
    const open = text.indexOf('{', map.range[0]);
    const rest = map.items.length > 0 ? ', ' : ' ';
    return `${text.slice(0, open + 1)} ${pairs.join(', ')}${rest}${text.slice(open + 1).replace(/^ +/, '')}`;
  }
  const keyStart = (map.items[0]?.key as Node | undefined)?.range?.[0];
  if (keyStart === undefined) throw new Error(`${section}: is an empty block mapping`);
  const lineStart = text.lastIndexOf('\n', keyStart - 1) + 1;
  const indent = text.slice(lineStart, keyStart);
  return `${text.slice(0, lineStart)}${pairs.map((p) => `${indent}${p}\n`).join('')}${text.slice(lineStart)}`;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** `mqtt_password` → MQTT_PASSWORD: the environment variable a `!secret` becomes. */
function envName(name: string): string {
  const upper = name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[0-9]/.test(upper) ? `S_${upper}` : upper;
}

/** Where a scalar's text starts, including a `!secret` tag in front of it. */
function tagStart(text: string, node: Scalar): number | undefined {
  const start = node.range?.[0];
  if (start === undefined || node.tag === undefined) return start;
  const tag = text.lastIndexOf('!', start);
  return tag >= 0 && /^!\S*\s*$/.test(text.slice(tag, start)) ? tag : start;
}

/** The config path (`['calendars', 0, 'url']`) of a node visited with its ancestors. */
function pathOf(ancestors: readonly unknown[], node: Node): (string | number)[] {
  const path: (string | number)[] = [];
  const chain = [...ancestors, node];
  for (let i = 1; i < chain.length; i++) {
    const parent = chain[i - 1] as { items?: unknown[] };
    const child = chain[i];
    if (isPair(child)) {
      if (isScalar(child.key)) path.push(String(child.key.value));
    } else if (Array.isArray(parent.items) && !isPair(parent)) {
      const index = parent.items.indexOf(child);
      if (index >= 0 && !isPair(parent.items[index])) path.push(index);
    }
  }
  return path;
}

function position(lc: LineCounter, node: Node | null | undefined): { line: number; col: number } {
  const offset = node?.range?.[0];
  if (offset === undefined) return { line: 0, col: 0 };
  return lc.linePos(offset);
}

/**
 * The ConfigMap's text with `backup.dir` set to `dir` (the controllers' backups volume), edited
 * like the rest: a written `dir:` has its scalar replaced on its line; in a flow mapping
 * (`backup: { every: ... }`) the pair goes in on the same line; in a block mapping it becomes the
 * first line of the mapping, so only there do the lines below move down by one (the render has
 * checked the config by then, at the user's lines); with no `backup:` at all it goes at the end.
 */
export function pointBackupDir(text: string, dir: string): string {
  const doc = parseDocument(text, { customTags: [{ tag: '!secret', resolve: (v: string) => v }] });
  const pair = JSON.stringify(dir);
  const backup = doc.get('backup', true);
  if (backup === undefined)
    return `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}backup: { dir: ${pair} }\n`;
  const current = doc.getIn(['backup', 'dir'], true);
  if (isScalar(current) && current.range) {
    const [start, end] = current.range;
    const from = tagStart(text, current) ?? start;
    const newlines = text.slice(from, end).split('\n').length - 1;
    return text.slice(0, from) + pair + '\n'.repeat(newlines) + text.slice(end);
  }
  if (!isMap(backup) || !backup.range || current !== undefined) {
    // The config's own validation refuses anything else before this runs.
    throw new Error('backup: is not a mapping with a scalar dir');
  }
  if (backup.flow) {
    const open = text.indexOf('{', backup.range[0]);
    const rest = backup.items.length > 0 ? ', ' : ' ';
    return `${text.slice(0, open + 1)} dir: ${pair}${rest}${text.slice(open + 1).replace(/^ +/, '')}`;
  }
  const first = backup.items[0]?.key as Node | undefined;
  const keyStart = first?.range?.[0];
  if (keyStart === undefined) throw new Error('backup: is an empty block mapping');
  const lineStart = text.lastIndexOf('\n', keyStart - 1) + 1;
  const indent = text.slice(lineStart, keyStart);
  return `${text.slice(0, lineStart)}${indent}dir: ${pair}\n${text.slice(lineStart)}`;
}
