import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBus } from '../src/core/bus.js';
import { http, post, startTestHearth, type TestHearth } from './support/hearth.js';
import { metricSample } from './support/raw-http.js';
import { until } from './support/wait.js';

/*
 * Finding 6 of the hardening issue: event streams without limits. Streams are capped per
 * listener, a client that does not read is dropped, and an event is serialised once whatever
 * the number of streams.
 */

interface Subscriber {
  socket: Socket;
  /** `event: state` frames received so far. */
  states: number;
  opened: Promise<void>;
}

/** A real socket that asks for /api/v1/events and counts the state events it receives. */
function subscribe(url: string, opts: { read?: boolean } = {}): Subscriber {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  const sub: Subscriber = { socket, states: 0, opened: Promise.resolve() };
  let tail = '';
  sub.opened = new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      if (text.includes('retry: ')) resolve();
      sub.states += text.split('event: state\n').length - 1;
      tail = text.slice(-12); // shorter than the pattern: nothing is counted twice
      if (opts.read === false) socket.pause();
    });
  });
  socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
  return sub;
}

const metrics = async (h: TestHearth) => (await http(`${h.url}/metrics`)).body;

describe('event streams: a cap per listener, and clients that do not read are dropped', () => {
  let h: TestHearth;
  let pub: string;
  const open: Subscriber[] = [];

  beforeAll(async () => {
    h = await startTestHearth(
      `buttons:
  - { id: big, name: ${'n'.repeat(200_000)} }
`,
      { http: '{ host: 127.0.0.1, port: 0, maxStreams: 3, public: { host: 127.0.0.1, port: 0 } }' },
    );
    if (!h.publicUrl) throw new Error('no public listener');
    pub = h.publicUrl;
  });

  afterAll(async () => {
    for (const s of open) s.socket.destroy();
    await h?.close();
  });

  it('serves http.maxStreams streams per listener, then 503 with Retry-After; a closed stream frees its place', async () => {
    for (let i = 0; i < 3; i++) open.push(subscribe(`${pub}/api/v1/events`));
    await Promise.all(open.map((s) => s.opened));
    const over = await http(`${pub}/api/v1/events`);
    expect(over.status).toBe(503);
    expect(over.headers.get('retry-after')).toBe('30');
    const { error } = JSON.parse(over.body);
    expect(error.code).toBe('HEARTH_ERR_TOO_MANY_STREAMS');
    expect(error.message).toContain('http.maxStreams 3');
    expect(error.hint).toContain('http.maxStreams');
    // The other listener has its own streams.
    const control = subscribe(`${h.url}/api/v1/events`);
    await control.opened;
    control.socket.destroy();
    const m = await metrics(h);
    expect(metricSample(m, 'hearth_sse_refused_total', { listener: 'public' })).toBe(1);
    expect(metricSample(m, 'hearth_sse_streams', { listener: 'public' })).toBe(3);

    open.pop()?.socket.destroy();
    await until(
      async () => metricSample(await metrics(h), 'hearth_sse_streams', { listener: 'public' }) === 2,
      {
        what: 'the closed stream to be let go',
      },
    );
    const again = subscribe(`${pub}/api/v1/events`);
    open.push(again);
    await again.opened;
  });

  it('drops a client that stops reading, and the others still get every event', async () => {
    for (const s of open.splice(0)) s.socket.destroy();
    const stuck = subscribe(`${pub}/api/v1/events`, { read: false });
    const reader = subscribe(`${pub}/api/v1/events`);
    open.push(stuck, reader);
    await Promise.all([stuck.opened, reader.opened]);
    // Each press sends the button's 200 kB name; the socket buffers of the stuck client fill,
    // then hearth's own buffer passes 1 MiB.
    let presses = 0;
    const dropped = async () =>
      metricSample(await metrics(h), 'hearth_sse_dropped_total', { listener: 'public', reason: 'buffer' }) ===
      1;
    while (!(await dropped())) {
      expect((await post(`${h.url}/api/v0/buttons/big/${presses % 2 ? 'off' : 'on'}/`)).status).toBe(200);
      presses++;
      if (presses > 400) throw new Error('a client that reads nothing was never dropped');
    }
    await until(() => reader.states === presses, {
      what: () => `the reading client to get all ${presses} events (it got ${reader.states})`,
    });
    expect(metricSample(await metrics(h), 'hearth_sse_streams', { listener: 'public' })).toBe(1);
  });
});

