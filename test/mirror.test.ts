import { describe, expect, it } from 'vitest';
import { type DeclaredEntity, EntityMirror } from '../src/cluster/mirror.js';
import type { BusEvents } from '../src/core/bus.js';
import type { EntityView } from '../src/core/runtime-api.js';

/* What an api replica or the controller knows of entities that agents run. */

const declared = new Map<string, DeclaredEntity>([
  [
    'lamp',
    { decl: { id: 'lamp', kind: 'switch', name: 'Lamp', timeoutMs: 1000 }, agent: 'main', driver: 'wemo' },
  ],
  [
    'coffee',
    {
      decl: { id: 'coffee', kind: 'heater', name: 'Pot', timeoutMs: 4250 },
      agent: 'kitchen',
      driver: 'mrcoffeebot',
    },
  ],
]);

function view(id: string, over: Partial<EntityView> = {}): EntityView {
  return {
    id,
    kind: 'switch',
    name: id,
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

function record(m: EntityMirror) {
  const states: BusEvents['entity.state'][] = [];
  const avail: BusEvents['entity.availability'][] = [];
  m.bus.on('entity.state', (e) => states.push(e));
  m.bus.on('entity.availability', (e) => avail.push(e));
  return { states, avail };
}

describe('EntityMirror', () => {
  it('knows every declared entity from the config, unavailable until its agent publishes it', () => {
    const m = new EntityMirror({ declared });
    m.setLinkDown(null);
    expect(m.list().map((v) => [v.id, v.kind, v.available, v.reason])).toEqual([
      ['lamp', 'switch', false, 'no state from the hearth agent "main" yet'],
      ['coffee', 'heater', false, 'no state from the hearth agent "kitchen" yet'],
    ]);
    expect(m.agentOf('coffee')).toBe('kitchen');
    expect(m.agentOf('bedside')).toBeUndefined();
  });

  it('takes retained views silently and announces only live changes', () => {
    const m = new EntityMirror({ declared });
    m.setLinkDown(null);
    const { states, avail } = record(m);
    expect(m.apply(view('lamp'))).toBe(true);
    expect(states).toEqual([]);
    expect(avail.map((e) => [e.id, e.available])).toEqual([['lamp', true]]);
    m.apply(view('lamp', { state: 'off' }), { previous: 'on' });
    expect(states.map((e) => [e.id, e.state, e.previous])).toEqual([['lamp', 'off', 'on']]);
    // The same state reported again live is still a change (a press of the same state).
    m.apply(view('lamp', { state: 'off' }), { previous: 'off' });
    expect(states).toHaveLength(2);
  });

  it('refuses what the config does not have: a strange entity, a wrong kind; buttons are welcome', () => {
    const m = new EntityMirror({ declared, maxEntities: 3 });
    expect(m.apply(view('garage'))).toBe(false);
    expect(m.apply(view('lamp', { kind: 'valve' }))).toBe(false);
    const button = (id: string) => view(id, { kind: 'button', driver: 'hearth', commands: ['on', 'off'] });
    expect(m.apply(button('bedside'))).toBe(true);
    // Bounded: a stranger pressing on our topics cannot make us hold without end.
    expect(m.apply(button('other'))).toBe(false);
    expect(m.get('garage')).toBeUndefined();
    m.forget('lamp');
    expect(m.get('lamp')).toBeDefined();
    m.forget('bedside');
    expect(m.get('bedside')).toBeUndefined();
  });

  it('marks the entities of an agent that went away, and every entity while the broker is away', () => {
    const m = new EntityMirror({ declared });
    m.setLinkDown(null);
    m.apply(view('lamp'));
    m.apply(view('coffee', { kind: 'heater', driver: 'mrcoffeebot', state: 'off' }));
    const { avail } = record(m);
    m.setAgentDown('kitchen', 'no hearth agent "kitchen" is running');
    expect(m.get('coffee')).toMatchObject({
      available: false,
      reason: 'no hearth agent "kitchen" is running',
    });
    expect(m.get('lamp')?.available).toBe(true);
    m.setLinkDown('the MQTT broker is unreachable');
    expect(m.get('lamp')).toMatchObject({ available: false, reason: 'the MQTT broker is unreachable' });
    m.setLinkDown(null);
    m.setAgentDown('kitchen', null);
    expect(m.list().every((v) => v.available)).toBe(true);
    expect(avail.map((e) => [e.id, e.available])).toEqual([
      ['coffee', false],
      ['lamp', false],
      ['lamp', true],
      ['coffee', true],
    ]);
  });
});
