import { dirname, isAbsolute, resolve } from 'node:path';
import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node, type Scalar, visit } from 'yaml';
import type { z } from 'zod/v3';
import { isTlsFileProblem, readTlsFiles } from '../bus/mqtt/tls.js';
import { commandNames, commandSchema, type Kind } from '../contract/kinds.js';
import {
  type DeviceConfig,
  type DeviceSection,
  type Driver,
  defaultKinds,
  deviceSections,
  singleSections,
} from '../core/driver.js';
import { reasonOf } from '../core/errors.js';
import { readSmallFile } from '../core/read-file.js';
import { isSecretKey } from '../store/redact.js';
import { coercingParse } from './coerce.js';
import { asConfigError, ConfigError, type ConfigIssue, describeIssue, formatPath } from './errors.js';
import { configSchema, type RawConfig } from './schema.js';
import { parseYaml, quoteHint, toData } from './yaml.js';

/** One configured device with the driver that runs it. */
export interface DeviceEntry {
  driver: Driver;
  config: DeviceConfig & Record<string, unknown>;
  /** The agent that runs it in a cluster (`agent:` of its entry; `main` when left out). */
  agent: string;
}

export interface HearthConfig extends Omit<RawConfig, DeviceSection | 'storage' | 'media' | 'backup'> {
  /** Absolute path of the config file (or a label for an in-memory one). */
  file: string;
  storage: { sqlite: string; postgres?: undefined } | { postgres: { url: string }; sqlite?: undefined };
  /** `dir` is absolute; `baseUrl` has no trailing slash. */
  media: { dir: string; baseUrl: string | undefined };
  /** `dir` is absolute. */
  backup: RawConfig['backup'];
  devices: DeviceEntry[];
  buttons: Array<{ id: string; name: string }>;
}

export interface LoadOptions {
  drivers: readonly Driver[];
  /** Environment for `${VAR}`; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /**
   * Read and check the MQTT TLS files (default true). `hearth kube render` turns it off: its
   * config names the files where the pods mount them, not where they are on this machine.
   */
  readTlsFiles?: boolean;
}

const secretTag = {
  tag: '!secret',
  resolve: (value: string) => value,
};

/** Reads, substitutes and validates a config file; throws ConfigError naming file:line. */
export function loadConfigFile(path: string, options: LoadOptions): HearthConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readSmallFile(file);
  } catch (err) {
    throw new ConfigError([
      {
        file: path,
        line: 0,
        col: 0,
        field: '',
        message: `cannot read the config file (${reasonOf(err)}); pass --config with the path of your hearth.yaml, or start from examples/hearth.yaml`,
      },
    ]);
  }
  return parseConfig(text, file, options);
}

