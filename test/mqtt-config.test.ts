import { describe, expect, it } from 'vitest';
import { mqttConfigSchema } from '../src/config/sections/mqtt.js';

describe('mqtt config section', () => {
  it('defaults baseTopic to hearth and accepts mqtt:// and mqtts://', () => {
    expect(mqttConfigSchema.parse({ url: 'mqtt://broker.lan' })).toEqual({
      url: 'mqtt://broker.lan',
      baseTopic: 'hearth',
    });
    const full = {
      url: 'mqtts://10.0.0.5:8883',
      username: 'hearth',
      password: 'pw',
      clientId: 'api-1',
      baseTopic: 'home/hearth',
    };
    expect(mqttConfigSchema.parse(full)).toEqual(full);
  });

  it('rejects what would break topics or leak a password, naming the field', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ url: 'http://broker' }, 'url'],
      [{ url: 'mqtt://user:secret@broker' }, 'url'],
      [{ url: 'mqtt://broker/path' }, 'url'],
      [{ url: 'mqtt://b', baseTopic: 'hearth/#' }, 'baseTopic'],
      [{ url: 'mqtt://b', baseTopic: '/hearth' }, 'baseTopic'],
      [{ url: 'mqtt://b', clientId: 'a/b' }, 'clientId'],
      [{ url: 'mqtt://b', password: '' }, 'password'],
      [{ url: 'mqtt://b', user: 'x' }, ''],
    ];
    for (const [input, field] of bad) {
      const r = mqttConfigSchema.safeParse(input);
      expect(r.success, JSON.stringify(input)).toBe(false);
      if (!r.success) expect(r.error.issues[0]?.path.join('.')).toBe(field);
    }
  });

  it('takes ca, cert and key with mqtts:// only, and cert and key together', () => {
    const tls = { url: 'mqtts://broker.lan:8883', ca: 'ca.pem', cert: 'hearth.pem', key: 'hearth.key' };
    expect(mqttConfigSchema.parse(tls)).toEqual({ ...tls, baseTopic: 'hearth' });
    expect(mqttConfigSchema.parse({ url: 'mqtts://b', ca: 'ca.pem' }).ca).toBe('ca.pem');
    const bad: [Record<string, unknown>, string[]][] = [
      [{ url: 'mqtt://b', ca: 'ca.pem' }, ['ca']],
      [{ url: 'mqtt://b', cert: 'c.pem', key: 'k.pem' }, ['cert', 'key']],
      [{ url: 'mqtts://b', cert: 'c.pem' }, ['cert']],
      [{ url: 'mqtts://b', ca: 'ca.pem', key: 'k.pem' }, ['key']],
      [{ url: 'mqtts://b', ca: '' }, ['ca']],
      [{ url: 'mqtts://b', rejectUnauthorized: false }, ['']],
    ];
    for (const [input, fields] of bad) {
      const r = mqttConfigSchema.safeParse(input);
      expect(r.success, JSON.stringify(input)).toBe(false);
      if (!r.success) expect(r.error.issues.map((i) => i.path.join('.'))).toEqual(fields);
    }
  });

  it('never puts the password in an error message', () => {
    const r = mqttConfigSchema.safeParse({ url: 'ftp://x', password: 'hunter2-very-secret', clientId: '#' });
    expect(r.success).toBe(false);
    if (!r.success) expect(JSON.stringify(r.error.issues)).not.toContain('hunter2');
  });
});
