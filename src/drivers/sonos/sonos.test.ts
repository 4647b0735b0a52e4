import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fakeDriverContext } from '../../../test/support/driver-context.js';
import { silentLogger } from '../../core/log.js';
import { playChime } from './chime.js';
import { SonosClient, SonosError } from './client.js';
import { CALLS_PER_CHIME, chimeDeadlineMs, sonosConfigSchema, sonosDriver } from './index.js';
import { type SonosSimulator, startSonosSimulator } from './simulator.js';
import { actionArgs, escapeXml, formatDuration, parseDuration, unescapeXml } from './soap.js';

const open: SonosSimulator[] = [];
async function sim(opts: Parameters<typeof startSonosSimulator>[0] = {}): Promise<SonosSimulator> {
  const s = await startSonosSimulator({ clipMs: 150, ...opts });
  open.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A plain file server standing in for hearth's media route: these tests are about the speaker. */
let clips: Server;
let clipBase = '';
beforeAll(async () => {
  clips = createServer((req, res) => {
    if (req.url === '/ding.mp3') {
      res.writeHead(200, { 'Content-Type': 'audio/mpeg', 'Content-Length': 2000 });
      res.end(Buffer.alloc(2000, 0xff));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => clips.listen(0, '127.0.0.1', resolve));
  clipBase = `http://127.0.0.1:${(clips.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => clips.close(() => resolve()));
});

const clientOf = (s: SonosSimulator, timeoutMs = 2000) =>
  new SonosClient({ host: s.host, port: s.port, timeoutMs });
const actions = (s: SonosSimulator) => s.calls.map((c) => c.action);
/**
 * The calls with their arguments (InstanceID, Channel and Speed left out); the polls that follow
 * the Play of a clip (an http URI) are one `...wait`.
 */
function sequence(s: SonosSimulator): string[] {
  const out: string[] = [];
  let clip = false;
  let waiting = false;
  for (const c of s.calls) {
    if (c.action === 'GetTransportInfo' && waiting) {
      if (out.at(-1) !== '...wait') out.push('...wait');
      continue;
    }
    if (c.action === 'SetAVTransportURI') clip = /^https?:/.test(c.args.CurrentURI ?? '');
    waiting = c.action === 'Play' && clip;
    const args = Object.entries(c.args).filter(([k]) => !['InstanceID', 'Channel', 'Speed'].includes(k));
    out.push([c.action, ...args.map(([, v]) => v)].join(' '));
  }
  return out;
}

const META =
  '<DIDL-Lite xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/"><item id="Q:0/3"><dc:title>Rock &amp; "Roll" — Ünïcode</dc:title></item></DIDL-Lite>';
const QUEUE = 'x-rincon-queue:RINCON_000E58A0B1C201400#0';

describe('soap texts', () => {
  it('escapes and unescapes XML, numeric references included', () => {
    const text = `a<b>&"c"'d' ${META}`;
    expect(unescapeXml(escapeXml(text))).toBe(text);
    expect(escapeXml('x-sonos-spotify:spotify%3atrack%3a1?sid=9&flags=8224')).toBe(
      'x-sonos-spotify:spotify%3atrack%3a1?sid=9&amp;flags=8224',
    );
    expect(unescapeXml('&#65;&#x42;&amp;lt;')).toBe('AB&lt;');
  });

  it('reads arguments, empty and self-closing ones too', () => {
    const args = actionArgs(
      '<s:Body><u:Seek xmlns:u="x"><InstanceID>0</InstanceID><Unit>REL_TIME</Unit><Target/><X></X></u:Seek></s:Body>',
      'Seek',
    );
    expect(Object.fromEntries(args ?? [])).toEqual({ InstanceID: '0', Unit: 'REL_TIME', Target: '', X: '' });
  });

  it('converts H:MM:SS both ways', () => {
    expect(parseDuration('0:01:23')).toBe(83);
    expect(parseDuration('1:00:00.000')).toBe(3600);
    expect(parseDuration('NOT_IMPLEMENTED')).toBeUndefined();
    expect(formatDuration(83.9)).toBe('0:01:23');
    expect(formatDuration(3725)).toBe('1:02:05');
  });
});

describe('SonosClient against the simulator', () => {
  it('reads transport, media, position and volume', async () => {
    const s = await sim();
    s.load({
      uri: QUEUE,
      metadata: META,
      nrTracks: 12,
      track: 3,
      position: 83,
      volume: 25,
      transport: 'PLAYING',
    });
    const c = clientOf(s);
    expect(await c.getTransportInfo()).toEqual({ state: 'PLAYING', status: 'OK' });
    expect(await c.getMediaInfo()).toEqual({
      uri: QUEUE,
      metadata: META,
      nrTracks: 12,
      mediaDuration: 'NOT_IMPLEMENTED',
    });
    const pos = await c.getPositionInfo();
    expect(pos).toMatchObject({
      track: 3,
      trackDuration: '0:04:00',
      trackUri: 'x-file-cifs://nas/music/track3.flac',
    });
    expect(parseDuration(pos.relTime)).toBeGreaterThanOrEqual(83);
    expect(await c.getVolume()).toBe(25);
  });

  it('sends the headers zone players expect and escapes URIs and metadata', async () => {
    const s = await sim();
    const c = clientOf(s);
    const uri = 'x-sonos-spotify:spotify%3atrack%3a4iV5W9uYEdYUVa79Axb7Rh?sid=9&flags=8224&sn=1';
    await c.setAVTransportURI(uri, META);
    await c.setVolume(33);
    expect(s.calls.map((k) => [k.action, k.headers])).toEqual([
      [
        'SetAVTransportURI',
        {
          soapaction: '"urn:schemas-upnp-org:service:AVTransport:1#SetAVTransportURI"',
          contentType: 'text/xml; charset="utf-8"',
        },
      ],
      [
        'SetVolume',
        {
          soapaction: '"urn:schemas-upnp-org:service:RenderingControl:1#SetVolume"',
          contentType: 'text/xml; charset="utf-8"',
        },
      ],
    ]);
    expect(s.calls[0]?.args).toEqual({ InstanceID: '0', CurrentURI: uri, CurrentURIMetaData: META });
    expect(s.calls[1]?.args).toEqual({ InstanceID: '0', Channel: 'Master', DesiredVolume: '33' });
    // What went in comes back out byte for byte: that is what a restore depends on.
    expect(await c.getMediaInfo()).toMatchObject({ uri, metadata: META });
  });

  it('turns a SOAP fault into one line with the UPnP error code', async () => {
    const s = await sim();
    s.load({ uri: QUEUE, transport: 'STOPPED' });
    s.faults.Seek = 711;
    const err = (await clientOf(s)
      .seek('REL_TIME', '0:00:10')
      .catch((e: unknown) => e)) as SonosError;
    expect(err).toBeInstanceOf(SonosError);
    expect(err.message).toBe(`sonos 127.0.0.1:${s.port} Seek failed: UPnP error 711 (illegal seek target)`);
    expect(err.upnpError).toBe(711);
    // The simulator refuses what a speaker refuses: a pause while stopped.
    await expect(clientOf(s).pause()).rejects.toThrow(
      'Pause failed: UPnP error 701 (transition not available)',
    );
    await s.setMode('error');
    await expect(clientOf(s).getVolume()).rejects.toThrow('GetVolume failed: UPnP error 501 (action failed)');
  });

  it('gives up on a hung speaker at its timeout and closes the socket', async () => {
    const s = await sim();
    await s.setMode('hang');
    const started = Date.now();
    const err = (await clientOf(s, 250)
      .getTransportInfo()
      .catch((e: unknown) => e)) as SonosError;
    const took = Date.now() - started;
    expect(err.code).toBe('ETIMEDOUT');
    expect(err.message).toBe(
      `sonos 127.0.0.1:${s.port} did not answer GetTransportInfo within 250 ms; is the speaker on and on the network?`,
    );
    expect(took).toBeGreaterThanOrEqual(200);
    expect(took).toBeLessThan(1500);
    await expect.poll(() => s.connections).toBe(0);
  });

  it('rejects at once with the reason of an aborted signal', async () => {
    const s = await sim();
    await s.setMode('hang');
    const ac = new AbortController();
    const pending = clientOf(s).getVolume(ac.signal);
    await expect.poll(() => s.calls.length).toBe(1);
    ac.abort(new Error('hearth is stopping'));
    await expect(pending).rejects.toThrow('hearth is stopping');
  });

  it('says clearly that a speaker is off the network, and finds it again when it is back', async () => {
    const s = await sim();
    await s.setMode('down');
    const err = (await clientOf(s)
      .getTransportInfo()
      .catch((e: unknown) => e)) as SonosError;
    expect(err.message).toBe(
      `sonos 127.0.0.1:${s.port} refused the connection; is it a Sonos speaker, at this address?`,
    );
    expect(err.code).toBe('ECONNREFUSED');
    await s.setMode('ok');
    expect((await clientOf(s).getTransportInfo()).state).toBe('STOPPED');
  });
});

describe('playChime', () => {
  const chime = (s: SonosSimulator, extra: Partial<Parameters<typeof playChime>[1]> = {}) =>
    playChime(clientOf(s), {
      uri: `${clipBase}/ding.mp3`,
      metadata: '',
      volume: 40,
      maxMs: 5000,
      pollMs: 50,
      signal: AbortSignal.timeout(10_000),
      ...extra,
    });

  it('snapshots, pauses, plays at the chime volume, waits, and restores track, position, volume and playback', async () => {
    const s = await sim();
    s.load({
      uri: QUEUE,
      metadata: META,
      nrTracks: 12,
      track: 3,
      position: 83,
      volume: 25,
      transport: 'PLAYING',
    });
    const outcome = await chime(s);
    expect(outcome.cut).toBe(false);
    const [pauseAt] = [s.chimes[0]?.before.position];
    expect(sequence(s)).toEqual([
      'GetTransportInfo',
      'GetMediaInfo',
      'GetVolume',
      'Pause',
      'GetPositionInfo',
      'SetVolume 40',
      `SetAVTransportURI ${clipBase}/ding.mp3 `,
      'Play',
      '...wait',
      `SetAVTransportURI ${QUEUE} ${META}`,
      'Seek TRACK_NR 3',
      `Seek REL_TIME ${formatDuration(pauseAt ?? -1)}`,
      'SetVolume 25',
      'Play',
    ]);
    const played = s.chimes[0];
    expect(played?.volume).toBe(40);
    expect(played?.fetched).toMatchObject({ status: 200, contentType: 'audio/mpeg', bytes: 2000 });
    expect(played?.after).toEqual(played?.before);
    expect(s.restored).toBe(true);
    expect(s.state).toMatchObject({ uri: QUEUE, track: 3, volume: 25, playing: true, transport: 'PLAYING' });
  });

  it('leaves a group member in its group: no pause, no seek, the x-rincon URI put back', async () => {
    const s = await sim();
    const group = 'x-rincon:RINCON_000E58C0FFEE01400';
    s.load({ uri: group, trackDuration: 0, volume: 18, transport: 'PLAYING' });
    await chime(s);
    expect(sequence(s)).toEqual([
      'GetTransportInfo',
      'GetMediaInfo',
      'GetVolume',
      'GetPositionInfo',
      'SetVolume 40',
      `SetAVTransportURI ${clipBase}/ding.mp3 `,
      'Play',
      '...wait',
      `SetAVTransportURI ${group} `,
      'SetVolume 18',
    ]);
    expect(s.restored).toBe(true);
    expect(s.state.playing).toBe(true);
  });

  it('does not seek in a radio stream', async () => {
    const s = await sim();
    const radio = 'x-sonosapi-stream:s17488?sid=254&flags=8224&sn=0';
    s.load({ uri: radio, trackDuration: 0, position: 500, volume: 30, transport: 'PLAYING' });
    await chime(s);
    expect(actions(s)).not.toContain('Seek');
    expect(s.restored).toBe(true);
    expect(s.state).toMatchObject({ uri: radio, playing: true, volume: 30 });
  });

  it('goes on when the source cannot pause (line-in answers 701)', async () => {
    const s = await sim();
    s.load({
      uri: 'x-rincon-stream:RINCON_000E58C0FFEE01400',
      trackDuration: 0,
      volume: 30,
      transport: 'PLAYING',
    });
    s.faults.Pause = 701;
    await chime(s);
    expect(s.chimes).toHaveLength(1);
    expect(s.state).toMatchObject({ playing: true, volume: 30 });
  });

  it('cuts a clip that plays too long, and still restores', async () => {
    const s = await sim({ clipMs: 5000 });
    s.load({ uri: QUEUE, nrTracks: 2, position: 10, volume: 25, transport: 'PLAYING' });
    const outcome = await chime(s, { maxMs: 400 });
    expect(outcome.cut).toBe(true);
    expect(outcome.playedMs).toBeLessThan(1500);
    expect(s.restored).toBe(true);
  });

  it('fails when the speaker cannot fetch the clip, saying what to check, and restores', async () => {
    const s = await sim();
    s.load({ uri: QUEUE, nrTracks: 2, position: 10, volume: 25, transport: 'PLAYING' });
    const err = (await chime(s, { uri: `${clipBase}/missing.mp3`, startMs: 300 }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(err.message).toMatch(
      /did not start playing .*missing\.mp3 within 300 ms \(it is STOPPED, ERROR_OCCURRED\)/,
    );
    expect(err.message).toMatch(/media\.baseUrl/);
    expect(s.chimes[0]?.fetched?.status).toBe(404);
    expect(s.restored).toBe(true);
  });

  it('still restores the volume and playback when the seek fails, and says so', async () => {
    const s = await sim();
    s.load({ uri: QUEUE, nrTracks: 2, position: 10, volume: 25, transport: 'PLAYING' });
    s.faults.Seek = 711;
    const err = (await chime(s).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(
      /^the chime played, but restoring the position 0:00:1\d failed: .*UPnP error 711/,
    );
    expect(s.state).toMatchObject({ uri: QUEUE, volume: 25, playing: true });
  });

  it('makes no change when the snapshot fails', async () => {
    const s = await sim();
    s.faults.GetVolume = 501;
    await expect(chime(s)).rejects.toThrow('GetVolume failed: UPnP error 501');
    expect(actions(s)).toEqual(['GetTransportInfo', 'GetMediaInfo', 'GetVolume']);
  });
});

describe('sonosDriver', () => {
  it('validates config: defaults, name from id, strict keys', () => {
    const ok = sonosConfigSchema.parse({ id: 'kitchen', kind: 'sonos/v1', address: '192.168.1.50' });
    expect(ok).toEqual({
      id: 'kitchen',
      kind: 'sonos/v1',
      name: 'kitchen',
      address: '192.168.1.50',
      port: 1400,
      volume: 40,
      maxChimeSeconds: 30,
      simulate: false,
      timeoutMs: 2000,
      pollSeconds: 10,
      clips: [],
    });
    expect(
      sonosConfigSchema.safeParse({ id: 'k', kind: 'sonos/v1', address: '192.168.1.50', volum: 3 }).success,
    ).toBe(false);
    expect(
      sonosConfigSchema.safeParse({ id: 'k', kind: 'sonos/v1', address: '192.168.1.50', volume: 101 })
        .success,
    ).toBe(false);
    // The runtime's deadline for a whole chime covers the clip's cap and every call at its own deadline.
    expect(chimeDeadlineMs(ok)).toBe(30_000 + CALLS_PER_CHIME * 2000);
  });

  it('offers its clips by name: a file of the media folder, named after it unless named', () => {
    const base = { id: 'hall', kind: 'sonos/v1', name: 'Hall', address: '192.168.1.50' };
    const c = sonosConfigSchema.parse({
      ...base,
      clips: ['door_bell-2.mp3', { media: 'Glocke Küche.mp3', name: 'Glocke' }],
    });
    const clips = [
      { media: 'door_bell-2.mp3', name: 'door bell 2' },
      { media: 'Glocke Küche.mp3', name: 'Glocke' },
    ];
    expect(c.clips).toEqual(clips);
    expect(sonosDriver.entities(c)[0]?.attributes).toEqual({ volume: 40, clips });
    // No clips, no attribute: the entity is what it was before clips.
    expect(sonosDriver.entities(sonosConfigSchema.parse(base))[0]?.attributes).toEqual({ volume: 40 });
    const issues = (clips: unknown) => {
      const r = sonosConfigSchema.safeParse({ ...base, clips });
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues(['../etc/passwd'])).toEqual([
      'clips.0.media: must be the name of a file in the media folder, like doorbell.mp3 (no /, no leading .)',
    ]);
    expect(issues(['a.mp3', { media: 'a.mp3', name: 'A' }])).toEqual([
      'clips.1: lists a.mp3 twice; name each clip once',
    ]);
    expect(issues(Array.from({ length: 21 }, (_, i) => `${i}.mp3`))).toEqual([
      'clips: lists more than 20 clips; each becomes a button in Home Assistant',
    ]);
  });

  it('cuts a chime short when hearth stops, and stop() waits until the music is back', async () => {
    const s = await sim({ clipMs: 10_000 });
    s.load({ uri: QUEUE, nrTracks: 4, track: 2, position: 40, volume: 25, transport: 'PLAYING' });
    const config = sonosConfigSchema.parse({
      id: 'kitchen',
      kind: 'sonos/v1',
      address: s.host,
      port: s.port,
    });
    const fake = fakeDriverContext(sonosDriver, config, {
      media: {
        dir: '/media',
        has: async (file) => file === 'ding.mp3',
        url: async (file) => `${clipBase}/${file}`,
        contentType: () => 'audio/mpeg',
      },
    });
    const { ctx } = fake;
    const running = await sonosDriver.setup(ctx, config);
    const chime = fake.entity('kitchen', 'chime');
    const { play } = chime.handlers;
    await expect(play({ media: 'other.mp3' }, { signal: AbortSignal.timeout(5000) })).rejects.toThrow(
      'no chime "other.mp3" in the media folder /media',
    );
    const playing = play({ media: 'ding.mp3' }, { signal: AbortSignal.timeout(60_000) });
    await expect.poll(() => `${s.state.transport} ${s.state.uri}`).toBe(`PLAYING ${clipBase}/ding.mp3`);
    fake.controller.abort(new Error('hearth is stopping'));
    await running.stop();
    expect(s.restored).toBe(true);
    expect(s.state).toMatchObject({ uri: QUEUE, track: 2, volume: 25, playing: true });
    expect(await playing).toBe('idle');
    expect(chime.states).toEqual(['playing', 'idle']);
  });

  it('starts its simulator through the Simulator contract', async () => {
    const handle = await sonosDriver.simulator?.start({
      host: '127.0.0.1',
      port: 0,
      path: '',
      log: silentLogger(),
    });
    if (!handle) throw new Error('sonos has a simulator');
    try {
      expect(sonosDriver.simulator?.defaultPort).toBe(1400);
      const c = new SonosClient({ host: handle.host ?? '', port: handle.port ?? 0 });
      await c.setVolume(12);
      expect(await c.getVolume()).toBe(12);
    } finally {
      await handle.close();
    }
  });
});