describe('2 000 idle event streams', () => {
  const STREAMS = 2000;
  const PRESSES = 40;
  let h: TestHearth;
  const subs: Subscriber[] = [];

  beforeAll(async () => {
    h = await startTestHearth('buttons:\n  - { id: bedside }\n', {
      // Every stream comes from 127.0.0.1: one client, allowed them all.
      http: `{ host: 127.0.0.1, port: 0, maxStreams: ${STREAMS}, maxStreamsPerClient: ${STREAMS}, maxConnectionsPerClient: ${STREAMS + 100}, public: { host: 127.0.0.1, port: 0 } }`,
    });
    const pub = h.publicUrl as string;
    // In batches, so the listen backlog never overflows.
    for (let i = 0; i < STREAMS; i += 200) {
      const batch = Array.from({ length: Math.min(200, STREAMS - i) }, () =>
        subscribe(`${pub}/api/v1/events`),
      );
      subs.push(...batch);
      await Promise.all(batch.map((s) => s.opened));
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of subs) s.socket.destroy();
    await h?.close();
  });

  it('serialises each press once, and every stream gets every press', async () => {
    const before = await metrics(h);
    expect(metricSample(before, 'hearth_sse_streams', { listener: 'public' })).toBe(STREAMS);
    const frames = (m: string) => metricSample(m, 'hearth_sse_frames_total', { listener: 'public' });
    for (let i = 0; i < PRESSES; i++) {
      const r = await post(`${h.url}/api/v0/buttons/bedside/${i % 2 ? 'off' : 'on'}/`);
      expect(r.status).toBe(200);
    }
    await until(() => subs.every((s) => s.states === PRESSES), {
      timeoutMs: 30_000,
      what: () =>
        `every stream to get all ${PRESSES} presses (${subs.filter((s) => s.states === PRESSES).length} of ${STREAMS} did)`,
    });
    // One JSON.stringify per press for all 2 000 streams, not one per stream.
    expect(frames(await metrics(h)) - frames(before)).toBe(PRESSES);
    // A stream past the cap is refused, not served.
    expect((await http(`${h.publicUrl}/api/v1/events`)).status).toBe(503);
  }, 60_000);
});

describe('LocalBus', () => {
  it('calls listeners in the order they subscribed, isolates a throwing one, and unsubscribes in O(1)', () => {
    const errors: unknown[] = [];
    const bus = new LocalBus((err) => errors.push(err));
    const calls: string[] = [];
    const at = { id: 'x', kind: 'button' as const, state: 'on', previous: 'off', at: 0 };
    const offs = Array.from({ length: 5 }, (_, i) =>
      bus.on('entity.state', () => {
        calls.push(`l${i}`);
        if (i === 1) throw new Error('broken listener');
      }),
    );
    bus.emit('entity.state', at);
    expect(calls).toEqual(['l0', 'l1', 'l2', 'l3', 'l4']);
    expect(errors).toHaveLength(1);
    offs[2]?.();
    offs[2]?.(); // twice is harmless
    calls.length = 0;
    bus.emit('entity.state', at);
    expect(calls).toEqual(['l0', 'l1', 'l3', 'l4']);
    expect(bus.listenerCount('entity.state')).toBe(4);
  });

  it('does not call a listener subscribed during an emit for that emit, and offOwner removes only its owner', () => {
    const bus = new LocalBus();
    const calls: string[] = [];
    const at = { id: 'x', kind: 'button' as const, state: 'on', previous: 'off', at: 0 };
    bus.on(
      'entity.state',
      () => {
        calls.push('a');
        bus.on('entity.state', () => calls.push('late'), 'b');
      },
      'a',
    );
    bus.on('entity.availability', () => calls.push('avail'), 'a');
    bus.on('entity.state', () => calls.push('c'), 'c');
    bus.emit('entity.state', at);
    expect(calls).toEqual(['a', 'c']);
    bus.offOwner('a');
    bus.offOwner('nobody');
    calls.length = 0;
    bus.emit('entity.state', at);
    bus.emit('entity.availability', { id: 'x', kind: 'button', available: true, reason: null, at: 0 });
    expect(calls).toEqual(['c', 'late']);
    expect(bus.listenerCount('entity.availability')).toBe(0);
  });
});
