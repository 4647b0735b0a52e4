import type { MqttLink } from '../bus/mqtt/link.js';
import { parseJson } from '../bus/mqtt/topics.js';
import { agentLease } from '../house/link.js';
import type { EntityMirror } from '../house/mirror.js';
import { supersedes } from './fence.js';
import {
  entityEventSchema,
  type LeaderRecord,
  leaderSchema,
  leaseTopicId,
  splitFence,
  stateSchema,
} from './wire.js';

/**
 * Keeps a mirror in step with what agents publish: retained views, live state reports and
 * events, who leads each agent name and whether that process is still connected. Returns the
 * function that stops it.
 *
 * Fenced (src/mqtt-link/fence.ts): of each lease it keeps the record of the newest term, so a
 * deposed leader's late record (or its step-down) never hides its successor; views and events
 * carry their term's token and the mirror weighs them against it.
 */
export function feedMirror(link: MqttLink, mirror: EntityMirror, agents: readonly string[]): () => void {
  const owner = 'mirror';
  const leaders = new Map<string, LeaderRecord>();
  const offline = new Set<string>();

  const judgeAgents = () => {
    for (const name of agents) {
      const leader = leaders.get(leaseTopicId(agentLease(name)));
      const reason =
        leader?.holder == null
          ? `no hearth agent "${name}" is running`
          : offline.has(leader.holder)
            ? `the hearth agent "${name}" that ran this device went away; a standby takes over`
            : null;
      mirror.setAgentLeader(name, leader?.token ?? 0, reason);
    }
  };
  judgeAgents();

  link.subscribe(
    link.topics.states,
    (m) => {
      const id = link.topics.idOf('state', m.topic);
      if (id === undefined) return link.countGarbage(m.topic, 'not an entity id');
      // An empty retained payload is how a state is deleted (an entity gone from the config).
      if (m.payload.length === 0) return mirror.forget(id);
      const message = parseJson(stateSchema, m.payload);
      const { view, fence } = message ? splitFence(message) : { view: undefined, fence: undefined };
      if (!view || view.id !== id || !mirror.apply(view, undefined, fence)) {
        return link.countGarbage(m.topic, 'not a view of an entity of the config');
      }
    },
    owner,
  );
  link.subscribe(
    link.topics.events,
    (m) => {
      const e = parseJson(entityEventSchema, m.payload);
      const id = link.topics.idOf('event', m.topic);
      if (!e || id === undefined || (e.type === 'state' ? e.view.id : e.id) !== id) {
        return link.countGarbage(m.topic, 'not an entity event');
      }
      if (e.type === 'state') {
        if (!mirror.apply(e.view, { previous: e.previous }, e.fence))
          link.countGarbage(m.topic, 'not an entity of the config');
      } else mirror.event({ id: e.id, kind: e.kind, event: e.event, data: e.data, at: e.at }, e.fence);
    },
    owner,
  );
  link.subscribe(
    link.topics.leaders,
    (m) => {
      const lease = link.topics.idOf('leader', m.topic);
      if (lease === undefined) return link.countGarbage(m.topic, 'not a lease');
      // An empty retained record (someone cleared the topic) says nothing of any term: the newest
      // one known stands.
      if (m.payload.length === 0) return;
      const record = parseJson(leaderSchema, m.payload);
      if (!record) return link.countGarbage(m.topic, 'not a leader record');
      // Of an older term than one already seen: a deposed leader speaking late, ignored.
      if (!supersedes(record, leaders.get(lease))) return;
      leaders.set(lease, record);
      judgeAgents();
    },
    owner,
  );
  link.subscribe(
    link.topics.members,
    (m) => {
      const id = link.topics.idOf('members', m.topic);
      if (id === undefined) return;
      if (m.payload.toString() === 'offline') offline.add(id);
      else offline.delete(id);
      judgeAgents();
    },
    owner,
  );

  const onUp = () => mirror.setLinkDown(null);
  const onDown = (reason: string) => mirror.setLinkDown(`the MQTT broker is unreachable (${reason})`);
  link.on('up', onUp);
  link.on('down', onDown);
  if (link.connected) onUp();
  return () => {
    link.offOwner(owner);
    link.off('up', onUp);
    link.off('down', onDown);
  };
}