/** Validates config text; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string, options: LoadOptions): HearthConfig {
  try {
    return parseConfigText(text, file, options);
  } catch (err) {
    // A bug in a schema or a driver must still end as one line naming the file, never a stack trace.
    throw asConfigError(err, file);
  }
}

function parseConfigText(text: string, file: string, options: LoadOptions): HearthConfig {
  const parsed = parseYaml(text, file, { customTags: [secretTag] });
  if (parsed.issues.length > 0) throw new ConfigError(parsed.issues);
  const { doc, lineCounter } = parsed;
  const at = (node: Node | null | undefined) => position(lineCounter, node);

  const issues: ConfigIssue[] = commentedOutSecrets(doc.contents, [], text, file, at);
  const dir = dirname(file);
  const substituted = substitute(doc, file, dir, options.env ?? process.env, at, issues);
  if (issues.length > 0) throw new ConfigError(issues);

  const data = toData(doc, file);
  if ('issue' in data) throw new ConfigError([data.issue]);
  const raw = data.value;
  const wasSubstituted = (path: readonly (string | number)[]) =>
    substituted.has(doc.getIn(path, true) as Node);
  const top = coercingParse(configSchema, raw, [], wasSubstituted);
  if (!top.success) issues.push(...zodIssues(top.error, [], doc, file, at));

  const byKind = new Map<string, Driver>();
  for (const d of options.drivers) for (const k of d.configKinds) byKind.set(k, d);

  const devices: DeviceEntry[] = [];
  const seen = new Map<string, string>();
  const kindOf = new Map<string, Kind>();
  const claim = (id: string, where: (string | number)[]) => {
    const prior = seen.get(id);
    if (prior) {
      issues.push({
        ...at(doc.getIn([...where, 'id'], true) as Node),
        file,
        field: formatPath([...where, 'id']),
        message: `id "${id}" is already used by ${prior}; every entity id must be unique`,
      });
    } else seen.set(id, formatPath(where));
  };

  // Device entries are checked even when the top level has problems, so one run shows them all.
  for (const [section, singular] of Object.entries(deviceSections) as [DeviceSection, string][]) {
    const value = (raw as Record<string, unknown>)[section];
    // `zigbee2mqtt: { ... }` is one mapping; the other sections are lists.
    const single = singleSections.has(section);
    const entries = single
      ? value === undefined || value === null
        ? []
        : [value]
      : Array.isArray(value)
        ? value
        : [];
    entries.forEach((entry: unknown, i) => {
      const where: (string | number)[] = single ? [section] : [section, i];
      const node = doc.getIn(where, true) as Node;
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        issues.push({
          ...at(node),
          file,
          field: formatPath(where),
          message: single
            ? 'must be a mapping, like { baseTopic: zigbee2mqtt }'
            : 'must be a mapping with id and kind',
        });
        return;
      }
      const kind = (entry as { kind?: unknown }).kind ?? defaultKinds[section];
      if ((entry as { kind?: unknown }).kind === undefined && kind !== undefined) {
        (entry as { kind?: unknown }).kind = kind;
      }
      const driver = typeof kind === 'string' ? byKind.get(kind) : undefined;
      if (driver?.section !== section) {
        const accepted = options.drivers
          .filter((d) => d.section === section)
          .flatMap((d) => d.configKinds)
          .join(', ');
        const kindNode = doc.getIn([...where, 'kind'], true) as Node | undefined;
        issues.push({
          ...at(kindNode ?? node),
          file,
          field: formatPath([...where, 'kind']),
          message:
            kind === undefined
              ? `is required; accepted: ${accepted}`
              : `unknown ${singular} kind ${JSON.stringify(kind)}; accepted: ${accepted}`,
        });
        return;
      }
      const parsed = coercingParse(driver.configSchema, entry, where, wasSubstituted);
      if (!parsed.success) {
        issues.push(...zodIssues(parsed.error, where, doc, file, at));
        return;
      }
      const config = parsed.data as DeviceConfig & Record<string, unknown>;
      for (const e of driver.entities(config)) {
        claim(e.id, where);
        kindOf.set(e.id, e.kind);
      }
      devices.push({ driver, config, agent: typeof config.agent === 'string' ? config.agent : 'main' });
    });
  }
  if (!top.success) throw new ConfigError(issues);
  const cfg = top.data;
  if (cfg.mqtt === undefined) {
    const needsBroker = (path: (string | number)[]) => {
      issues.push({
        ...at(doc.getIn(path, true) as Node),
        file,
        field: formatPath(path),
        message: 'needs the MQTT broker: add `mqtt: { url: mqtt://HOST:1883 }` at the top level',
      });
    };
    for (let i = 0; i < cfg.things.length; i++) needsBroker(['things', i]);
    if (cfg.zigbee2mqtt !== undefined) needsBroker(['zigbee2mqtt']);
  }
  // The TLS files are read now too, so `hearth check` finds a wrong path (at the field's line).
  const mqtt = cfg.mqtt && {
    ...cfg.mqtt,
    ...(cfg.mqtt.ca === undefined ? {} : { ca: absolute(dir, cfg.mqtt.ca) }),
    ...(cfg.mqtt.cert === undefined ? {} : { cert: absolute(dir, cfg.mqtt.cert) }),
    ...(cfg.mqtt.key === undefined ? {} : { key: absolute(dir, cfg.mqtt.key) }),
  };
  if (mqtt && options.readTlsFiles !== false) {
    const tls = readTlsFiles(mqtt);
    if (isTlsFileProblem(tls)) {
      const path = ['mqtt', tls.field];
      issues.push({
        ...at(doc.getIn(path, true) as Node),
        file,
        field: formatPath(path),
        message: tls.message,
      });
    }
  }
  cfg.buttons.forEach((b, i) => {
    claim(b.id, ['buttons', i]);
    kindOf.set(b.id, 'button');
  });
  // Entities of a zigbee2mqtt bridge are known only once it runs: automations may name ids the
  // config does not have (hall-remote), and `hearth check` lists them.
  const dynamic = devices.some((d) => d.driver.dynamic === true);
  checkAutomationRefs(cfg.automations, kindOf, dynamic, (path, message) => {
    issues.push({ ...at(doc.getIn(path, true) as Node), file, field: formatPath(path), message });
  });
  if (issues.length > 0) throw new ConfigError(issues);

  const {
    switches: _s,
    coffee: _c,
    sprinklers: _p,
    speakers: _k,
    calendars: _l,
    things: _t,
    zigbee2mqtt: _z,
    ...rest
  } = cfg;
  return {
    ...rest,
    mqtt,
    file,
    storage:
      cfg.storage.postgres !== undefined
        ? { postgres: cfg.storage.postgres }
        : { sqlite: cfg.storage.sqlite === ':memory:' ? ':memory:' : absolute(dir, cfg.storage.sqlite) },
    secrets: cfg.secrets === undefined ? undefined : absolute(dir, cfg.secrets),
    media: { dir: absolute(dir, cfg.media.dir), baseUrl: cfg.media.baseUrl },
    backup: { ...cfg.backup, dir: absolute(dir, cfg.backup.dir) },
    devices,
    buttons: cfg.buttons.map((b) => ({ id: b.id, name: b.name ?? b.id })),
  };
}

/** Every entity and automation an automation names must exist: a typo is an error at its line, not a silent no-op. */
function checkAutomationRefs(
  automations: RawConfig['automations'],
  entities: ReadonlyMap<string, Kind>,
  dynamic: boolean,
  report: (path: (string | number)[], message: string) => void,
): void {
  const ids = new Set(automations.map((a) => a.id));
  const known = (id: string) => dynamic || entities.has(id);
  const hint = () =>
    `known entities: ${[...entities.keys()].slice(0, 12).join(', ')}${entities.size > 12 ? ', ...' : ''}`;
  automations.forEach((a, i) => {
    const base = ['automations', i];
    if (automations.findIndex((b) => b.id === a.id) !== i)
      report([...base, 'id'], `automation id "${a.id}" is used twice`);
    a.triggers.forEach((t, j) => {
      const ref = 'state' in t ? t.state : 'calendar' in t ? t.calendar : undefined;
      const key = 'state' in t ? 'state' : 'calendar';
      if (ref !== undefined && !known(ref))
        report([...base, 'triggers', j, key], `no entity "${ref}"; ${hint()}`);
    });
    a.conditions.forEach((c, j) => {
      if ('state' in c && !known(c.state))
        report([...base, 'conditions', j, 'state'], `no entity "${c.state}"; ${hint()}`);
    });
    a.actions.forEach((act, j) => {
      if ('command' in act) {
        const dot = act.command.lastIndexOf('.');
        const id = act.command.slice(0, dot);
        const name = act.command.slice(dot + 1);
        const kind = entities.get(id);
        if (kind === undefined && !dynamic)
          report([...base, 'actions', j, 'command'], `no entity "${id}"; ${hint()}`);
        else if (kind !== undefined && commandSchema(kind, name) === undefined) {
          report(
            [...base, 'actions', j, 'command'],
            `${kind} "${id}" has no command "${name}"; it takes ${commandNames(kind).join(', ') || 'none'}`,
          );
        }
      }
      if ('automation' in act && !ids.has(act.automation)) {
        report([...base, 'actions', j, 'automation'], `no automation "${act.automation}"`);
      }
    });
  });
}

