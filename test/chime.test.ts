/**
 * Chimes end to end: a real hearth (HTTP API, runtime, sonos driver, media route) against
 * simulated Sonos speakers over HTTP, which fetch the clip from hearth like real ones.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SonosSimulator, startSonosSimulator } from '../src/drivers/sonos/simulator.js';
import { formatDuration } from '../src/drivers/sonos/soap.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { type Answer, http, post, startTestHearth, type TestHearth, tempDir } from './support/hearth.js';

const TOKEN = 'chime-test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** A short MP3: an ID3v2 header and 10 frames of MPEG-1 Layer III, 128 kbit/s, 44.1 kHz. */
function tinyMp3(): Buffer {
  const id3 = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0]);
  const frame = Buffer.alloc(417);
  frame.set([0xff, 0xfb, 0x90, 0x64]);
  return Buffer.concat([id3, ...Array.from({ length: 10 }, () => frame)]);
}

const META =
  '<DIDL-Lite xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns="urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/">' +
  '<item id="Q:0/3" parentID="Q:0"><dc:title>Rock &amp; "Roll" — Ünïcode</dc:title></item></DIDL-Lite>';
const QUEUE = 'x-rincon-queue:RINCON_000E58A0B1C201400#0';

/**
 * The calls with their arguments (InstanceID, Channel and Speed left out); the polls that follow
 * the Play of a clip (an http URI) are one `...wait`.
 */
