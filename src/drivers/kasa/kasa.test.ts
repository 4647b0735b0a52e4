import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeDriverContext } from '../../../test/support/driver-context.js';
import { letTimePass } from '../../../test/support/wait.js';
import type { CallContext, CommandHandlers, EntitySpec } from '../../core/driver.js';
import { silentLogger } from '../../core/log.js';
import { KasaClient } from './client.js';
import { type KasaConfig, kasaDriver } from './index.js';
import { decrypt, encodeFrame, encrypt, FrameDecoder, FrameTooLargeError } from './protocol.js';
import { type KasaSimulator, simulator, startKasaSimulator } from './simulator.js';

const GET_SYSINFO = '{"system":{"get_sysinfo":{}}}';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function sim(opts: Parameters<typeof startKasaSimulator>[0] = {}): Promise<KasaSimulator> {
  const s = await startKasaSimulator(opts);
  cleanups.push(() => s.close());
  return s;
}

function deadline(ms = 2000): AbortSignal {
  return AbortSignal.timeout(ms);
}

/** A port nothing listens on: bind one, then close it. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Sends raw bytes to a peer in separate writes and returns the first whole reply. */
async function sendChunks(port: number, chunks: Buffer[]): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const decoder = new FrameDecoder();
  const reply = new Promise<string>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      const [frame] = decoder.push(chunk);
      if (frame) resolve(frame.toString('utf8'));
    });
    socket.on('close', () => reject(new Error('closed before a reply')));
  });
  for (const chunk of chunks) {
    socket.write(chunk);
    // Pacing, not synchronisation: spaced out, the peer most likely reads each chunk on its own
    // rather than one coalesced buffer. Read together, the reply is the same.
    await letTimePass(10);
  }
  try {
    return await reply;
  } finally {
    socket.destroy();
  }
}

/** A DriverContext double that keeps what the driver registered. */
function fakeContext(config: KasaConfig) {
  const { ctx, added, controller } = fakeDriverContext(kasaDriver, config);
  return {
    ctx,
    added: added as unknown as Array<{ spec: EntitySpec<'switch'>; handlers: CommandHandlers<'switch'> }>,
    controller,
  };
}

async function setupDriver(config: Record<string, unknown>) {
  const parsed = kasaDriver.configSchema.parse(config);
  const { ctx, added, controller } = fakeContext(parsed);
  const running = await kasaDriver.setup(ctx, parsed);
  cleanups.push(() => running.stop());
  expect(added).toHaveLength(1);
  const entity = added[0] as (typeof added)[number];
  return { entity, controller };
}

const call = (ms = 2000): CallContext => ({ signal: deadline(ms) });

describe('kasa protocol codec', () => {
  it('encrypts with the XOR autokey starting at 0xAB', () => {
    const cipher = encrypt(GET_SYSINFO);
    expect([...cipher.subarray(0, 8)]).toEqual([0xd0, 0xf2, 0x81, 0xf8, 0x8b, 0xff, 0x9a, 0xf7]);
    expect(cipher).toHaveLength(GET_SYSINFO.length);
    expect(decrypt(cipher).toString('utf8')).toBe(GET_SYSINFO);
  });

  it('round-trips any bytes, UTF-8 included', () => {
    const text = '{"alias":"Küche ☕","n":[0,255]}';
    expect(decrypt(encrypt(text)).toString('utf8')).toBe(text);
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(Buffer.compare(decrypt(encrypt(bytes)), bytes)).toBe(0);
  });

  it('frames with a 4-byte big-endian length', () => {
    const frame = encodeFrame(GET_SYSINFO);
    expect(frame.readUInt32BE(0)).toBe(GET_SYSINFO.length);
    expect(frame[4]).toBe(0xd0);
    expect(frame).toHaveLength(4 + GET_SYSINFO.length);
  });

  it('reassembles frames split anywhere, and several in one chunk', () => {
    const a = encodeFrame(GET_SYSINFO);
    const b = encodeFrame('{"system":{"set_relay_state":{"state":1}}}');
    const all = Buffer.concat([a, b]);
    for (let cut = 1; cut < all.length; cut++) {
      const decoder = new FrameDecoder();
      const got = [...decoder.push(all.subarray(0, cut)), ...decoder.push(all.subarray(cut))];
      expect(got.map((f) => f.toString('utf8'))).toEqual([
        GET_SYSINFO,
        '{"system":{"set_relay_state":{"state":1}}}',
      ]);
      expect(decoder.pendingBytes).toBe(0);
    }
    const decoder = new FrameDecoder();
    const byteByByte = [...all].flatMap((byte) => decoder.push(Buffer.from([byte])));
    expect(byteByByte).toHaveLength(2);
  });

  it('refuses a header that announces more than the cap', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1024 });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025, 0);
    expect(() => decoder.push(header)).toThrow(FrameTooLargeError);
  });
});

