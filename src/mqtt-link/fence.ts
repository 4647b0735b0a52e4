import type { MqttLink } from '../bus/mqtt/link.js';
import { parseJson } from '../bus/mqtt/topics.js';
import type { BackupStatus } from '../contract/views.js';
import type { EntityView } from '../core/runtime-api.js';
import {
  backupMessageSchema,
  type EntityEvent,
  type LeaderRecord,
  leaderSchema,
  leaseTopicId,
  stateSchema,
} from './wire.js';

/*
 * Fencing on the cluster wire. Every lease term has its own token, and tokens only grow (the
 * database gives each new holder the next one). A leader puts its token on everything it
 * publishes as leader; a consumer keeps the newest term it has seen of each lease and never lets
 * a message of an older term overwrite one of a newer. A leader stalled past its lease (a
 * SIGSTOP, a VM paused, a laptop lid) that wakes and speaks is then harmless, however late its
 * words arrive and whatever the broker kept of them: the successor, seeing its own topics
 * overwritten by an older term, says its own again at once, so no one waits for anything stale
 * to expire.
 */

/**
 * Whether `next` may replace `current` as what is known of one lease: a newer term always, an
 * older never. Within one term its end (`holder: null`) is final: the term's holder said again
 * after it (a stale re-send) is not taken.
 */
export function supersedes(next: LeaderRecord, current: LeaderRecord | undefined): boolean {
  if (current === undefined || next.token > current.token) return true;
  if (next.token < current.token) return false;
  return next.holder === null || next.holder === current.holder;
}

export interface LeaderTermOptions {
  /** `controller`, `agent:main`. */
  lease: string;
  token: number;
  /**
   * The views this leader publishes, by id (its runtime's); undefined for an id it does not run.
   * Omitted for a leader that publishes no views (the controller).
   */
  views?: (id: string) => EntityView | undefined;
}

/**
 * What one leader publishes during one term of its lease: its leader record and (for an agent)
 * its entities' views and events, each with the term's token. While the term lasts it watches
 * its own topics, and when something of an older term lands there (a deposed leader's late
 * step-down, a reconnect re-sending what it once retained) it publishes its own again, so the
 * broker's retained copy, what a process that connects later reads, is always the newest term's.
 * `end` says the term is over and publishes nothing of it after that.
 */
export class LeaderTerm {
  readonly lease: string;
  readonly token: number;
  readonly #link: MqttLink;
  readonly #views: ((id: string) => EntityView | undefined) | undefined;
  readonly #owner: string;
  readonly #leaderTopic: string;
  /** The state topics this term has published retained: none is re-sent once it ends. */
  readonly #stateTopics = new Set<string>();
  #backups: BackupStatus | undefined;
  #watchingBackups = false;
  #ended = false;

  constructor(link: MqttLink, opts: LeaderTermOptions) {
    this.#link = link;
    this.lease = opts.lease;
    this.token = opts.token;
    this.#views = opts.views;
    this.#owner = `term ${opts.lease} ${opts.token}`;
    this.#leaderTopic = link.topics.leader(leaseTopicId(opts.lease));
  }

  /** Publishes a view (retained), fenced. */
  view(v: EntityView): void {
    if (this.#ended) return;
    const topic = this.#link.topics.state(v.id);
    this.#stateTopics.add(topic);
    this.#link.publish(topic, { ...v, fence: this.token }, { retain: true });
  }

  /** Publishes an entity's reported state or announcement (not retained), fenced. */
  event(id: string, e: EntityEvent): void {
    if (this.#ended) return;
    this.#link.publish(this.#link.topics.event(id), { ...e, fence: this.token }, { qos: 1 });
  }

  /** Deletes an entity's retained view: it is gone (a device removed from zigbee2mqtt). */
  removed(id: string): void {
    if (this.#ended) return;
    const topic = this.#link.topics.state(id);
    this.#stateTopics.add(topic);
    this.#link.publish(topic, '', { retain: true });
  }

  /** Publishes how backups stand (retained), fenced; said again over an older term's. */
  backups(status: BackupStatus): void {
    if (this.#ended) return;
    this.#backups = status;
    this.#link.publish(this.#link.topics.backup, { ...status, fence: this.token }, { retain: true });
    if (this.#watchingBackups) return;
    this.#watchingBackups = true;
    this.#link.subscribe(
      this.#link.topics.backup,
      (m) => {
        const seen = m.payload.length === 0 ? undefined : parseJson(backupMessageSchema, m.payload);
        const mine = this.#backups;
        if (mine && !this.#ended && (seen === undefined || (seen.fence ?? 0) < this.token))
          this.backups(mine);
      },
      this.#owner,
    );
  }

  /**
   * Publishes the leader record (retained) and starts watching this term's topics. Called once
   * the leader's views are out: a consumer takes a view of a newer term before its record.
   */
  announce(): void {
    if (this.#ended) return;
    this.#record();
    this.#link.subscribe(
      this.#leaderTopic,
      (m) => {
        const seen = m.payload.length === 0 ? undefined : parseJson(leaderSchema, m.payload);
        // Anything but this term's own record (or a newer term's, which is not ours to answer).
        if (seen === undefined || seen.token < this.token) this.#record();
      },
      this.#owner,
    );
    const views = this.#views;
    if (!views) return;
    this.#link.subscribe(
      this.#link.topics.states,
      (m) => {
        if (this.#ended) return;
        const id = this.#link.topics.idOf('state', m.topic);
        const mine = id === undefined ? undefined : views(id);
        if (!mine) return;
        const seen = m.payload.length === 0 ? undefined : parseJson(stateSchema, m.payload);
        if (seen === undefined || (seen.fence ?? 0) < this.token) this.view(mine);
      },
      this.#owner,
    );
  }

  /**
   * The term is over: stop watching, and let nothing of it be re-sent after a reconnect over what
   * a successor publishes. Then, once and only if the broker is there now, its last word: the
   * record `holder: null` and each view in `last` (made unavailable, with `reason`), all with this
   * term's token, so that whoever has seen a newer term ignores them, and a successor that finds
   * them retained over its own publishes its own again.
   */
  end(last: readonly EntityView[] = [], reason?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    const link = this.#link;
    link.offOwner(this.#owner);
    link.forgetRetained(this.#leaderTopic);
    link.forgetRetained(link.topics.backup);
    for (const topic of this.#stateTopics) link.forgetRetained(topic);
    const record: LeaderRecord = { holder: null, token: this.token };
    link.publish(this.#leaderTopic, record, { retain: true, remember: false });
    for (const v of last) {
      link.publish(
        link.topics.state(v.id),
        { ...v, available: false, reason: reason ?? v.reason, fence: this.token },
        { retain: true, remember: false },
      );
    }
  }

  #record(): void {
    const record: LeaderRecord = { holder: this.#link.clientId, token: this.token };
    this.#link.publish(this.#leaderTopic, record, { retain: true });
  }
}