function sequence(calls: SonosSimulator['calls']): string[] {
  const out: string[] = [];
  let clip = false;
  let waiting = false;
  for (const c of calls) {
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

describe('chimes on Sonos speakers', () => {
  let kitchen: SonosSimulator;
  let porch: SonosSimulator;
  let lamp: WemoSimulator;
  let h: TestHearth;
  let mediaDir: string;
  const mp3 = tinyMp3();

  const play = (id: string, args: Record<string, unknown>): Promise<Answer> =>
    post(`${h.url}/api/v1/entities/${id}/commands/play`, { headers: auth, body: JSON.stringify(args) });
  const entity = async (id: string) =>
    JSON.parse((await http(`${h.url}/api/v1/entities/${id}`)).body).entity as {
      state: string;
      available: boolean;
      reason: string | null;
    };
  const errorOf = (a: Answer) => JSON.parse(a.body).error as { code: string; message: string; hint: string };

  beforeAll(async () => {
    mediaDir = tempDir('hearth-media-');
    writeFileSync(join(mediaDir, 'ding.mp3'), mp3);
    kitchen = await startSonosSimulator({ clipMs: 300 });
    porch = await startSonosSimulator({ clipMs: 300 });
    lamp = await startWemoSimulator();
    h = await startTestHearth(
      `
speakers:
  - { id: kitchen, kind: sonos/v1, name: Kitchen, address: 127.0.0.1, port: ${kitchen.port}, pollSeconds: 0 }
  - { id: porch, kind: sonos/v1, address: 127.0.0.1, port: ${porch.port}, timeoutMs: 2500, volume: 30, pollSeconds: 0 }
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
media: { dir: ${mediaDir} }
`,
      { http: `{ host: 127.0.0.1, port: 0, token: ${TOKEN} }` },
    );
  });

  afterAll(async () => {
    await h?.close();
    await Promise.all([kitchen?.close(), porch?.close(), lamp?.close()]);
    rmSync(mediaDir, { recursive: true, force: true });
  });

  beforeEach(() => {
    kitchen.calls.length = 0;
    porch.calls.length = 0;
  });

  it('plays over music: snapshot, pause, volume, URI and play, wait, then puts back URI, track, position, volume and playback', async () => {
    kitchen.load({
      uri: QUEUE,
      metadata: META,
      nrTracks: 12,
      track: 3,
      position: 83,
      volume: 25,
      transport: 'PLAYING',
    });
    const states: string[] = [];
    const off = h.runtime.subscribe((e) => {
      if (e.id === 'kitchen') states.push(String(e.state));
    });
    const res = await play('kitchen', { media: 'ding.mp3' });
    off();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).entity).toMatchObject({
      id: 'kitchen',
      kind: 'chime',
      state: 'idle',
      available: true,
    });
    expect(states).toEqual(['playing', 'idle']);

    const url = `${h.url}/api/v0/chime/ding.mp3`;
    const chime = kitchen.chimes.at(-1);
    const resumeAt = formatDuration(chime?.before.position ?? -1);
    expect(sequence(kitchen.calls)).toEqual([
      'GetTransportInfo',
      'GetMediaInfo',
      'GetVolume',
      'Pause',
      'GetPositionInfo',
      'SetVolume 40',
      `SetAVTransportURI ${url} ${kitchen.calls[6]?.args.CurrentURIMetaData}`,
      'Play',
      '...wait',
      `SetAVTransportURI ${QUEUE} ${META}`,
      'Seek TRACK_NR 3',
      `Seek REL_TIME ${resumeAt}`,
      'SetVolume 25',
      'Play',
    ]);
    // The chime's own metadata names the file and the type it is served as.
    expect(kitchen.calls[6]?.args.CurrentURIMetaData).toContain('<dc:title>ding.mp3</dc:title>');
    expect(kitchen.calls[6]?.args.CurrentURIMetaData).toContain('protocolInfo="http-get:*:audio/mpeg:*"');

    // The speaker fetched the clip from hearth, without a token, and got all of it.
    expect(chime?.uri).toBe(url);
    expect(chime?.volume).toBe(40);
    expect([200, 206]).toContain(chime?.fetched?.status);
    expect(chime?.fetched).toMatchObject({
      contentType: 'audio/mpeg',
      bytes: mp3.length,
      acceptRanges: 'bytes',
    });

    // Exactly what was there before: URI, metadata, track, position (to the second), volume, playing.
    expect(chime?.before).toMatchObject({ uri: QUEUE, metadata: META, track: 3, volume: 25, playing: true });
    expect(chime?.before.position).toBeGreaterThanOrEqual(83);
    expect(chime?.after).toEqual(chime?.before);
    expect(kitchen.restored).toBe(true);
    expect(kitchen.state).toMatchObject({ uri: QUEUE, track: 3, volume: 25, transport: 'PLAYING' });
  });

  it('leaves paused music paused, and plays at the volume the command gives', async () => {
    const track = 'x-sonos-spotify:spotify%3atrack%3a4iV5W9uYEdYUVa79Axb7Rh?sid=9&flags=8224&sn=1';
    kitchen.load({
      uri: track,
      metadata: META,
      trackDuration: 200,
      position: 125,
      volume: 10,
      transport: 'PAUSED_PLAYBACK',
    });
    const res = await play('kitchen', { media: 'ding.mp3', volume: 55 });
    expect(res.status).toBe(200);
    expect(sequence(kitchen.calls)).toEqual([
      'GetTransportInfo',
      'GetMediaInfo',
      'GetVolume',
      'GetPositionInfo',
      'SetVolume 55',
      `SetAVTransportURI ${h.url}/api/v0/chime/ding.mp3 ${kitchen.calls[5]?.args.CurrentURIMetaData}`,
      'Play',
      '...wait',
      `SetAVTransportURI ${track} ${META}`,
      'Seek REL_TIME 0:02:05',
      'SetVolume 10',
    ]);
    expect(kitchen.chimes.at(-1)?.volume).toBe(55);
    expect(kitchen.restored).toBe(true);
    expect(kitchen.state).toMatchObject({ uri: track, position: 125, volume: 10, playing: false });
  });

  it('plays chimes on one speaker one at a time', async () => {
    kitchen.load({
      uri: QUEUE,
      metadata: META,
      nrTracks: 12,
      track: 5,
      position: 30,
      volume: 20,
      transport: 'PLAYING',
    });
    const before = kitchen.chimes.length;
    const [a, b] = await Promise.all([
      play('kitchen', { media: 'ding.mp3' }),
      play('kitchen', { media: 'ding.mp3' }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const two = kitchen.chimes.slice(before);
    expect(two).toHaveLength(2);
    expect(two.map((c) => c.restored)).toEqual([true, true]);
    // The second snapshot comes after the first restore's last call: no interleaving.
    const seq = sequence(kitchen.calls);
    const firstRestoreEnd = seq.indexOf('SetVolume 20') + 1;
    expect(seq[firstRestoreEnd]).toBe('Play');
    expect(seq.slice(firstRestoreEnd + 1, firstRestoreEnd + 3)).toEqual(['GetTransportInfo', 'GetMediaInfo']);
    expect(kitchen.state).toMatchObject({ uri: QUEUE, track: 5, volume: 20, playing: true });
  });

  it('refuses a media file that is not in the media folder with 400, without touching the speaker', async () => {
    for (const media of ['nope.mp3', '../hearth.yaml', '/etc/passwd']) {
      const res = await play('kitchen', { media });
      expect(res.status, media).toBe(400);
      const err = errorOf(res);
      expect(err.code).toBe('HEARTH_ERR_BAD_ARGUMENTS');
      expect(err.message).toBe(`no chime "${media}" in the media folder ${mediaDir}`);
      expect(err.hint).toContain('hearth media add');
    }
    expect(kitchen.calls).toEqual([]);
    expect((await entity('kitchen')).available).toBe(true);
    const bad = await play('kitchen', { media: 'ding.mp3', volume: 101 });
    expect(bad.status).toBe(400);
  });

  it('a speaker off the network: a clear one-line error, unavailable, and nothing else waits for it', async () => {
    await porch.setMode('hang');
    kitchen.load({ uri: QUEUE, nrTracks: 2, position: 5, volume: 22, transport: 'PLAYING' });
    const order: string[] = [];
    const hung = play('porch', { media: 'ding.mp3' }).then((r) => {
      order.push('porch');
      return r;
    });
    const [chimed, toggled] = await Promise.all([
      play('kitchen', { media: 'ding.mp3' }).then((r) => {
        order.push('kitchen');
        return r;
      }),
      post(`${h.url}/api/v0/switches/lamp/toggle/`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(
        (r) => {
          order.push('lamp');
          return r;
        },
      ),
    ]);
    expect(chimed.status).toBe(200);
    expect(toggled.status).toBe(200);
    expect(lamp.on).toBe(true);
    expect(kitchen.restored).toBe(true);

    const timedOut = await hung;
    expect(order.at(-1)).toBe('porch');
    expect(timedOut.status).toBe(504);
    const err = errorOf(timedOut);
    expect(err.code).toBe('HEARTH_ERR_DEVICE_TIMEOUT');
    expect(err.message).toBe(
      `sonos 127.0.0.1:${porch.port} did not answer GetTransportInfo within 2500 ms; is the speaker on and on the network?`,
    );
    expect(err.message).not.toContain('\n');
    const view = await entity('porch');
    expect(view).toMatchObject({ available: false, state: 'idle' });
    expect(view.reason).toContain(err.message);

    // Unplugged: refused at once, a 502 that says what to check.
    await porch.setMode('down');
    const refused = await play('porch', { media: 'ding.mp3' });
    expect(refused.status).toBe(502);
    expect(errorOf(refused).message).toBe(
      `sonos device for "porch" failed: ECONNREFUSED: sonos 127.0.0.1:${porch.port} refused the connection; is it a Sonos speaker, at this address?`,
    );

    // Back on the network: the next chime plays and the entity is available again.
    await porch.setMode('ok');
    const back = await play('porch', { media: 'ding.mp3' });
    expect(back.status).toBe(200);
    expect(porch.chimes.at(-1)?.volume).toBe(30);
    expect((await entity('porch')).available).toBe(true);
  });
});
