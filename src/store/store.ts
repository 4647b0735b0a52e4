import type { AutomationRun } from '../contract/views.js';

/**
 * The one persistence interface. SQLite sits behind it on one box; PostgreSQL in a cluster.
 * Callers never see which. Every write resolves only once it is committed; a write that cannot
 * be committed rejects (HEARTH_ERR_STORE_UNAVAILABLE, 503 when the database is unreachable).
 */
export interface StoredState {
  /** Entity id. */
  id: string;
  kind: string;
  /** The state as the kind defines it; JSON-serialisable. */
  state: unknown;
  /** Epoch ms of the change. */
  updatedAt: number;
}

export interface StateStore {
  get(id: string): Promise<StoredState | undefined>;
  /** Insert or replace; committed to disk when the promise resolves. */
  put(state: StoredState): Promise<void>;
  /**
   * Records a press of button `press.id`: the stored button's state is replaced, or a new button
   * is stored. A new one whose id is not in `limit.declared` is stored only while fewer than
   * `limit.maxUndeclared` such buttons are; otherwise nothing is written. The check and the
   * write are one transaction, so presses through several processes at once never store more
   * than the cap. Committed when the promise resolves.
   */
  pressButton(press: ButtonPress, limit: ButtonLimit): Promise<ButtonPressResult>;
  list(kind?: string): Promise<StoredState[]>;
  /** Removes the state of `id`; resolves true if a row was removed, false if there was none. */
  delete(id: string): Promise<boolean>;
}

/** A button press to record (StateStore.pressButton). */
export interface ButtonPress {
  id: string;
  state: 'on' | 'off';
  /** Epoch ms of the press. */
  updatedAt: number;
}

/** How many buttons presses may create: `buttons:` ids never count, the others up to `maxUndeclared`. */
export interface ButtonLimit {
  declared: readonly string[];
  maxUndeclared: number;
}

/**
 * What a press came to: recorded, with the stored row before it (undefined: the press created
 * the button); or refused, with how many undeclared buttons are stored (`full`).
 */
export type ButtonPressResult =
  | { recorded: true; previous: StoredState | undefined }
  | { recorded: false; full: number };

/** One run of an automation, as recorded: src/contract/views.ts. */
export type { AutomationRun };

export interface AutomationStore {
  /**
   * Records a run as started (or as waiting, `queued`); resolves with its id. Runs are kept per
   * automation up to a limit, the oldest dropped first, so no trigger rate can fill the disk.
   */
  start(
    automation: string,
    trigger: string,
    startedAt: number,
    outcome?: 'running' | 'queued',
  ): Promise<number>;
  /** A queued run starts: it becomes `running` from `startedAt`. */
  begin(id: number, startedAt: number): Promise<void>;
  /** Records a run that is over as soon as it is triggered (skipped), in one write. */
  record(
    automation: string,
    trigger: string,
    at: number,
    outcome: AutomationRun['outcome'],
    error: string | null,
  ): Promise<AutomationRun>;
  finish(id: number, outcome: AutomationRun['outcome'], endedAt: number, error: string | null): Promise<void>;
  /** The newest runs first. */
  runs(automation: string, limit: number): Promise<AutomationRun[]>;
  /** When the scheduler last accounted for this automation's schedule (epoch ms), for missed runs after downtime. */
  getMark(automation: string): Promise<number | undefined>;
  setMark(automation: string, at: number): Promise<void>;
}

/** A lease as acquired: its fencing token and when it runs out (epoch ms, by the database's clock). */
export interface LeaseGrant {
  token: number;
  expiresAt: number;
}

export interface Lease {
  name: string;
  /** The holder that took it last (kept after release or expiry, so the table shows who led). */
  holder: string;
  token: number;
  expiresAt: number;
  /** Judged by the database's clock: held and not expired. */
  held: boolean;
}

/**
 * Singletons (the controller, each agent name) by leases. Expiry is judged by the database's
 * clock, so boxes whose clocks disagree still agree on who holds what.
 */
export interface LeaseStore {
  /**
   * Atomically takes `name` if it is free or expired (the fencing token goes up by one: tokens are
   * never reused, not even after a release), or renews it if `holder` holds it (the token stays).
   * Resolves undefined when another holder has it. Safe to retry: a holder retrying after a lost
   * reply renews and gets the same token.
   */
  acquire(name: string, holder: string, ttlMs: number): Promise<LeaseGrant | undefined>;
  /** Lets the lease go at once if `holder` has it; the token is kept, so the next holder gets token + 1. */
  release(name: string, holder: string): Promise<void>;
  list(): Promise<Lease[]>;
}

export interface Claim {
  automation: string;
  /** The scheduled instant, epoch ms. */
  instant: number;
  /** The lease the claimer must hold, and its fencing token. */
  lease: string;
  token: number;
}

