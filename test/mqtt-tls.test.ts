import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHearth } from '../src/compose.js';
import { ConfigError } from '../src/config/errors.js';
import { loadConfigFile } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { drivers } from '../src/drivers/index.js';
import { runCli } from './support/cli-run.js';
import { http, type TestHearth, tempDir } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { type HearthProcess, spawnHearth } from './support/process.js';
import { letTimePass, until, untilOutput } from './support/wait.js';

// mqtts:// with a private CA (mqtt.ca) and a client certificate (mqtt.cert, mqtt.key), against a
// real Mosquitto with a TLS listener, certificates made by the openssl CLI for this run.

const opensslMissing =
  spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0
    ? undefined
    : 'the openssl CLI is not installed (apt-get install openssl): it makes the test certificates';
const skipReason = mosquittoMissing ?? opensslMissing;
if (skipReason) console.warn(`test/mqtt-tls.test.ts skipped: ${skipReason}`);

function openssl(cwd: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA (`<name>.pem`, `<name>.key`) in `dir`. */
function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A certificate (`<name>.pem`, `<name>.key`) signed by CA `ca`, with the extensions given. */
function makeCert(dir: string, name: string, ca: string, extensions: string[]): void {
  openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  ]);
}

describe.skipIf(skipReason)('mqtt over TLS with a private CA', () => {
  let certs: string;
  let broker: TestMosquitto;
  let mtlsBroker: TestMosquitto;
  let otherNameBroker: TestMosquitto;
  const spawned: HearthProcess[] = [];
  const started: TestHearth[] = [];
  const clients: MqttClient[] = [];

  /** A folder with a config file in it and copies of the named certificate files. */
  function configDir(yaml: string, files: string[] = []): string {
    const dir = tempDir('hearth-tls-');
    for (const f of files) copyFileSync(join(certs, f), join(dir, f));
    writeFileSync(
      join(dir, 'hearth.yaml'),
      `http: { host: 127.0.0.1, port: 0 }\nstorage: { sqlite: hearth.db }\n${yaml}`,
    );
    return dir;
  }

  async function spawn(yaml: string, files: string[] = []): Promise<HearthProcess> {
    const dir = configDir(yaml, files);
    const p = await spawnHearth(join(dir, 'hearth.yaml'));
    spawned.push(p);
    void p.exited.then(() => rmSync(dir, { recursive: true, force: true }));
    return p;
  }

  const metric = async (url: string) =>
    /^hearth_mqtt_connected (\d+)$/m.exec((await http(`${url}/metrics`)).body)?.[1];

  beforeAll(async () => {
    certs = tempDir('hearth-tls-certs-');
    makeCa(certs, 'ca');
    makeCa(certs, 'other-ca');
    makeCert(certs, 'server', 'ca', [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'extendedKeyUsage=serverAuth',
    ]);
    makeCert(certs, 'other-name', 'ca', ['subjectAltName=DNS:broker.example', 'extendedKeyUsage=serverAuth']);
    makeCert(certs, 'client', 'ca', ['extendedKeyUsage=clientAuth']);
    makeCert(certs, 'stranger', 'other-ca', ['extendedKeyUsage=clientAuth']);
    const tls = {
      ca: join(certs, 'ca.pem'),
      cert: join(certs, 'server.pem'),
      key: join(certs, 'server.key'),
    };
    broker = await TestMosquitto.start({ tls });
    mtlsBroker = await TestMosquitto.start({ tls: { ...tls, requireCertificate: true } });
    otherNameBroker = await TestMosquitto.start({
      tls: { ...tls, cert: join(certs, 'other-name.pem'), key: join(certs, 'other-name.key') },
    });
  });

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    for (const h of started) await h.close();
    for (const p of spawned) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      await p.exited;
    }
    await broker?.stop();
    await mtlsBroker?.stop();
    await otherNameBroker?.stop();
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  it('the built CLI with mqtt.ca connects over TLS: a sensor value published on the broker shows in the API', async () => {
    const hearth = await spawn(
      [
        `mqtt: { url: "${broker.url}", ca: ca.pem }`,
        'things:',
        '  - { id: temp, kind: mqtt-sensor/v1, topic: home/temp, unit: "°C" }',
        '',
      ].join('\n'),
      ['ca.pem'],
    );
    await expect.poll(() => metric(hearth.url), { timeout: 10_000 }).toBe('1');
    const sensor = await mqtt.connectAsync(broker.url, {
      ca: readFileSync(join(certs, 'ca.pem')),
      rejectUnauthorized: true,
    });
    clients.push(sensor);
    await sensor.publishAsync('home/temp', '21.5', { qos: 1 });
    await expect
      .poll(
        async () => {
          const body = JSON.parse((await http(`${hearth.url}/api/v1/entities`)).body) as {
            entities: Array<{ id: string; state: unknown; available: boolean }>;
          };
          return body.entities.find((e) => e.id === 'temp');
        },
        { timeout: 10_000 },
      )
      .toMatchObject({ state: 21.5, available: true });
    expect(hearth.output()).not.toMatch(/not trusted/);
  });

  for (const [label, ca] of [
    ['without mqtt.ca (only the system CAs)', undefined],
    ['with mqtt.ca of another CA', 'other-ca.pem'],
  ] as const) {
    it(`${label}, hearth does not connect, stays up and says the certificate is not trusted`, async () => {
      const hearth = await spawn(
        [
          `mqtt: { url: "${broker.url}"${ca ? `, ca: ${ca}` : ''} }`,
          'things:',
          '  - { id: temp, kind: mqtt-sensor/v1, topic: home/temp }',
          '',
        ].join('\n'),
        ca ? [ca] : [],
      );
      await until(() => hearth.output().includes("MQTT: the broker's certificate is not trusted ("), {
        timeoutMs: 10_000,
        what: 'the log line about the certificate',
      });
      expect(hearth.output()).toMatch(
        /MQTT: the broker's certificate is not trusted \([^)]*\): set mqtt\.ca to the CA that signed it/,
      );
      // Observation window: the link retries from 250 ms on, doubling, so a few attempts fail in
      // this second (each logged at most once per 10 s: nothing to wait for); hearth stays up,
      // still refusing, and /metrics says so.
      await letTimePass(1000);
      expect(hearth.child.exitCode).toBeNull();
      expect(await metric(hearth.url)).toBe('0');
      const health = await http(`${hearth.url}/api/v1/entities`);
      expect(health.status).toBe(200);
      // One line, never a stack trace.
      expect(hearth.output()).not.toMatch(/\n\s+at /);
    });
  }

  it('a broker certificate made for another name is not trusted either, and the line says which name to use', async () => {
    const hearth = await spawn(`mqtt: { url: "${otherNameBroker.url}", ca: ca.pem }\n`, ['ca.pem']);
    await until(() => hearth.output().includes("MQTT: the broker's certificate is not trusted ("), {
      timeoutMs: 10_000,
      what: 'the log line about the certificate',
    });
    expect(hearth.output()).toMatch(
      /MQTT: the broker's certificate is not trusted \([^)]*broker\.example[^)]*\): connect by a name the certificate holds/,
    );
    expect(await metric(hearth.url)).toBe('0');
  });

  it('a broker that requires a client certificate: taken with mqtt.cert and mqtt.key, refused without', async () => {
    const withCert = configDir(
      `mqtt: { url: "${mtlsBroker.url}", ca: ca.pem, cert: client.pem, key: client.key }\n`,
      ['ca.pem', 'client.pem', 'client.key'],
    );
    const ok = await startIn(withCert);
    await expect.poll(() => metric(ok.url), { timeout: 10_000 }).toBe('1');

    const without = await spawn(`mqtt: { url: "${mtlsBroker.url}", ca: ca.pem }\n`, ['ca.pem']);
    const stranger = await spawn(
      `mqtt: { url: "${mtlsBroker.url}", ca: ca.pem, cert: stranger.pem, key: stranger.key }\n`,
      ['ca.pem', 'stranger.pem', 'stranger.key'],
    );
    await untilOutput(
      without.output,
      /MQTT: the broker asks for a client certificate \(tlsv13 alert certificate required\): set mqtt\.cert and mqtt\.key/,
      { failOn: without.exited },
    );
    await untilOutput(
      stranger.output,
      /MQTT: the broker refused hearth's client certificate \(tlsv1 alert unknown ca\): mqtt\.cert must be signed by a CA the broker trusts/,
      { failOn: stranger.exited },
    );
    expect(await metric(without.url)).toBe('0');
    expect(await metric(stranger.url)).toBe('0');
    // The key's contents are never in the output.
    const keyBody = readFileSync(join(certs, 'stranger.key'), 'utf8').split('\n')[1] ?? 'none';
    expect(stranger.output()).not.toContain(keyBody);
  });

  async function startIn(dir: string): Promise<TestHearth> {
    const config = loadConfigFile(join(dir, 'hearth.yaml'), { drivers });
    const h = await startHearth(config, { log: silentLogger() });
    const th: TestHearth = {
      ...h,
      dir,
      close: async () => {
        await h.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    started.push(th);
    return th;
  }

  describe('config errors, each at its file:line', () => {
    const cases: Array<[string, string, string[], RegExp]> = [
      [
        'ca with mqtt://',
        'mqtt: { url: "mqtt://127.0.0.1:1883", ca: ca.pem }',
        ['ca.pem'],
        /hearth\.yaml:3:\d+: mqtt\.ca: is for TLS only, and mqtt\.url is mqtt:\/\/ \(plain TCP\); use mqtts:\/\//,
      ],
      [
        'cert without key',
        'mqtt:\n  url: "mqtts://127.0.0.1:8883"\n  cert: client.pem\n',
        ['client.pem'],
        /hearth\.yaml:5:\d+: mqtt\.cert: needs mqtt\.key too/,
      ],
      [
        'key without cert',
        'mqtt:\n  url: "mqtts://127.0.0.1:8883"\n  key: client.key\n',
        ['client.key'],
        /hearth\.yaml:5:\d+: mqtt\.key: needs mqtt\.cert too/,
      ],
      [
        'a missing ca file',
        'mqtt:\n  url: "mqtts://127.0.0.1:8883"\n  ca: certs/nope.pem\n',
        [],
        /hearth\.yaml:5:\d+: mqtt\.ca: cannot read \/.*\/certs\/nope\.pem \(ENOENT[^)]*\): it should be the CA certificate/,
      ],
      [
        'a ca file that is not PEM',
        'mqtt:\n  url: "mqtts://127.0.0.1:8883"\n  ca: hearth.yaml\n',
        [],
        /hearth\.yaml:5:\d+: mqtt\.ca: .*hearth\.yaml is not a PEM certificate/,
      ],
      [
        'a key of another certificate',
        'mqtt:\n  url: "mqtts://127.0.0.1:8883"\n  ca: ca.pem\n  cert: client.pem\n  key: stranger.key\n',
        ['ca.pem', 'client.pem', 'stranger.key'],
        /hearth\.yaml:7:\d+: mqtt\.key: .*stranger\.key does not go with the certificate/,
      ],
    ];
    for (const [label, yaml, files, expected] of cases) {
      it(label, () => {
        const dir = configDir(`${yaml}\n`, files);
        try {
          let caught: unknown;
          try {
            loadConfigFile(join(dir, 'hearth.yaml'), { drivers });
          } catch (err) {
            caught = err;
          }
          expect(caught).toBeInstanceOf(ConfigError);
          expect((caught as ConfigError).message).toMatch(expected);
          expect((caught as ConfigError).issues).toHaveLength(1);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }

    it('hearth check names a missing ca file at its line, in one line', async () => {
      const dir = configDir('mqtt:\n  url: "mqtts://127.0.0.1:8883"\n  ca: ca.pem\n');
      try {
        const r = await runCli(['check', '--config', join(dir, 'hearth.yaml')]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/hearth\.yaml:5:\d+: mqtt\.ca: cannot read \S+ca\.pem \(ENOENT/);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        copyFileSync(join(certs, 'ca.pem'), join(dir, 'ca.pem'));
        const fixed = await runCli(['check', '--config', join(dir, 'hearth.yaml')]);
        expect(fixed.stderr).toBe('');
        expect(fixed.code).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a ca file gone between check and start: one line naming the path, no stack trace', async () => {
      const dir = configDir(`mqtt: { url: "${broker.url}", ca: ca.pem }\n`, ['ca.pem']);
      try {
        const config = loadConfigFile(join(dir, 'hearth.yaml'), { drivers });
        rmSync(join(dir, 'ca.pem'));
        await expect(startHearth(config, { log: silentLogger() })).rejects.toThrow(
          /^mqtt\.ca: cannot read \S+ca\.pem \(ENOENT/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
