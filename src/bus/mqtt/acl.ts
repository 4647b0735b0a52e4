import { Topics, topicId } from './topics.js';

/**
 * Who may publish and read what on the broker: one user per role of a cluster (each agent name
 * its own), and optionally Home Assistant and zigbee2mqtt, as a Mosquitto `acl_file`. `hearth
 * kube render` writes it for the in-cluster Mosquitto; docs/mqtt.md shows it for a broker of
 * your own; test/mqtt-acl.test.ts runs a cluster against it and tries every forgery it stops.
 *
 * The rule: a role may publish only what it publishes in src/mqtt-link/* (its own leader record,
 * replies, states and events for an agent; commands, run requests and button states for an api
 * replica; replies to run requests, the backup status, its leader record and hearth's public
 * topics for the controller), and other programs only their own topics and `<base>/<id>/set`.
 * A client without a user name may do nothing at all.
 */

/** The users hearth's roles connect as: `hearth-api`, `hearth-controller`, `hearth-agent-<name>`. */
export const apiUser = 'hearth-api';
export const controllerUser = 'hearth-controller';
export function agentUser(name: string): string {
  return `hearth-agent-${topicId(name, 'agent name')}`;
}
export const homeassistantUser = 'homeassistant';
export const zigbee2mqttUser = 'zigbee2mqtt';

/** The users other programs may have, from `cluster.kubernetes.mqtt.clients` or your own broker. */
export type BrokerClient = 'homeassistant' | 'zigbee2mqtt';

export interface AclInput {
  /** `mqtt.baseTopic`; default `hearth`. */
  baseTopic?: string;
  /** Every agent name the config's devices name (`agent:`; `main` when left out). */
  agents: readonly string[];
  /** Topic filters of an agent's MQTT devices (zigbee2mqtt's base, `things:` topics), by agent name. */
  deviceTopics?: Readonly<Record<string, readonly string[]>>;
  /** `homeassistant.prefix` and `nodeId`; default `homeassistant` and `hearth`. */
  homeassistant?: { prefix: string; nodeId: string };
  /** Users for other programs; zigbee2mqtt's topics are `zigbee2mqttBase` (default `zigbee2mqtt`). */
  clients?: readonly BrokerClient[];
  zigbee2mqttBase?: string;
}

export interface AclGrant {
  access: 'read' | 'write' | 'readwrite' | 'deny';
  topic: string;
  /** Why, as a comment above the line. */
  why?: string;
}

export interface BrokerUser {
  username: string;
  /** What it is, for the comment above its section. */
  what: string;
  grants: AclGrant[];
}