/** Makes a schedule fire exactly once per instant across failovers. */
export interface ClaimStore {
  /**
   * Records that `instant` of `automation` fires, only if the lease `lease` is held with `token`
   * and unexpired, in one statement: a deposed leader with a stale token cannot claim. Resolves
   * false when the instant was already claimed by another token, or the token is stale.
   * Claims older than 7 days are pruned.
   */
  claim(claim: Claim): Promise<boolean>;
}

export interface MemberBeat {
  /** Unique per process, e.g. `controller@box1:1234`. */
  id: string;
  role: string;
  agent?: string | undefined;
  host: string;
  pid: number;
  /** Epoch ms the process started. */
  startedAt: number;
}

export interface Member extends MemberBeat {
  /** Epoch ms of the last heartbeat, by the database's clock. */
  lastSeen: number;
  /** Milliseconds since the last heartbeat, by the database's clock (skew-free). */
  silentMs: number;
}

/** The processes of a cluster, for GET /api/v1/cluster. Members silent for an hour are pruned. */
export interface MemberStore {
  heartbeat(beat: MemberBeat): Promise<void>;
  /** By id. */
  list(): Promise<Member[]>;
}

/** What a holder got from `configstacks.claim`. */
export interface StackGrant {
  /** Index of the entry in the stack's list (0-based). */
  index: number;
  /** The entry's hash when this holder last claimed or renewed it; null on a fresh claim. */
  previousHash: string | null;
  /** When the claim runs out unless renewed (epoch ms, by the database's clock). */
  expiresAt: number;
}

export interface StackClaim {
  stack: string;
  index: number;
  holder: string;
  entryHash: string;
  expiresAt: number;
  /** Judged by the database's clock: not expired. */
  held: boolean;
}

/**
 * Per-replica configs (`configstacks:`): each holder (a pod) claims one entry of a stack. A
 * claim is a row (stack, index, holder, expiry); at most one row per index and one per holder.
 * See docs/store.md.
 */
export interface ConfigStackStore {
  /**
   * Atomically: drops the claims of indexes at or past `hashes.length` (the list shrank); if
   * `holder` has a claim in the stack (even an expired one nobody took), renews it and answers
   * the same index; else takes the lowest index that is unclaimed or whose claim expired.
   * `hashes[i]` is the hash of entry i, stored with the claim. Undefined: every entry is held.
   */
  claim(
    stack: string,
    holder: string,
    hashes: readonly string[],
    ttlMs: number,
  ): Promise<StackGrant | undefined>;
  /**
   * Extends `holder`'s claim if it still has one at an index below `size`; undefined when it has
   * none (it was taken after it expired, released, or the list shrank past it).
   */
  renew(
    stack: string,
    holder: string,
    size: number,
    ttlMs: number,
  ): Promise<{ index: number; expiresAt: number } | undefined>;
  /** Gives `holder`'s entry back at once; resolves whether it had one. */
  release(stack: string, holder: string): Promise<boolean>;
  /** The claims of `stack`, expired ones included, by index. */
  list(stack: string): Promise<StackClaim[]>;
}

/**
 * One recorded change of an entity: a number (a sensor's reading) in `num`, anything else (on,
 * off, open, an ISO time, a climate's JSON) in `text`; both null when the entity had no state or
 * was unavailable (a gap).
 */
export interface HistoryRow {
  id: string;
  /** Epoch ms. */
  at: number;
  /**
   * The reading's place among the readings of `id` in the same ms (0, 1, ...): two readings of
   * one ms are two rows. Left out on append, it is the row's place among the rows of `id` at
   * `at` in that append. Not returned by raw(), whose rows come in (at, seq) order.
   */
  seq?: number;
  num: number | null;
  text: string | null;
}

/** A bucket of numbers: `at` is the bucket's start (a multiple of its step, epoch ms). */
export interface HistoryBucket {
  at: number;
  count: number;
  min: number;
  mean: number;
  max: number;
}

/** A bucket of text: the last value recorded in it. */
export interface HistoryTextBucket {
  at: number;
  text: string | null;
}

/**
 * The history of entity states (see src/history/). Numbers are kept raw, then as buckets of
 * `step` (count, min, mean, max); text is kept as its changes (they are few) until deleted.
 * Raw rows are keyed by (entity, ms, seq): every reading is kept, several in one ms too, and a
 * row appended again with the same key (a retry after a lost reply) replaces itself, so
 * appending a batch twice changes nothing.
 */