/**
 * Entity ids that automations name and the config does not declare: with a zigbee2mqtt bridge
 * these are expected to come from it (`hearth check` lists them, so a typo is seen).
 */
export function undeclaredRefs(config: HearthConfig): string[] {
  const declared = new Set(config.buttons.map((b) => b.id));
  for (const d of config.devices) for (const e of d.driver.entities(d.config)) declared.add(e.id);
  const refs = new Set<string>();
  for (const a of config.automations) {
    for (const t of a.triggers) {
      if ('state' in t) refs.add(t.state);
      if ('calendar' in t) refs.add(t.calendar);
    }
    for (const c of a.conditions) if ('state' in c) refs.add(c.state);
    for (const act of a.actions)
      if ('command' in act) refs.add(act.command.slice(0, act.command.lastIndexOf('.')));
  }
  return [...refs].filter((id) => !declared.has(id));
}

function absolute(dir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dir, p);
}

type At = (node: Node | null | undefined) => { line: number; col: number };

function position(lc: LineCounter, node: Node | null | undefined): { line: number; col: number } {
  const offset = node?.range?.[0];
  if (offset === undefined) return { line: 0, col: 0 };
  const { line, col } = lc.linePos(offset);
  return { line, col };
}

const envRef = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` (or `${VAR:-default}`) with the environment's value and `!secret name` with
 * the secrets file's value, in place on the YAML nodes so errors keep their line numbers.
 * A substituted value is data, never YAML: it stays a string (a token may start with `#` or `*`),
 * and the schema alone decides where a string of digits or true/false becomes a number or a
 * boolean (see coerce.ts). Returns the nodes it replaced.
 */
