import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttLink } from '../src/bus/mqtt/link.js';
import type { BackupStatus } from '../src/contract/views.js';
import type { BusEvents } from '../src/core/bus.js';
import { silentLogger } from '../src/core/log.js';
import type { EntityView } from '../src/core/runtime-api.js';
import { type DeclaredEntity, EntityMirror } from '../src/house/mirror.js';
import { feedMirror } from '../src/mqtt-link/feed.js';
import { LeaderTerm, supersedes } from '../src/mqtt-link/fence.js';
import { MqttHouseLink } from '../src/mqtt-link/link.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { waitUntil } from './support/wait.js';

/*
 * Fencing on the cluster wire (src/mqtt-link/fence.ts): what a consumer (an api replica, the
 * controller) takes of leader records, views and events of several terms of one lease, and what
 * a leader does when an older term's words land on its topics. Real MqttLinks on a Mosquitto of
 * this file's own play the agents.
 */

describe('supersedes', () => {
  it('takes a newer term, never an older one, and within a term its end is final', () => {
    expect(supersedes({ holder: 'a', token: 1 }, undefined)).toBe(true);
    expect(supersedes({ holder: 'b', token: 2 }, { holder: 'a', token: 1 })).toBe(true);
    expect(supersedes({ holder: null, token: 1 }, { holder: 'b', token: 2 })).toBe(false);
    expect(supersedes({ holder: 'a', token: 1 }, { holder: 'b', token: 2 })).toBe(false);
    // The step-down an older hearth published.
    expect(supersedes({ holder: null, token: 0 }, { holder: 'b', token: 2 })).toBe(false);
    expect(supersedes({ holder: null, token: 2 }, { holder: 'b', token: 2 })).toBe(true);
    expect(supersedes({ holder: 'b', token: 2 }, { holder: 'b', token: 2 })).toBe(true);
    // A term's holder re-sent after its step-down, or a stranger claiming its token.
    expect(supersedes({ holder: 'b', token: 2 }, { holder: null, token: 2 })).toBe(false);
    expect(supersedes({ holder: 'c', token: 2 }, { holder: 'b', token: 2 })).toBe(false);
  });
});

const declared = new Map<string, DeclaredEntity>([
  [
    'lamp',
    { decl: { id: 'lamp', kind: 'switch', name: 'Lamp', timeoutMs: 1000 }, agent: 'main', driver: 'wemo' },
  ],
]);

function lamp(over: Partial<EntityView> = {}): EntityView {
  return {
    id: 'lamp',
    kind: 'switch',
    name: 'Lamp',
    driver: 'wemo',
    state: 'on',
    available: true,
    reason: null,
    updatedAt: '2026-11-30T00:00:00.000Z',
    commands: ['on', 'off', 'toggle'],
    attributes: {},
    ...over,
  };
}