describe('kasa simulator', () => {
  it('answers a request split across TCP chunks', async () => {
    const s = await sim({ initial: true });
    const frame = encodeFrame(GET_SYSINFO);
    const reply = await sendChunks(s.port, [frame.subarray(0, 2), frame.subarray(2, 9), frame.subarray(9)]);
    const info = JSON.parse(reply).system.get_sysinfo;
    expect(info.model).toBe('HS103(US)');
    expect(info.relay_state).toBe(1);
    expect(info.err_code).toBe(0);
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]?.request).toEqual({ system: { get_sysinfo: {} } });
  });

  it('refuses unknown modules and methods like a device', async () => {
    const s = await sim();
    const reply = await sendChunks(s.port, [
      encodeFrame('{"emeter":{"get_realtime":{}},"system":{"reboot":{}}}'),
    ]);
    expect(JSON.parse(reply)).toEqual({
      emeter: { err_code: -1, err_msg: 'module not support' },
      system: { reboot: { err_code: -2, err_msg: 'member not support' } },
    });
  });

  it('keeps only the last 1000 calls', async () => {
    const s = await sim();
    const many = Array.from({ length: 1005 }, () => encodeFrame(GET_SYSINFO));
    // One big write: the replies are read until the 1005th arrives.
    const socket = connect({ host: '127.0.0.1', port: s.port });
    const decoder = new FrameDecoder();
    let replies = 0;
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        replies += decoder.push(chunk).length;
        if (replies === 1005) resolve();
      });
      socket.write(Buffer.concat(many));
    });
    socket.destroy();
    expect(s.calls).toHaveLength(1000);
  });

  it('starts through the Simulator entry on an ephemeral port', async () => {
    const handle = await simulator.start({ host: '127.0.0.1', port: 0, path: '', log: silentLogger() });
    cleanups.push(() => handle.close());
    expect(handle.port).toBeGreaterThan(0);
    const client = new KasaClient({ host: handle.host ?? '', port: handle.port ?? 0 });
    expect(await client.getState(deadline())).toBe(false);
  });
});