function substitute(
  doc: Document,
  file: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  at: At,
  issues: ConfigIssue[],
): Set<Node> {
  const replaced = new Set<Node>();
  let secrets: SecretsFile | undefined;
  let secretsFailed = false;
  const secretsPath = doc.get('secrets');
  const loadSecrets = (node: Scalar): SecretsFile | undefined => {
    if (secrets || secretsFailed) return secrets;
    if (typeof secretsPath !== 'string') {
      issues.push({
        ...at(node),
        file,
        field: '',
        message:
          '!secret is used but no `secrets:` file is configured; add `secrets: secrets.yaml` at the top level',
      });
      return undefined;
    }
    const loaded = readSecrets(absolute(dir, secretsPath), { ...at(node), file });
    if ('issues' in loaded) {
      secretsFailed = true;
      issues.push(...loaded.issues);
      return undefined;
    }
    secrets = loaded;
    return secrets;
  };

  visit(doc, {
    Scalar(_key, node) {
      if (node.tag === '!secret') {
        const name = String(node.value);
        const store = loadSecrets(node);
        if (!store) return;
        if (!Object.hasOwn(store.values, name)) {
          issues.push({
            ...at(node),
            file,
            field: '',
            message: `secret "${name}" is not in the secrets file ${String(secretsPath)}; add a line \`${name}: <value>\` there`,
          });
          return;
        }
        const value = store.values[name];
        if (value === '' || value === null || value === undefined) {
          // `name: #abc` is an empty value in YAML; using it would silently turn a token off.
          issues.push({
            ...store.at(name),
            file: store.path,
            field: name,
            message: `is empty (used by !secret at ${file}:${at(node).line}); write its value, and ${quoteHint}`,
          });
          return;
        }
        node.value = value;
        node.tag = undefined;
        replaced.add(node);
        return;
      }
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const original = node.value;
      let missing: string | undefined;
      const value = original.replace(envRef, (_m, name: string, fallback: string | undefined) => {
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (fallback !== undefined) return fallback;
        missing ??= name;
        return '';
      });
      if (missing) {
        issues.push({
          ...at(node),
          file,
          field: '',
          message: `environment variable ${missing} is not set; export it, or write \${${missing}:-default}`,
        });
        return;
      }
      node.value = value;
      replaced.add(node);
    },
  });
  return replaced;
}

interface SecretsFile {
  path: string;
  /** Every scalar is a string here (the YAML failsafe schema): the config's schema gives types. */
  values: Record<string, unknown>;
  /** Where a name is defined, for errors about its value. */
  at: (name: string) => { line: number; col: number };
}

