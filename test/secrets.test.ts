import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/core/log.js';
import { startWemoSimulator } from '../src/drivers/wemo/simulator.js';
import { runCli } from './support/cli-run.js';
import { http, post, tempDir } from './support/hearth.js';
import { spawnHearth } from './support/process.js';

// A fresh token each run, long and random, so a hit in the output can only be a leak.
const TOKEN = `tok-${randomBytes(24).toString('base64url')}`;
const OTHER = `tok-${randomBytes(24).toString('base64url')}`;

const dir = tempDir('hearth-secrets-test-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('no secret reaches the logs', () => {
  it('a real hearth at log level trace never writes its token, through right and wrong tokens and a device failure', {
    timeout: 60_000,
  }, async () => {
    const lamp = await startWemoSimulator({ initial: false });
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      `http:
  host: 127.0.0.1
  port: 0
  public: { host: 127.0.0.1, port: 0 }
  token: \${HEARTH_TOKEN}
storage: { sqlite: hearth.db }
log: { level: trace }
switches:
  - { id: lamp, kind: wemo/v1, address: 127.0.0.1, port: ${lamp.port}, timeoutMs: 300, pollSeconds: 0.2 }
`,
    );
    const proc = await spawnHearth(config, { HEARTH_LOG_LEVEL: 'trace', HEARTH_TOKEN: TOKEN });
    try {
      const url = proc.url;
      const publicUrl = /public status page \(read-only\) on (http:\/\/\S+)/.exec(proc.output())?.[1];
      expect(publicUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const right = { authorization: `Bearer ${TOKEN}` };

      expect((await post(`${url}/api/v0/switches/lamp/on/`, { headers: right })).status).toBe(200);
      expect((await post(`${url}/api/v1/entities/lamp/commands/toggle`, { headers: right })).status).toBe(
        200,
      );
      expect((await http(`${url}/metrics`, { headers: right })).status).toBe(200);
      for (const authorization of [`Bearer ${OTHER}`, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN]) {
        const r = await post(`${url}/api/v0/switches/lamp/on/`, { headers: { authorization } });
        expect(r.status).toBe(403);
      }
      expect((await post(`${url}/api/v0/switches/lamp/on/`)).status).toBe(403);
      // The right token on the public listener is refused too, and not logged there either.
      expect((await post(`${publicUrl}/api/v0/switches/lamp/on/`, { headers: right })).status).toBe(403);

      // A device failure while commands carry the token: a 502, and warnings in the log.
      lamp.mode = 'hang';
      const failed = await post(`${url}/api/v0/switches/lamp/toggle/`, { headers: right });
      expect(failed.status).toBe(502);
      lamp.mode = 'garbage';
      expect((await post(`${url}/api/v1/entities/lamp/commands/on`, { headers: right })).status).toBe(502);
      lamp.mode = 'ok';
      await expect
        .poll(async () => JSON.parse((await http(`${url}/api/v1/entities/lamp`)).body).entity.available)
        .toBe(true);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
      await lamp.close();
    }

    const out = proc.output();
    // The log was on and had things to say: the ready line, the outage, the recovery, the stop.
    expect(out).toMatch(/"msg":"ready"/);
    expect(out).toMatch(/"msg":"entity unavailable"/);
    expect(out).toMatch(/"msg":"stopping"/);
    expect(out).not.toContain(TOKEN);
    expect(out).not.toContain(OTHER);
    expect(out).not.toContain(TOKEN.slice(4, 20));
  });

  it('a short token makes hearth refuse to start, without printing it', { timeout: 60_000 }, async () => {
    const secret = 'short-s3cret';
    const config = join(dir, 'short.yaml');
    writeFileSync(config, `http:\n  port: 0\n  token: \${HEARTH_TOKEN}\nstorage: { sqlite: short.db }\n`);
    const [start, check] = await Promise.all([
      runCli(['start', '--config', config], { env: { HEARTH_TOKEN: secret, HEARTH_LOG_LEVEL: 'trace' } }),
      runCli(['check', '--config', config], { env: { HEARTH_TOKEN: secret } }),
    ]);
    for (const r of [start, check]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${config}:3:10: http.token: is too short: use at least 16 characters`);
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
  });

  it('a token that starts with a character YAML gives a meaning (#, *) is enforced, from the environment and from !secret', {
    timeout: 90_000,
  }, async () => {
    // `#...` once turned the token off silently, `*...` crashed start-up printing it.
    const hash = `#${TOKEN}`;
    const star = `*${TOKEN}`;
    const fromEnv = join(dir, 'env-token.yaml');
    writeFileSync(
      fromEnv,
      `http:\n  host: 127.0.0.1\n  port: 0\n  token: \${HEARTH_TOKEN}\nstorage: { sqlite: env.db }\n`,
    );
    const fromSecret = join(dir, 'secret-token.yaml');
    writeFileSync(join(dir, 'token-secrets.yaml'), `hearth_token: ${JSON.stringify(star)}\n`);
    writeFileSync(
      fromSecret,
      'secrets: token-secrets.yaml\nhttp:\n  host: 127.0.0.1\n  port: 0\n  token: !secret hearth_token\nstorage: { sqlite: secret.db }\n',
    );
    // One after the other: tsx compiling three processes at once on two busy cores can outlast
    // the 15 s that spawnHearth waits for the ready line.
    const check = await runCli(['check', '--config', fromEnv], { env: { HEARTH_TOKEN: hash } });
    const a = await spawnHearth(fromEnv, { HEARTH_TOKEN: hash });
    const b = await spawnHearth(fromSecret, { HEARTH_TOKEN: '' }).catch((err: unknown) => {
      a.child.kill('SIGTERM');
      throw err;
    });
    // check says a token is in force, so one lost to an empty value would show.
    expect(check.stdout).toMatch(/: ok — .*, control needs the token\n$/);
    expect(check.stdout + check.stderr).not.toContain(TOKEN);
    try {
      for (const [proc, token] of [
        [a, hash],
        [b, star],
      ] as const) {
        const press = `${proc.url}/api/v0/buttons/bedside/on/`;
        expect((await post(press)).status).toBe(403);
        expect((await post(press, { headers: { authorization: `Bearer ${OTHER}` } })).status).toBe(403);
        expect((await post(press, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      }
    } finally {
      for (const proc of [a, b]) proc.child.kill('SIGTERM');
      await Promise.all([a.exited, b.exited]);
    }
    expect(a.output() + b.output()).not.toContain(TOKEN);
  });

  it('a secret YAML reads as a comment (`token: #abc`) makes check and start fail at its line, for every secret-bearing key', {
    timeout: 60_000,
  }, async () => {
    // `token: #abc` once passed check, and control then worked with no token at all.
    const config = join(dir, 'commented.yaml');
    const pg = `postgres://hearth:${OTHER}@db.lan:5432/hearth`;
    writeFileSync(
      config,
      [
        'http:',
        '  host: 127.0.0.1',
        '  port: 0',
        `  token: #${TOKEN}`,
        'storage:',
        '  postgres:',
        `    url: # ${pg}`,
        'mqtt:',
        '  url: mqtt://127.0.0.1:1883',
        '  username: hearth',
        `  password:   #${OTHER}`,
        'automations:',
        '  - id: notify',
        '    triggers: [{ webhook: true }]',
        '    actions:',
        '      - http:',
        '          url: https://example.com/hook',
        '          headers:',
        `            Authorization: # Bearer ${TOKEN}`,
        '',
      ].join('\n'),
    );
    const [check, start] = await Promise.all([
      runCli(['check', '--config', config]),
      runCli(['start', '--config', config], { env: { HEARTH_LOG_LEVEL: 'trace' } }),
    ]);
    for (const r of [check, start]) {
      expect(r.code).toBe(1);
      const said = (line: number, col: number, field: string) =>
        `${config}:${line}:${col}: ${field}: is empty: YAML reads " #" and the rest of the line as a comment`;
      expect(r.stderr).toContain(said(4, 3, 'http.token'));
      expect(r.stderr).toContain(said(7, 5, 'storage.postgres.url'));
      expect(r.stderr).toContain(said(11, 3, 'mqtt.password'));
      expect(r.stderr).toContain(said(19, 13, 'automations[0].actions[0].http.headers.Authorization'));
      expect(r.stderr).toContain(`('#abc' or "#abc")`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout + r.stderr).not.toContain(TOKEN);
      expect(r.stdout + r.stderr).not.toContain(OTHER);
    }
    // What is not a mistake stays accepted: a key left empty with no comment, a quoted '#...'.
    const fine = join(dir, 'commented-fine.yaml');
    writeFileSync(
      fine,
      `http:\n  token:\n  # the token comes later\nstorage: { sqlite: fine.db } # one box\nmqtt:\n  url: mqtt://127.0.0.1:1883 # the broker\n  password: '#${OTHER}' # quoted\n`,
    );
    const ok = await runCli(['check', '--config', fine]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
  });

  it('the logger redacts tokens, passwords, cookies and Authorization headers wherever a caller puts them', () => {
    let written = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        written += String(chunk);
        done();
      },
    });
    const log = createLogger('trace', sink);
    log.info({ token: TOKEN }, 'top');
    log.info({ http: { token: TOKEN } }, 'nested');
    log.info({ config: { http: { token: TOKEN } } }, 'deeper');
    log.info({ authorization: `Bearer ${TOKEN}` }, 'header');
    log.info({ headers: { authorization: `Bearer ${TOKEN}`, cookie: `s=${TOKEN}` } }, 'headers');
    log.info({ req: { headers: { authorization: `Bearer ${TOKEN}` } } }, 'request');
    log.info({ device: { password: TOKEN } }, 'password');
    const lines = written.trim().split('\n');
    expect(lines).toHaveLength(7);
    expect(written).not.toContain(TOKEN);
    expect(lines.every((l) => l.includes('[Redacted]'))).toBe(true);
  });
});