describe('KasaClient', () => {
  it('reads and sets a plug', async () => {
    const s = await sim({ model: 'plug', initial: false });
    const client = new KasaClient({ host: s.host, port: s.port });
    expect(await client.getState(deadline())).toBe(false);
    expect(client.deviceType).toBe('plug');

    expect(await client.setState(true, deadline())).toBe(true);
    expect(s.on).toBe(true);
    expect(s.calls.at(-1)?.request).toEqual({ system: { set_relay_state: { state: 1 } } });
    expect(await client.getState(deadline())).toBe(true);

    expect(await client.setState(false, deadline())).toBe(false);
    expect(s.on).toBe(false);
  });

  it('reads and sets a bulb through the lighting service', async () => {
    const s = await sim({ model: 'bulb', initial: true });
    const client = new KasaClient({ host: s.host, port: s.port });
    expect(await client.getState(deadline())).toBe(true);
    expect(client.deviceType).toBe('bulb');

    expect(await client.setState(false, deadline())).toBe(false);
    expect(s.on).toBe(false);
    expect(s.calls.at(-1)?.request).toEqual({
      'smartlife.iot.smartbulb.lightingservice': { transition_light_state: { on_off: 0 } },
    });
    expect(await client.getState(deadline())).toBe(false);
    expect(await client.setState(true, deadline())).toBe(true);
    expect(s.on).toBe(true);
  });

  it('learns the type before the first set of a fresh client', async () => {
    const s = await sim({ model: 'bulb', initial: false });
    const client = new KasaClient({ host: s.host, port: s.port });
    expect(await client.setState(true, deadline())).toBe(true);
    expect(s.on).toBe(true);
    expect(s.calls.map((c) => Object.keys(c.request as object)[0])).toEqual([
      'system',
      'smartlife.iot.smartbulb.lightingservice',
    ]);
    // Once known, a set is one connection.
    await client.setState(false, deadline());
    expect(s.calls).toHaveLength(3);
  });

  it('turns a non-zero err_code into an error', async () => {
    const s = await sim({ model: 'bulb' });
    const client = new KasaClient({ host: s.host, port: s.port });
    // A plug's command sent to a bulb, as a client that guessed wrong would.
    const priv = client as unknown as {
      request(m: string, f: string, a: object, s: AbortSignal): Promise<unknown>;
    };
    await expect(priv.request('system', 'set_relay_state', { state: 1 }, deadline())).rejects.toThrow(
      `kasa 127.0.0.1:${s.port} answered err_code -2: member not support`,
    );
    await expect(priv.request('emeter', 'get_realtime', {}, deadline())).rejects.toThrow(
      `kasa 127.0.0.1:${s.port} answered err_code -1: module not support`,
    );
  });

  it('reports a reply that is not JSON', async () => {
    const s = await sim();
    s.mode = 'garbage';
    const client = new KasaClient({ host: s.host, port: s.port });
    await expect(client.getState(deadline())).rejects.toThrow(
      `kasa 127.0.0.1:${s.port} sent a reply that is not JSON`,
    );
  });

  it('reports a connection closed before a whole reply', async () => {
    const s = await sim();
    s.mode = 'close';
    const client = new KasaClient({ host: s.host, port: s.port });
    await expect(client.getState(deadline())).rejects.toThrow(
      `kasa 127.0.0.1:${s.port} closed the connection before a whole reply`,
    );
    expect(s.calls).toHaveLength(1);
  });

  it('rejects promptly when a hung device passes the deadline, and frees the socket', async () => {
    const s = await sim();
    s.mode = 'hang';
    const client = new KasaClient({ host: s.host, port: s.port });
    const started = performance.now();
    const err = await client.getState(AbortSignal.timeout(200)).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`kasa 127.0.0.1:${s.port} did not answer: the deadline passed`);
    expect((err as Error).name).toBe('TimeoutError');
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1000);
    expect(s.calls).toHaveLength(1);
    // The client destroyed its socket, so the simulator sees the hung connection go.
    await expect.poll(() => (s as unknown as { sockets: Set<unknown> }).sockets.size).toBe(0);
  });

  it('rejects at once on an already aborted signal, without connecting', async () => {
    const s = await sim();
    const client = new KasaClient({ host: s.host, port: s.port });
    await expect(client.getState(AbortSignal.abort())).rejects.toThrow(/did not answer: aborted/);
    // The marker: a request made after it, answered; the aborted one, had it connected, was first.
    await client.getState(deadline());
    expect(s.calls).toHaveLength(1);
  });

  it('reports a refused connection', async () => {
    const port = await freePort();
    const client = new KasaClient({ host: '127.0.0.1', port });
    await expect(client.getState(deadline())).rejects.toThrow(
      `kasa 127.0.0.1:${port} refused the connection (ECONNREFUSED)`,
    );
  });

  it('refuses a reply longer than the cap', async () => {
    // A stray service that announces 2 GiB and keeps the connection open.
    const sockets: Socket[] = [];
    const server: Server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      const header = Buffer.alloc(4);
      header.writeUInt32BE(0x7fff_ffff, 0);
      socket.write(header);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        }),
    );
    const { port } = server.address() as { port: number };
    const client = new KasaClient({ host: '127.0.0.1', port });
    await expect(client.getState(deadline())).rejects.toThrow(
      `kasa 127.0.0.1:${port} announced a message of 2147483647 bytes, more than the 65536 accepted`,
    );
  });
});

