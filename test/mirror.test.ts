import { describe, expect, it } from 'vitest';
import type { BusEvents } from '../src/core/bus.js';
import type { EntityView } from '../src/core/runtime-api.js';
import { type DeclaredEntity, EntityMirror } from '../src/house/mirror.js';

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

  it('never lets a view of an older lease term overwrite one of a newer (fenced)', () => {
    const m = new EntityMirror({ declared });
    m.setLinkDown(null);
    m.setAgentLeader('main', 4, null);
    const { states } = record(m);
    m.apply(view('lamp', { state: 'on' }), undefined, 4);
    // The successor's view comes before its leader record: a newer term is taken at once.
    m.apply(view('lamp', { state: 'off' }), { previous: 'on' }, 5);
    expect(m.get('lamp')?.state).toBe('off');
    // The deposed leader wakes: its live report and its "stepped down" view are ignored.
    m.apply(view('lamp', { state: 'on' }), { previous: 'off' }, 4);
    m.apply(view('lamp', { available: false, reason: 'the hearth agent "main" stepped down' }), undefined, 4);
    // A view with no fence (an older hearth, a stranger) is older than any term.
    m.apply(view('lamp', { available: false, reason: 'unfenced' }));
    expect(m.get('lamp')).toMatchObject({ state: 'off', available: true, reason: null });
    expect(states.map((e) => e.state)).toEqual(['off']);
  });

  it("takes an older term's view when it is all there is, with the current leader's availability", () => {
    const m = new EntityMirror({ declared });
    m.setLinkDown(null);
    const { states, avail } = record(m);
    // A replica that connects while the broker keeps a deposed leader's last word over its successor's.
    m.setAgentLeader('main', 5, null);
    m.apply(
      view('lamp', { state: 'on', available: false, reason: 'the hearth agent "main" stepped down' }),
      {
        previous: 'off',
      },
      4,
    );
    expect(m.get('lamp')).toMatchObject({ state: 'on', available: true, reason: null });
    // Nothing of the old term is news: no state change announced.
    expect(states).toEqual([]);
    // Whether it is available is the current leader's liveness.
    m.setAgentLeader(
      'main',
      5,
      'the hearth agent "main" that ran this device went away; a standby takes over',
    );
    expect(m.get('lamp')).toMatchObject({ available: false, reason: expect.stringMatching(/went away/) });
    m.setAgentLeader('main', 5, null);
    // The leader's own view then rules, its verdict included.
    m.apply(view('lamp', { available: false, reason: 'the plug does not answer' }), undefined, 5);
    expect(m.get('lamp')).toMatchObject({ available: false, reason: 'the plug does not answer' });
    expect(avail.map((e) => [e.id, e.available])).toEqual([
      ['lamp', true],
      ['lamp', false],
      ['lamp', true],
      ['lamp', false],
    ]);
    // A newer term's record makes the view shown an older term's again.
    m.setAgentLeader('main', 6, null);
    expect(m.get('lamp')?.available).toBe(true);
    // Terms never go back.
    m.setAgentLeader('main', 2, null);
    m.apply(view('lamp', { state: 'off' }), { previous: 'on' }, 2);
    expect(m.get('lamp')?.state).toBe('on');
  });

  it("passes on an entity's announcement only from its agent's current term", () => {
    const m = new EntityMirror({ declared });
    m.setLinkDown(null);
    const events: string[] = [];
    m.bus.on('entity.event', (e) => events.push(e.event));
    m.setAgentLeader('kitchen', 3, null);
    m.apply(view('coffee', { kind: 'heater', driver: 'mrcoffeebot', state: 'off' }), undefined, 3);
    const e = (event: string) => ({ id: 'coffee', kind: 'heater' as const, event, data: {}, at: 0 });
    m.event(e('old'), 2);
    m.event(e('unfenced'));
    m.event(e('current'), 3);
    m.event(e('newer'), 4);
    expect(events).toEqual(['current', 'newer']);
  });

  it('fences no button: api replicas publish them, and no lease owns them', () => {
    const m = new EntityMirror({ declared });
    m.setLinkDown(null);
    m.setAgentLeader('main', 9, null);
    const button = view('bedside', {
      kind: 'button',
      driver: 'hearth',
      commands: ['on', 'off'],
      state: 'on',
    });
    m.apply(button);
    m.apply({ ...button, state: 'off' }, { previous: 'on' });
    expect(m.get('bedside')).toMatchObject({ state: 'off', available: true });
  });

  it('does not bring back a device found at run time and gone with an older view of it', () => {
    const m = new EntityMirror({
      declared,
      sources: [{ driver: 'zigbee2mqtt', agent: 'main', timeoutMs: 1000 }],
    });
    m.setLinkDown(null);
    m.setAgentLeader('main', 5, null);
    const remote = (fence: number) => m.apply(view('remote', { driver: 'zigbee2mqtt' }), undefined, fence);
    remote(5);
    m.forget('remote');
    // The deposed leader's last word about it, late.
    expect(remote(4)).toBe(true);
    expect(m.get('remote')).toBeUndefined();
    // The leader finds it again.
    remote(5);
    expect(m.get('remote')?.available).toBe(true);
  });
});
