import { describe, expect, it } from 'vitest';
import { http, post } from './support/hearth.js';
import { spawnReady } from './support/process.js';

// `npm start` runs the bundle (dist/hearth.mjs, built by the vitest globalSetup): the demo is
// started here exactly as a newcomer starts it.
describe('npm start: the built demo', () => {
  it('starts, switches simulated plugs, brews and waters, and stops cleanly', async () => {
    const demo = await spawnReady(['bin/hearth.js', 'start', '--demo'], {
      HEARTH_PORT: '0',
      HEARTH_LOG_LEVEL: 'warn',
    });
    try {
      expect(demo.output()).toContain('(demo: simulated devices on loopback)');
      expect((await http(`${demo.url}/readyz`)).status).toBe(200);
      const before = JSON.parse((await http(`${demo.url}/api/v1/entities/lamp`)).body).entity.state;
      expect((await post(`${demo.url}/api/v0/switches/lamp/toggle/`)).body).toBe('OK');
      const after = JSON.parse((await http(`${demo.url}/api/v1/entities/lamp`)).body).entity.state;
      expect(after).toBe(before === 'on' ? 'off' : 'on');
      expect((await post(`${demo.url}/api/v0/switches/fan/toggle/`)).body).toBe('OK');

      // The serial devices come up once their pseudo-terminals have settled.
      await expect
        .poll(
          async () => JSON.parse((await http(`${demo.url}/api/v1/entities/coffee`)).body).entity.available,
          {
            timeout: 10_000,
          },
        )
        .toBe(true);
      const brew = await post(`${demo.url}/api/v1/entities/coffee/commands/brew`, {
        body: '{"minutes": 1}',
        headers: { 'content-type': 'application/json' },
      });
      expect(JSON.parse(brew.body).entity.state).toBe('on');
      await expect
        .poll(
          async () =>
            JSON.parse((await http(`${demo.url}/api/v1/entities/garden-front`)).body).entity.available,
          {
            timeout: 10_000,
          },
        )
        .toBe(true);
      const open = await post(`${demo.url}/api/v1/entities/garden-front/commands/open`, {
        body: '{"seconds": 30}',
        headers: { 'content-type': 'application/json' },
      });
      expect(JSON.parse(open.body).entity.state).toBe('open');
      // The control listener's / is the dashboard, which reads the entities from the API.
      const page = await http(`${demo.url}/`);
      expect(page.type).toContain('text/html');
      expect(page.body).toMatch(/<script type="module" src="\/app\/assets\/app-\w+\.js">/);
      expect((await http(`${demo.url}/api/v1/entities`)).body).toContain('Coffee pot');
    } finally {
      demo.child.kill('SIGTERM');
    }
    const { code } = await demo.exited;
    expect(code).toBe(0);
    // A clean stop: the heater and the valve were made safe while the devices still answered.
    expect(demo.output()).not.toMatch(/"level":(40|50)/);
  });
});