/** Reads the secrets file; problems are reported at its own lines, never with its values. */
function readSecrets(
  path: string,
  usedAt: { file: string; line: number; col: number },
): SecretsFile | { issues: ConfigIssue[] } {
  let text: string;
  try {
    text = readSmallFile(path);
  } catch (err) {
    // The first run of a copied example: say what the file is and what goes in it.
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    const message = missing
      ? `the secrets file ${path} does not exist; create it (mode 0600, out of git) with one \`name: value\` line for each \`!secret name\` in the config`
      : `cannot read secrets file ${path}: ${reasonOf(err)}`;
    return { issues: [{ ...usedAt, field: '', message }] };
  }
  const parsed = parseYaml(text, path, { schema: 'failsafe' });
  if (parsed.issues.length > 0) return { issues: parsed.issues };
  const data = toData(parsed.doc, path);
  if ('issue' in data) return { issues: [data.issue] };
  const values = data.value;
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    return {
      issues: [
        { file: path, line: 1, col: 1, field: '', message: 'must be a mapping of `name: value` lines' },
      ],
    };
  }
  const { doc, lineCounter } = parsed;
  return {
    path,
    values: values as Record<string, unknown>,
    at: (name) => {
      const contents = doc.contents;
      const pair = isMap(contents)
        ? contents.items.find((p) => isScalar(p.key) && String(p.key.value) === name)
        : undefined;
      return position(lineCounter, (pair?.key as Node | undefined) ?? null);
    },
  };
}

function zodIssues(
  error: z.ZodError,
  prefix: (string | number)[],
  doc: Document,
  file: string,
  at: At,
): ConfigIssue[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys;
      const parent = doc.getIn(path, true);
      let keyNode: Node | undefined;
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && keys.includes(String(p.key.value)));
        keyNode = pair?.key as Node | undefined;
      }
      const known = knownKeys(path, doc);
      return {
        file,
        ...at(keyNode ?? (parent as Node)),
        field: formatPath([...path, keys[0] ?? '']),
        message: `unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}${known}`,
      };
    }
    // Point at the deepest node that exists: a missing key is reported on its parent.
    let node: unknown;
    for (let n = path.length; n >= 0; n--) {
      node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (node) break;
    }
    const value = isScalar(node) && node === doc.getIn(path, true) ? node.value : undefined;
    // A secret is never echoed, not even a wrong one: error output ends up in logs and issues.
    const got =
      value === undefined || value === null || isSecretField(path) ? '' : ` (got ${JSON.stringify(value)})`;
    return {
      file,
      ...at(node as Node),
      field: formatPath(path),
      message: `${describeIssue(issue)}${got}`,
    };
  });
}

function isSecretField(path: readonly (string | number)[]): boolean {
  const key = path.findLast((p) => typeof p === 'string');
  return key !== undefined && isSecretBearing(key);
}

/**
 * A key whose value is, or may hold, a secret: any URL too (`url`, `baseUrl`, `dashboardUrl`), as a
 * database URL holds its password and a wrong one may carry `user:password@`.
 */
function isSecretBearing(key: string): boolean {
  return isSecretKey(key) || /url$/i.test(key);
}

/**
 * `token: #abc` is a key with no value and a comment in YAML: the user wrote a secret and YAML
 * dropped it, which would silently turn a token off (or fail later, far from the cause). Every
 * secret-bearing key whose value is empty while its own line goes on with a `#` comment is an
 * error at its line. The comment is never quoted: it is the secret.
 */
function commentedOutSecrets(
  node: unknown,
  path: (string | number)[],
  text: string,
  file: string,
  at: At,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  if (isSeq(node)) {
    node.items.forEach((item, i) => {
      out.push(...commentedOutSecrets(item, [...path, i], text, file, at));
    });
  } else if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined) continue;
      const value = pair.value;
      if (isSecretBearing(key) && isScalar(value) && value.value === null && value.source === '') {
        const keyEnd = (pair.key as Node).range?.[1] ?? 0;
        const lineEnd = text.indexOf('\n', keyEnd);
        const rest = text.slice(keyEnd, lineEnd === -1 ? undefined : lineEnd);
        if (!/^[ \t]*:[ \t]+#/.test(rest)) continue;
        out.push({
          ...at(pair.key as Node),
          file,
          field: formatPath([...path, key]),
          message: `is empty: YAML reads " #" and the rest of the line as a comment, so the value written after the colon is lost; ${quoteHint}`,
        });
        continue;
      }
      out.push(...commentedOutSecrets(value, [...path, key], text, file, at));
    }
  }
  return out;
}

function knownKeys(path: (string | number)[], doc: Document): string {
  // Helpful only at the top level, where a typo of a section name is the usual mistake.
  if (path.length !== 0 || !isMap(doc.contents)) return '';
  const shape = Object.keys(configSchema.shape).join(', ');
  return `; accepted keys here: ${shape}`;
}