export interface HistoryStore {
  /** Appends rows in one transaction (one commit, one fsync). */
  append(rows: readonly HistoryRow[]): Promise<void>;
  /** Raw rows of `id` with from <= at < to, oldest first, at most `limit`. */
  raw(id: string, from: number, to: number, limit: number): Promise<HistoryRow[]>;
  /** How many raw rows of `id` lie in from <= at < to. */
  countRaw(id: string, from: number, to: number): Promise<number>;
  /**
   * Numbers of `id` with from <= at < to in buckets of `step` ms: raw rows and stored buckets
   * together (a stored bucket counts with its weight), oldest first.
   */
  buckets(id: string, from: number, to: number, step: number): Promise<HistoryBucket[]>;
  /** The last text (or gap) of `id` per bucket of `step` ms, from <= at < to, oldest first. */
  textBuckets(id: string, from: number, to: number, step: number): Promise<HistoryTextBucket[]>;
  /** True if anything of `id` is kept. */
  has(id: string): Promise<boolean>;
  /**
   * In one transaction: raw numbers before `rawBefore` (a multiple of `step`) become buckets of
   * `step`, merged into a bucket already there; raw rows and buckets before `keepBefore` are
   * deleted. Resolves how many raw rows were folded and how many rows were deleted.
   */
  compact(rawBefore: number, keepBefore: number, step: number): Promise<{ folded: number; deleted: number }>;
}

/** A dashboard session as stored: never its id, only the id's digest. */
export interface StoredSession {
  /** Hex SHA-256 of the session id (the cookie's value). */
  hash: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; the session is dead from then on. */
  expiresAt: number;
}

/**
 * Dashboard sessions (src/server/sessions.ts), shared by every api replica of a cluster and kept
 * across restarts. Times are epoch ms by the caller's clock.
 */
export interface SessionStore {
  /**
   * In one transaction: deletes the sessions expired at `session.createdAt`, adds `session`, then
   * deletes the oldest (by creation) until at most `cap` remain. Adding the same hash again
   * changes nothing (safe to retry).
   */
  create(session: StoredSession, cap: number): Promise<void>;
  /** The session of `hash` if it is alive at `now` (expiresAt > now). */
  find(hash: string, now: number): Promise<StoredSession | undefined>;
  /** Ends a session; resolves whether there was one. */
  delete(hash: string): Promise<boolean>;
  /** Deletes the sessions expired at `now`; resolves how many. */
  prune(now: number): Promise<number>;
  /** How many sessions are stored, expired ones included (for tests and metrics). */
  count(): Promise<number>;
}

/**
 * One table's rows in a backup (src/backup/): columns by their schema names, values as JSON
 * (numbers, strings, null; entity_state.state as its JSON value). The same on both store kinds,
 * so an archive of one restores into the other.
 */
export interface DumpChunk {
  /** One of BACKUP_TABLES. */
  table: BackupTable;
  rows: Record<string, unknown>[];
}

/**
 * What a backup keeps: what a user would miss. Leases, schedule claims, members, configstack
 * claims and dashboard sessions are the running cluster's and are not kept.
 */
export const BACKUP_TABLES = [
  'entity_state',
  'automation_run',
  'automation_mark',
  'history_raw',
  'history_agg',
] as const;
export type BackupTable = (typeof BACKUP_TABLES)[number];

/** Backup and restore of what BACKUP_TABLES names (see docs/backups.md). */
export interface BackupStore {
  /** How many schema migrations this store has run (the manifest's `schema`). */
  schemaVersion(): Promise<number>;
  /**
   * Every row of BACKUP_TABLES from one consistent snapshot (SQLite: one read transaction;
   * PostgreSQL: REPEATABLE READ), table by table in BACKUP_TABLES order, in chunks of at most
   * `chunkRows`. Writers are not blocked while it runs.
   */
  dump(chunkRows?: number): AsyncIterable<DumpChunk>;
  /** True when no table of BACKUP_TABLES has a row. */
  isEmpty(): Promise<boolean>;
  /**
   * Writes dumped chunks in one transaction: all of them or none. With `replace`, the tables of
   * BACKUP_TABLES are emptied first; without it, a store that is not empty is refused
   * (HEARTH_ERR_STORE_NOT_EMPTY) before anything is written. Sequences (automation run ids) go
   * past the largest id loaded. Resolves how many rows were written.
   */
  load(chunks: AsyncIterable<DumpChunk>, opts: { replace: boolean }): Promise<{ rows: number }>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Dashboard sessions. */
  readonly sessions: SessionStore;
  /** The history of entity states (the recorder writes it; GET .../history reads it). */
  readonly history: HistoryStore;
  /** State that hearth itself owns (buttons): device-backed state lives on the device. */
  readonly states: StateStore;
  readonly automations: AutomationStore;
  readonly leases: LeaseStore;
  readonly claims: ClaimStore;
  readonly members: MemberStore;
  readonly configstacks: ConfigStackStore;
  /** Backup and restore (hearth backup, hearth restore). */
  readonly backup: BackupStore;
  close(): Promise<void>;
}

/** How long claims and silent members are kept. */
export const CLAIMS_KEPT_MS = 7 * 24 * 3600_000;
export const MEMBERS_KEPT_MS = 3600_000;