describe.skipIf(mosquittoMissing)('fencing against a real Mosquitto', () => {
  let broker: TestMosquitto;
  const opened: MqttLink[] = [];
  const stops: Array<() => void> = [];

  const link = async (clientId: string): Promise<MqttLink> => {
    const l = new MqttLink({ url: broker.url, clientId, reconnectMinMs: 50, reconnectMaxMs: 300 }).start();
    opened.push(l);
    await l.whenUp(5000);
    return l;
  };
  /** A mirror of agent `main`'s entities fed from the broker, as an api replica has. */
  const replica = async (clientId: string) => {
    const l = await link(clientId);
    const mirror = new EntityMirror({ declared });
    stops.push(feedMirror(l, mirror, ['main']));
    return mirror;
  };
  const leaderTopic = (l: MqttLink) => l.topics.leader('agent-main');

  beforeAll(async () => {
    broker = await TestMosquitto.start();
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
    await Promise.all(opened.splice(0).map((l) => l.stop()));
    // Each test starts from an empty broker: clear what the agents left retained.
    const sweep = await link('sweeper');
    for (const t of [
      leaderTopic(sweep),
      sweep.topics.state('lamp'),
      sweep.topics.state('sentinel'),
      sweep.topics.backup,
    ])
      sweep.publish(t, '', { retain: true });
    await sweep.publishNow(sweep.topics.state('sentinel'), '', { retain: true });
    await sweep.stop();
    opened.length = 0;
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it("a replica ignores a deposed leader's late record, step-down, views and events; a term's own end is taken", async () => {
    const mirror = await replica('replica');
    const changes: BusEvents['entity.state'][] = [];
    mirror.bus.on('entity.state', (e) => changes.push(e));
    const old = await link('agent-old');
    const next = await link('agent-new');

    old.publish(old.topics.state('lamp'), { ...lamp({ state: 'on' }), fence: 1 }, { retain: true });
    old.publish(leaderTopic(old), { holder: 'agent-old', token: 1 }, { retain: true });
    await waitUntil(() => mirror.get('lamp')?.available === true, 5000, 'the first term to show the lamp');
    // The successor: its view (before its record, as an agent publishes them), then its record.
    next.publish(next.topics.state('lamp'), { ...lamp({ state: 'off' }), fence: 2 }, { retain: true });
    next.publish(leaderTopic(next), { holder: 'agent-new', token: 2 }, { retain: true });
    await waitUntil(() => mirror.get('lamp')?.state === 'off', 5000, "the successor's view");

    // The old leader wakes from a SIGSTOP and says everything it would have said.
    old.publish(old.topics.event('lamp'), {
      type: 'state',
      view: lamp({ state: 'on' }),
      previous: 'off',
      fence: 1,
    });
    old.publish(
      old.topics.state('lamp'),
      { ...lamp({ available: false, reason: 'the hearth agent "main" stepped down' }), fence: 1 },
      { retain: true },
    );
    old.publish(leaderTopic(old), { holder: null, token: 1 }, { retain: true });
    // The step-down of an older hearth, and a record cleared by hand: neither ends the new term.
    old.publish(leaderTopic(old), { holder: null, token: 0 }, { retain: true });
    old.publish(leaderTopic(old), '', { retain: true });
    old.publish(old.topics.state('lamp'), lamp({ state: 'on', available: false, reason: 'unfenced' }));
    // Then a button from the same connection: once it is here, all of the above has been handled.
    const sentinel = lamp({ id: 'sentinel', kind: 'button', driver: 'hearth', commands: ['on', 'off'] });
    old.publish(old.topics.state('sentinel'), sentinel);
    await waitUntil(() => mirror.get('sentinel') !== undefined, 5000, 'the sentinel');

    expect(mirror.get('lamp')).toMatchObject({ state: 'off', available: true, reason: null });
    expect(changes.filter((e) => e.id === 'lamp')).toEqual([]);

    // The successor stops, and no one takes over: its own term's end is taken, with a reason.
    next.publish(leaderTopic(next), { holder: null, token: 2 }, { retain: true });
    await waitUntil(() => mirror.get('lamp')?.available === false, 5000, 'the lamp to be unavailable');
    expect(mirror.get('lamp')?.reason).toBe('no hearth agent "main" is running');
  });

  it("an api replica shows the newest controller term's backups; a deposed controller's late status is ignored and said over", async () => {
    const status = (newest: string): BackupStatus => ({
      every: '1d',
      newest: { name: newest, at: '2026-12-01T00:00:00.000Z', bytes: 1000 },
      lastError: null,
      nextAt: null,
      running: false,
      stale: false,
    });
    const heard: string[] = [];
    const api = new MqttHouseLink(await link('api'), { log: silentLogger() });
    stops.push(api.onBackups((s) => heard.push(s.newest?.name ?? '')));
    const leader = new MqttHouseLink(await link('controller-new'), { log: silentLogger() });
    const term = leader.term({ lease: 'controller', token: 2 });
    term.announce();
    term.backups(status('new-term.tar.gz'));
    await waitUntil(() => heard.at(-1) === 'new-term.tar.gz', 5000, "the new term's status");

    // The deposed controller wakes and says its last status, retained.
    const old = await link('controller-old');
    old.publish(
      old.topics.backup,
      { ...status('old-term.tar.gz'), fence: 1 },
      { retain: true, remember: false },
    );
    // The leader says its own again over it; the replica never showed the old one.
    await waitUntil(
      () => heard.filter((h) => h === 'new-term.tar.gz').length >= 2,
      5000,
      'the leader to say its status again',
    );
    expect(heard).not.toContain('old-term.tar.gz');
    // A replica that connects now reads the new term's, retained.
    const late: string[] = [];
    const lateApi = new MqttHouseLink(await link('late-api'), { log: silentLogger() });
    stops.push(lateApi.onBackups((s) => late.push(s.newest?.name ?? '')));
    await waitUntil(() => late.length > 0, 5000, 'the late replica to hear a status');
    expect(late.at(-1)).toBe('new-term.tar.gz');
  });

  it("a leader says its own again over an older term's retained words, so a replica that connects later sees its term", async () => {
    const next = await link('agent-new');
    let current = lamp({ state: 'off' });
    const term = new LeaderTerm(next, {
      lease: 'agent:main',
      token: 2,
      views: (id) => (id === 'lamp' ? current : undefined),
    });
    term.view(current);
    term.announce();

    // Every retained change of the two topics, as it reaches a subscriber.
    const watcher = await link('watcher');
    const seen: Array<{ topic: string; fence?: number; token?: number; holder?: string | null }> = [];
    for (const topic of [leaderTopic(watcher), watcher.topics.state('lamp')]) {
      watcher.subscribe(
        topic,
        (m) => {
          const body = m.payload.length === 0 ? {} : JSON.parse(m.payload.toString());
          seen.push({ topic: m.topic, ...body });
        },
        'test',
      );
    }
    const last = (topic: string) => seen.filter((s) => s.topic === topic).at(-1);
    await waitUntil(
      () => last(leaderTopic(watcher))?.token === 2 && last(watcher.topics.state('lamp'))?.fence === 2,
      5000,
      'the new term on both topics',
    );

    // A deposed leader's last words land after the new term's, retained: the broker keeps them.
    const old = await link('agent-old');
    old.publish(
      old.topics.state('lamp'),
      { ...lamp({ available: false, reason: 'the hearth agent "main" stepped down' }), fence: 1 },
      { retain: true, remember: false },
    );
    old.publish(leaderTopic(old), { holder: null, token: 1 }, { retain: true, remember: false });
    await waitUntil(
      () =>
        seen.some((s) => s.holder === null) &&
        last(leaderTopic(watcher))?.token === 2 &&
        last(watcher.topics.state('lamp'))?.fence === 2,
      5000,
      'the leader to publish its term again over the old one',
    );

    // A replica that connects now reads the broker's retained copies: the new term's.
    const late = await replica('late-replica');
    await waitUntil(
      () => late.get('lamp')?.state === 'off' && late.get('lamp')?.available === true,
      5000,
      "the late replica to show the new term's lamp, available",
    );
    expect(late.get('lamp')?.reason).toBeNull();

    // An empty retained state (someone deleted it) is answered too: the leader still runs the lamp.
    current = lamp({ state: 'on' });
    old.publish(old.topics.state('lamp'), '', { retain: true });
    await waitUntil(
      () => seen.at(-1)?.topic === watcher.topics.state('lamp') && seen.at(-1)?.fence === 2,
      5000,
      'the view published again after the delete',
    );
    expect(seen.at(-1)).toMatchObject({ state: 'on', fence: 2 });

    // Its term over: its step-down with its token, and it answers nothing any more.
    term.end([current], 'hearth is stopping');
    await waitUntil(() => last(leaderTopic(watcher))?.holder === null, 5000, 'the step-down');
    expect(last(leaderTopic(watcher))).toMatchObject({ holder: null, token: 2 });
    expect(last(watcher.topics.state('lamp'))).toMatchObject({ available: false, fence: 2 });
  });
});