/** Every user of the broker with what it may do, hearth's roles first. */
export function brokerUsers(input: AclInput): BrokerUser[] {
  const t = new Topics(input.baseTopic ?? 'hearth');
  const base = t.base;
  const r = t.root;
  const ha = input.homeassistant ?? { prefix: 'homeassistant', nodeId: 'hearth' };
  const member: AclGrant = {
    access: 'readwrite',
    topic: `${r}/members/+`,
    why: 'online/offline of its own connections (the last will), read to follow the others',
  };
  const users: BrokerUser[] = [
    {
      username: apiUser,
      what: 'every api replica (hearth start --role api)',
      grants: [
        member,
        {
          access: 'readwrite',
          topic: `${r}/state/+`,
          why: "entities' states; it publishes a button's when it records a press",
        },
        { access: 'readwrite', topic: `${r}/event/+`, why: 'live state changes; it publishes presses' },
        { access: 'read', topic: `${r}/leader/+`, why: 'who leads each agent name' },
        { access: 'read', topic: `${r}/backup`, why: "the leading controller's backups, for the dashboard" },
        { access: 'write', topic: `${r}/cmd/+`, why: 'commands to the agents' },
        { access: 'write', topic: `${r}/ctl/run`, why: 'run an automation now (run button, webhook)' },
      ],
    },
    {
      username: controllerUser,
      what: 'every controller (hearth start --role controller)',
      grants: [
        member,
        {
          access: 'readwrite',
          topic: `${r}/state/+`,
          why: "entities' states; it publishes a button's when an automation or Home Assistant presses it",
        },
        { access: 'readwrite', topic: `${r}/event/+`, why: 'live state changes; it publishes presses' },
        { access: 'read', topic: `${r}/leader/+`, why: 'who leads each agent name' },
        { access: 'write', topic: `${r}/leader/controller`, why: 'its own leader record' },
        {
          access: 'readwrite',
          topic: `${r}/backup`,
          why: "how backups stand; a leader says it again over a deposed leader's",
        },
        {
          access: 'write',
          topic: `${r}/cmd/+`,
          why: "automations' and Home Assistant's commands to the agents",
        },
        { access: 'read', topic: `${r}/ctl/run`, why: 'run requests from the api replicas' },
        { access: 'write', topic: `${r}/reply/+`, why: 'replies to run requests' },
        {
          access: 'readwrite',
          topic: `${base}/+/state`,
          why: "hearth's public topics: states, and bridge/state (its second connection's last will)",
        },
        { access: 'read', topic: `${base}/+/set`, why: 'commands from Home Assistant and other tools' },
        {
          access: 'readwrite',
          topic: `${ha.prefix}/+/${ha.nodeId}/+/config`,
          why: 'Home Assistant discovery: its configs (read back at start to empty stale ones)',
        },
        {
          access: 'read',
          topic: `${ha.prefix}/status`,
          why: "Home Assistant's online: publish discovery again",
        },
      ],
    },
  ];
  for (const name of [...new Set(input.agents)].sort()) {
    users.push({
      username: agentUser(name),
      what: `the processes of agent ${name} (hearth start --role agent --agent ${name})`,
      grants: [
        member,
        {
          access: 'readwrite',
          topic: `${r}/state/+`,
          why: "the states of its devices, read back to answer an older term's with its own",
        },
        { access: 'write', topic: `${r}/event/+`, why: 'their live changes and announcements' },
        {
          access: 'readwrite',
          topic: `${r}/leader/agent-${name}`,
          why: "its own leader record, read back to answer an older term's",
        },
        { access: 'read', topic: `${r}/cmd/${name}`, why: 'commands to its devices' },
        { access: 'write', topic: `${r}/reply/+`, why: 'replies to those commands' },
        ...(input.deviceTopics?.[name] ?? []).map(
          (topic): AclGrant => ({ access: 'readwrite', topic, why: 'the topics of its MQTT devices' }),
        ),
      ],
    });
  }
  const clients = new Set(input.clients ?? []);
  const publicTopics: AclGrant[] = [
    { access: 'read', topic: `${base}/+/state`, why: "hearth's public states and bridge/state" },
  ];
  if (clients.has('homeassistant')) {
    users.push({
      username: homeassistantUser,
      what: 'Home Assistant',
      grants: [
        { access: 'read', topic: `${ha.prefix}/#`, why: 'discovery configs' },
        { access: 'write', topic: `${ha.prefix}/status`, why: 'its birth and last will' },
        ...publicTopics,
        {
          access: 'write',
          topic: `${base}/+/set`,
          why: 'commands, checked and bounded by hearth like HTTP ones',
        },
      ],
    });
  }
  if (clients.has('zigbee2mqtt')) {
    users.push({
      username: zigbee2mqttUser,
      what: 'zigbee2mqtt',
      grants: [
        { access: 'readwrite', topic: `${input.zigbee2mqttBase ?? 'zigbee2mqtt'}/#`, why: 'its own topics' },
        {
          access: 'deny',
          topic: `${ha.prefix}/+/${ha.nodeId}/#`,
          why: "hearth's discovery configs are hearth's to say (deny goes before the grant below)",
        },
        { access: 'readwrite', topic: `${ha.prefix}/#`, why: 'its own Home Assistant discovery' },
        ...publicTopics,
      ],
    });
  }
  return users;
}

/** The `acl_file` text: nothing for anonymous clients, then one section per user. */
export function aclFile(input: AclInput): string {
  const t = new Topics(input.baseTopic ?? 'hearth');
  const lines = [
    '# hearth\'s broker ACL (docs/mqtt.md, "Locking the broker"). A client without a user name',
    '# may do nothing: no line comes before the first `user`.',
    '',
    '# Any client may read the replies addressed to its own client id (and only those).',
    `pattern read ${t.root}/reply/%c`,
  ];
  for (const user of brokerUsers(input)) {
    lines.push('', `# ${user.what}`, `user ${user.username}`);
    for (const g of user.grants) {
      if (g.why) lines.push(`# ${g.why}`);
      lines.push(`topic ${g.access} ${g.topic}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