describe('kasa driver', () => {
  it('validates its config strictly and fills defaults', () => {
    const ok = kasaDriver.configSchema.parse({ id: 'lamp', kind: 'kasa/v1', address: '10.0.0.7' });
    expect(ok).toEqual({
      id: 'lamp',
      kind: 'kasa/v1',
      name: 'lamp',
      address: '10.0.0.7',
      port: 9999,
      simulate: false,
      timeoutMs: 2000,
      pollSeconds: 10,
    });
    const typo = kasaDriver.configSchema.safeParse({
      id: 'lamp',
      kind: 'kasa/v1',
      address: 'x',
      adress: 'y',
    });
    expect(typo.success).toBe(false);
    expect(kasaDriver.configSchema.safeParse({ id: 'lamp', kind: 'wemo/v1', address: 'x' }).success).toBe(
      false,
    );
    expect(kasaDriver.configSchema.safeParse({ id: 'lamp', kind: 'kasa/v1', address: 'a b' }).success).toBe(
      false,
    );
  });

  it('adds one switch entity without contacting the device', async () => {
    const s = await sim();
    const { entity } = await setupDriver({
      id: 'porch',
      kind: 'kasa/v1',
      name: 'Porch light',
      address: s.host,
      port: s.port,
      timeoutMs: 1500,
      pollSeconds: 5,
    });
    expect(entity.spec).toMatchObject({
      id: 'porch',
      kind: 'switch',
      name: 'Porch light',
      timeoutMs: 1500,
      pollMs: 5000,
    });
    expect(Object.keys(entity.handlers).sort()).toEqual(['off', 'on', 'toggle']);
    expect(s.calls).toHaveLength(0);
  });

  it('gets an entity for an unreachable plug, and its calls fail with a clear error', async () => {
    const port = await freePort();
    const { entity } = await setupDriver({ id: 'gone', kind: 'kasa/v1', address: '127.0.0.1', port });
    const err = await entity.handlers.on({}, call()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(`kasa 127.0.0.1:${port} refused the connection (ECONNREFUSED)`);
  });

  it('switches a plug on and off and reads it back', async () => {
    const s = await sim({ model: 'plug', initial: false });
    const { entity } = await setupDriver({ id: 'lamp', kind: 'kasa/v1', address: s.host, port: s.port });
    expect(await entity.spec.read?.(call())).toBe('off');
    expect(await entity.handlers.on({}, call())).toBe('on');
    expect(s.on).toBe(true);
    expect(await entity.spec.read?.(call())).toBe('on');
    expect(await entity.handlers.off({}, call())).toBe('off');
    expect(s.on).toBe(false);
  });

  for (const model of ['plug', 'bulb'] as const) {
    it(`toggles a ${model} both ways`, async () => {
      const s = await sim({ model, initial: true });
      const { entity } = await setupDriver({ id: 'lamp', kind: 'kasa/v1', address: s.host, port: s.port });
      expect(await entity.handlers.toggle({}, call())).toBe('off');
      expect(s.on).toBe(false);
      expect(await entity.handlers.toggle({}, call())).toBe('on');
      expect(s.on).toBe(true);
      expect(await entity.handlers.toggle({}, call())).toBe('off');
      expect(s.on).toBe(false);
      // A state changed behind hearth's back (the button on the plug) is honoured.
      s.on = true;
      expect(await entity.handlers.toggle({}, call())).toBe('off');
      expect(s.on).toBe(false);
    });
  }

  it('reports a hung device as a timeout within the deadline', async () => {
    const s = await sim();
    s.mode = 'hang';
    const { entity } = await setupDriver({ id: 'lamp', kind: 'kasa/v1', address: s.host, port: s.port });
    const started = performance.now();
    const err = await entity.handlers.toggle({}, call(200)).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1000);
    expect((err as Error).message).toContain(`kasa 127.0.0.1:${s.port} did not answer`);
  });

  it('reports garbage from the device as a device failure', async () => {
    const s = await sim();
    s.mode = 'garbage';
    const { entity } = await setupDriver({ id: 'lamp', kind: 'kasa/v1', address: s.host, port: s.port });
    const err = await entity.spec.read?.(call()).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/sent a reply that is not JSON/);
  });

  it('closes hung connections when the simulator closes', async () => {
    const s = await startKasaSimulator();
    s.mode = 'hang';
    const client = new KasaClient({ host: s.host, port: s.port });
    const pending = client.getState(deadline(5000)).catch((e: unknown) => e);
    await expect.poll(() => s.calls.length).toBe(1);
    const started = performance.now();
    await s.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(((await pending) as Error).message).toMatch(/closed the connection before a whole reply/);
  });
});
