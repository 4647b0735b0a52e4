/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against the
 * built CLI with a simulated Wemo lamp and a simulated MrCoffeeBot pot. Without
 * /usr/bin/chromium the tests are skipped and say why, or fail where the run requires chromium
 * (HEARTH_TEST_REQUIRE, CI: support/services.ts; .ci/run installs it).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CoffeeSimulator, startCoffeeSimulator } from '../src/drivers/mrcoffeebot/simulator.js';
import { startWemoSimulator, type WemoSimulator } from '../src/drivers/wemo/simulator.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from './support/chromium.js';
import { runCli } from './support/cli-run.js';
import { http, post, tempDir } from './support/hearth.js';
import { type HearthProcess, repoRoot, spawnHearth } from './support/process.js';

const shots = join(repoRoot, 'test-results', 'web-app');
const TOKEN = 'dashboard-test-token-0123456789';

const json = { 'content-type': 'application/json' };

async function launch(dir: string, javaScriptEnabled = true): Promise<BrowserContext> {
  // A fresh profile each time.
  return chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
    javaScriptEnabled,
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 390, height: 844 },
    args: CHROMIUM_ARGS,
  });
}

/** Console errors of the page (a CSP refusal shows there). */
function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

const card = (page: Page, id: string) => page.locator(`li.entity[data-id="${id}"]`);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe.skipIf(chromiumMissing)('the dashboard (control listener, no token)', () => {
  const dir = tempDir('hearth-web-app-');
  let lamp: WemoSimulator;
  let pot: CoffeeSimulator;
  let hearth: HearthProcess;
  let publicUrl: string;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    lamp = await startWemoSimulator({ initial: false });
    // These tests are of the page, and a brew lasts a minute: the safety rules are pushed as far
    // as they go, so a loaded machine does not cut it short (the rules working). The board's own
    // 1 s rule is off; hearth waits up to 850 ms for an answer (timeoutMs, default 250: the board
    // lives in this process, which also drives the browser) and beats every 100 ms.
    pot = await startCoffeeSimulator({ path: join(dir, 'ttyCOFFEE'), deadmanMs: 10_000 });
    const dead = await freePort();
    mkdirSync(join(dir, 'media'));
    writeFileSync(join(dir, 'media', 'ding.mp3'), 'ID3');
    writeFileSync(join(dir, 'media', 'notes.txt'), 'not audio');
    writeFileSync(join(dir, 'media', '.hidden.mp3'), 'ID3');
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      `http: { host: 127.0.0.1, port: 0, public: { host: 127.0.0.1, port: 0 } }
storage: { sqlite: hearth.db }
media: { dir: media }
switches:
  - { id: lamp, kind: wemo/v1, name: Living room lamp, room: Living room, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
  - { id: porch, kind: wemo/v1, name: Porch light, room: Outside, address: 127.0.0.1, port: ${dead}, timeoutMs: 200, pollSeconds: 1 }
coffee:
  - { id: coffee, kind: mrcoffeebot/v1, name: Coffee pot, room: Kitchen, path: ${pot.path}, settleMs: 100, maxBrewMinutes: 5, heartbeatMs: 100, timeoutMs: 850 }
buttons:
  - { id: bedside, name: Bedside button }
backup: { dir: archives, every: "0 3 * * *" }
automations:
  - id: lamp-on
    name: Lamp on
    triggers: [{ webhook: true }]
    actions: [{ command: lamp.on }]
`,
    );
    // One archive there already: the dashboard shows its age.
    const made = await runCli(['backup', '--config', config, '--json']);
    if (made.code !== 0) throw new Error(`hearth backup failed: ${made.stderr}`);
    hearth = await spawnHearth(config);
    const m = /public status page \(read-only\) on (http:\/\/\S+)/.exec(hearth.output());
    if (!m?.[1]) throw new Error(`no public listener:\n${hearth.output()}`);
    publicUrl = m[1];
    context = await launch(dir);
    page = await context.newPage();
    errors = watchConsole(page);
  });

  afterAll(async () => {
    await context?.close();
    if (hearth && hearth.child.exitCode === null) {
      hearth.child.kill('SIGTERM');
      await hearth.exited;
    }
    await pot?.close();
    await lamp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the app with a strict CSP, no-cache index and immutable hashed assets under 60 kB gzip', async () => {
    const index = await http(`${hearth.url}/`);
    expect(index.status).toBe(200);
    expect(index.type).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(index.body).not.toMatch(/<script>/);
    const assets = [...index.body.matchAll(/(?:src|href)="(\/app\/assets\/[^"]+)"/g)].map(
      (x) => x[1] as string,
    );
    expect(assets.map((a) => a.split('.').pop()).sort()).toEqual(['css', 'js']);
    for (const path of assets) {
      const r = await http(hearth.url + path);
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(r.type).toBe(
        path.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8',
      );
      expect(path).toMatch(/-[A-Z0-9]{8}\.(js|css)$/);
      if (path.endsWith('.js')) expect(gzipSync(r.body).length).toBeLessThan(60 * 1024);
    }
    expect((await http(`${hearth.url}/app/assets/nothing-12345678.js`)).status).toBe(404);
    // What the dashboard groups by and offers as chimes.
    const { devices } = JSON.parse((await http(`${hearth.url}/api/v1/devices`)).body);
    expect(devices).toContainEqual({
      id: 'coffee',
      name: 'Coffee pot',
      room: 'Kitchen',
      entities: ['coffee', 'coffee-water', 'coffee-temperature', 'coffee-last-status'],
    });
    expect(JSON.parse((await http(`${hearth.url}/api/v1/media`)).body)).toEqual({ files: ['ding.mp3'] });
    // The public listener keeps the read-only status page.
    const pub = await http(`${publicUrl}/`);
    expect(pub.body).toContain("new EventSource('api/v1/events'");
    expect(pub.body).not.toContain('/app/assets/');
  });

  it('shows every entity grouped by room and device, unavailable ones first with their reason', async () => {
    await page.goto(`${hearth.url}/`);
    await expect.poll(() => card(page, 'lamp').count()).toBe(1);
    // Rooms and devices come with the device list, read beside the entities: polled.
    for (const heading of ['Living room', 'Kitchen', 'Outside', 'Coffee pot', 'Buttons']) {
      await expect
        .poll(() => page.getByRole('heading', { name: heading, exact: true }).count())
        .toBeGreaterThan(0);
    }
    // The pot's sensors sit in its group.
    const pot = page.locator('section.group', { has: page.getByRole('heading', { name: 'Coffee pot' }) });
    await expect.poll(() => pot.locator('li.entity').count()).toBe(4);
    // The porch light's plug does not answer: it is listed first, with why.
    await expect
      .poll(() => page.locator('section[aria-labelledby="attention"] li').first().textContent())
      .toMatch(/^Porch light: .{5,}/);
    expect(await card(page, 'porch').getAttribute('data-available')).toBe('false');
    expect(await page.locator('#app h2').first().textContent()).toBe('Unavailable');
    await expect.poll(() => page.locator('.live').textContent()).toBe('live');
    await page.screenshot({ path: join(shots, 'dashboard-phone.png'), fullPage: true });
  });

  it('every toggle says on or off and names its device to assistive technology; a tap flips it', async () => {
    await page.goto(`${hearth.url}/`);
    // Every on/off control of the page: each a switch whose name holds its card's device name.
    const toggles = page.locator('li.entity .controls button.toggle');
    await expect.poll(() => toggles.count()).toBeGreaterThanOrEqual(2);
    for (const toggle of await toggles.all()) {
      const device = (await toggle.locator('xpath=ancestor::li[1]').locator('.name').textContent()) ?? '';
      expect(device.length).toBeGreaterThan(0);
      expect(await toggle.getAttribute('role')).toBe('switch');
      expect(['true', 'false']).toContain(await toggle.getAttribute('aria-checked'));
      // As the accessibility tree has it (what a screen reader reads): a switch named for the device.
      expect(await toggle.ariaSnapshot()).toMatch(new RegExp(`^- switch "[^"]*${device}[^"]*"`));
    }
    // The bedside button, off: "Bedside button, switch, off"; one tap and it is on, and says so.
    const bedside = card(page, 'bedside');
    const off = bedside.getByRole('switch', { name: 'Bedside button', checked: false });
    await off.click();
    await expect
      .poll(() => bedside.getByRole('switch', { name: 'Bedside button', checked: true }).count())
      .toBe(1);
    expect(await bedside.locator('.state').textContent()).toBe('on');
    await bedside.getByRole('switch', { name: 'Bedside button' }).click();
    await expect.poll(() => off.count()).toBe(1);
    expect(await bedside.locator('.state').textContent()).toBe('off');
  });

  it('one tap toggles the lamp: the Wemo switches and the page shows it', async () => {
    expect(lamp.on).toBe(false);
    const toggle = card(page, 'lamp').getByRole('switch', { name: 'Living room lamp', checked: false });
    await toggle.click();
    await expect.poll(() => lamp.on).toBe(true);
    await expect
      .poll(() =>
        card(page, 'lamp').getByRole('switch', { name: 'Living room lamp' }).getAttribute('aria-checked'),
      )
      .toBe('true');
    expect(await card(page, 'lamp').locator('.state').textContent()).toBe('on');
    await expect.poll(() => page.getByRole('status').textContent()).toBe('Living room lamp: toggle, now on');
  });

  it('a change made by another client appears within a second', async () => {
    const r = await post(`${hearth.url}/api/v1/entities/lamp/commands/off`, { headers: json, body: '{}' });
    expect(r.status).toBe(200);
    // Measured from the change (the command's answer says the plug is off), not from the request.
    const changed = performance.now();
    await expect.poll(() => card(page, 'lamp').locator('.state').textContent(), { interval: 20 }).toBe('off');
    expect(performance.now() - changed).toBeLessThan(1000);
    expect(lamp.on).toBe(false);
  });

  it('shows a button a press creates, and drops it when it is deleted (event: removed)', async () => {
    expect((await post(`${hearth.url}/api/v0/buttons/hall/on/`)).status).toBe(200);
    await expect.poll(() => card(page, 'hall').count()).toBe(1);
    expect((await http(`${hearth.url}/api/v1/entities/hall`, { method: 'DELETE' })).status).toBe(204);
    await expect.poll(() => card(page, 'hall').count()).toBe(0);
  });

  it('brews 1 minute on the pot, shows it brewing, and stops it', async () => {
    await expect
      .poll(
        async () => JSON.parse((await http(`${hearth.url}/api/v1/entities/coffee`)).body).entity.available,
      )
      .toBe(true);
    const coffee = card(page, 'coffee');
    const minutes = coffee.getByLabel('Minutes');
    expect(await minutes.getAttribute('max')).toBe('5');
    await minutes.fill('1');
    await coffee.getByRole('button', { name: 'Brew Coffee pot' }).click();
    await pot.waitForHeater(true, 5000);
    await expect.poll(() => coffee.locator('.state').textContent()).toMatch(/^on until /);
    await page.screenshot({ path: join(shots, 'brewing.png') });
    await coffee.getByRole('button', { name: 'Stop Coffee pot' }).click();
    await pot.waitForHeater(false, 5000);
    await expect.poll(() => coffee.locator('.state').textContent()).toBe('off');
  });

  it('a 1-minute brew ends by itself: the heater goes off and the page shows it', async () => {
    const coffee = card(page, 'coffee');
    await coffee.getByLabel('Minutes').fill('1');
    const started = Date.now();
    await coffee.getByRole('button', { name: 'Brew Coffee pot' }).click();
    await pot.waitForHeater(true, 5000);
    await expect.poll(() => coffee.locator('.state').textContent()).toMatch(/^on until /);
    const off = await pot.waitForHeater(false, 75_000);
    // Not before its minute: the brew ran its time, it was not cut short (and if it was, hearth's
    // warning says by which rule).
    expect(
      Date.now() - started,
      `the heater went off early, by ${off.cause}; hearth said:\n${hearth
        .output()
        .split('\n')
        .filter((l) => l.includes('"level":40'))
        .join('\n')}`,
    ).toBeGreaterThanOrEqual(59_000);
    await expect.poll(() => coffee.locator('.state').textContent()).toBe('off');
    await page.screenshot({ path: join(shots, 'brew-ended.png') });
  }, 90_000);

  it('lists automations and runs one now', async () => {
    const a = page.locator('li[data-automation="lamp-on"]');
    await expect.poll(() => a.count()).toBe(1);
    expect(await a.textContent()).toContain('Last run: never');
    await a.getByRole('button', { name: 'Run now: Lamp on' }).click();
    await expect.poll(() => lamp.on).toBe(true);
    await expect.poll(() => a.locator('.outcome').first().textContent()).toMatch(/running|ok/);
    await a.locator('summary').click();
    await expect.poll(() => a.locator('.runs li').count()).toBe(1);
    expect(await a.locator('.runs li').textContent()).toContain('webhook');
  });

  it("shows the newest backup's age and the next scheduled one", async () => {
    const line = page.locator('section.backups');
    await expect.poll(() => line.count()).toBe(1);
    const text = (await line.textContent()) ?? '';
    expect(text).toMatch(/Newest backup \d+ (second|minute)s? ago \(0\.\d MB\)/);
    expect(text).toContain('· next');
    expect(await line.getAttribute('class')).toBe('backups');
  });

  it('has no serious or critical accessibility violations (axe-core), and nothing the CSP refused', async () => {
    const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    await page.evaluate(axe);
    // Both colour schemes: contrast is checked in each.
    for (const colorScheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme });
      const result = (await page.evaluate(
        'axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) })))',
      )) as Array<{ id: string; impact: string; nodes: string[] }>;
      const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect([colorScheme, bad]).toEqual([colorScheme, []]);
    }
    await page.screenshot({ path: join(shots, 'dashboard-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    expect(errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
  });

  it('the public page has no control at all', async () => {
    const pub = await context.newPage();
    await pub.goto(`${publicUrl}/`);
    await expect.poll(() => pub.locator('li[data-id="lamp"]').count()).toBe(1);
    expect(await pub.locator('button, form, input, select, textarea, a[href]').count()).toBe(0);
    // Nor does the app load there.
    expect(await pub.locator('script[src]').count()).toBe(0);
    await pub.screenshot({ path: join(shots, 'public-status.png'), fullPage: true });
    await pub.close();
  });

  it('the public page follows event: state, removed and reset, from where its list was rendered', async () => {
    const pub = await context.newPage();
    const pubErrors = watchConsole(pub);
    // The page names the journal's id as of its list; its stream starts there.
    const html = (await http(`${publicUrl}/`)).body;
    expect(html).toMatch(/<ul id="entities" data-last-event-id="[0-9a-f]{8}-\d+">/);
    await pub.goto(`${publicUrl}/`);
    await expect.poll(() => pub.locator('#live').textContent()).toBe('live');
    const row = (id: string) => pub.locator(`li[data-id="${id}"]`);
    expect((await post(`${hearth.url}/api/v0/buttons/porchbell/on/`)).status).toBe(200);
    await expect.poll(() => row('porchbell').count()).toBe(1);
    expect(await row('porchbell').locator('[data-f="state"]').textContent()).toBe('on');
    expect((await http(`${hearth.url}/api/v1/entities/porchbell`, { method: 'DELETE' })).status).toBe(204);
    await expect.poll(() => row('porchbell').count()).toBe(0);
    expect(await row('lamp').count()).toBe(1);
    // A reset replaces the whole list with its snapshot: this one has a single entity.
    const snapshot = {
      reason: 'gap',
      entities: [
        {
          id: 'only-one',
          name: 'Only one',
          kind: 'button',
          state: 'off',
          available: true,
          updatedAt: null,
          attributes: {},
        },
      ],
    };
    await pub.route('**/api/v1/events*', (route) =>
      route.fulfill({
        status: 200,
        headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store' },
        body: `retry: 60000\nid: 00000000-1\nevent: reset\ndata: ${JSON.stringify(snapshot)}\n\n`,
      }),
    );
    await pub.reload();
    await expect.poll(() => pub.locator('#entities li').count()).toBe(1);
    expect(await row('only-one').locator('[data-f="name"]').textContent()).toBe('Only one');
    expect(await pub.locator('#empty').isHidden()).toBe(true);
    // A reset to nothing says so.
    snapshot.entities = [];
    await pub.reload();
    await expect.poll(() => pub.locator('#empty').isVisible()).toBe(true);
    expect(await pub.locator('#entities li').count()).toBe(0);
    expect(pubErrors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
    await pub.close();
  });

  it('the public page shows every entity without JavaScript', async () => {
    const ctx = await launch(dir, false);
    const pub = await ctx.newPage();
    await pub.goto(`${publicUrl}/`);
    expect(await pub.locator('li[data-id="lamp"] [data-f="name"]').textContent()).toBe('Living room lamp');
    expect(await pub.locator('li[data-id="coffee"]').count()).toBe(1);
    expect(await pub.locator('#empty').isHidden()).toBe(true);
    await ctx.close();
  });

  it('refuses a page of another origin that tries to toggle the lamp or brew, and nothing changes', async () => {
    const before = { lamp: lamp.on, heater: pot.heater };
    const target = hearth.url;
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>evil</title><form id="f" method="POST" action="${target}/api/v1/entities/coffee/commands/brew" enctype="text/plain"><input name='{"minutes":1, "x":"' value='"}'></form>
<script>
const results = [];
const tries = [
  fetch('${target}/api/v1/entities/lamp/commands/toggle', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
  fetch('${target}/api/v1/entities/lamp/commands/toggle', { method: 'POST', mode: 'no-cors', body: '{}' }),
  fetch('${target}/api/v1/entities/coffee/commands/brew', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{"minutes":1}' }),
  fetch('${target}/api/v1/automations/lamp-on/run', { method: 'POST', mode: 'no-cors', body: '{}' }),
];
Promise.allSettled(tries).then((r) => { document.title = 'done ' + r.map((x) => x.status + ':' + (x.value ? x.value.status : '')).join(','); });
</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const { port } = evil.address() as { port: number };
    const forbidden = async () => {
      const r = await http(`${hearth.url}/metrics`);
      const line = r.body
        .split('\n')
        .find((l) => l.startsWith('hearth_http_forbidden_total{listener="control",reason="origin"}'));
      return Number(line?.split(' ').pop() ?? 0);
    };
    const refusedBefore = await forbidden();
    try {
      const other = await context.newPage();
      await other.goto(`http://127.0.0.1:${port}/`);
      await expect.poll(() => other.title()).toMatch(/^done /);
      // The JSON fetch dies at the preflight; the no-cors ones reach hearth and are refused.
      expect(await other.title()).toMatch(/^done rejected:,fulfilled:0,fulfilled:0,fulfilled:0$/);
      // A plain form POST: a navigation, which carries no preflight.
      await Promise.all([
        other.waitForURL(`${target}/**`),
        other.evaluate("document.getElementById('f').submit()"),
      ]);
      expect(await other.locator('body').textContent()).toContain('HEARTH_ERR_FORBIDDEN');
      await other.close();
      // All four answered, refused: none of them is still on its way to a device.
      expect(await forbidden()).toBeGreaterThanOrEqual(refusedBefore + 4);
      expect({ lamp: lamp.on, heater: pot.heater }).toEqual(before);
    } finally {
      evil.closeAllConnections();
      await new Promise((r) => evil.close(r));
    }
  });
});

describe.skipIf(chromiumMissing)('the dashboard with http.token: log in once, a session cookie', () => {
  const dir = tempDir('hearth-web-token-');
  let lamp: WemoSimulator;
  let hearth: HearthProcess;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    lamp = await startWemoSimulator({ initial: false });
    const config = join(dir, 'hearth.yaml');
    writeFileSync(
      config,
      `http:
  host: 127.0.0.1
  port: 0
  token: \${HEARTH_TOKEN}
storage: { sqlite: hearth.db }
switches:
  - { id: lamp, kind: wemo/v1, name: Lamp, address: 127.0.0.1, port: ${lamp.port}, pollSeconds: 0 }
`,
    );
    hearth = await spawnHearth(config, { HEARTH_TOKEN: TOKEN });
    context = await launch(dir);
    page = await context.newPage();
  });

  afterAll(async () => {
    await context?.close();
    if (hearth && hearth.child.exitCode === null) {
      hearth.child.kill('SIGTERM');
      await hearth.exited;
    }
    await lamp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the token, refuses a wrong one, and then controls with an HttpOnly SameSite=Strict cookie', async () => {
    await page.goto(`${hearth.url}/`);
    const token = page.getByLabel('Token');
    await token.waitFor({ timeout: 5000 });
    // Entities show, without controls, before the login.
    await expect.poll(() => card(page, 'lamp').count()).toBe(1);
    expect(await card(page, 'lamp').getByRole('button').count()).toBe(0);
    expect(await card(page, 'lamp').getByRole('switch').count()).toBe(0);
    await page.screenshot({ path: join(shots, 'login.png') });

    await token.fill('not-the-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not the token');
    expect(await context.cookies()).toEqual([]);

    await token.fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    const toggle = card(page, 'lamp').getByRole('switch', { name: 'Lamp', checked: false });
    await toggle.waitFor({ timeout: 5000 });
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    const [c] = cookies;
    expect(c).toMatchObject({
      name: 'hearth_session',
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
      secure: false,
    });
    expect(c?.value).not.toContain(TOKEN);
    const days = ((c?.expires ?? 0) * 1000 - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30);
    // Out of the page's reach: neither the cookie nor the token is in script-visible storage.
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(
      await page.evaluate('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })'),
    ).toBe('{}{}');
    expect(page.url()).not.toContain(TOKEN);

    await toggle.click();
    await expect.poll(() => lamp.on).toBe(true);

    // The cookie is what authorises: the same request without it is refused.
    expect(
      (await post(`${hearth.url}/api/v1/entities/lamp/commands/toggle`, { headers: json, body: '{}' }))
        .status,
    ).toBe(403);
    const withCookie = await post(`${hearth.url}/api/v1/entities/lamp/commands/toggle`, {
      headers: { ...json, cookie: `hearth_session=${c?.value}` },
      body: '{}',
    });
    expect(withCookie.status).toBe(200);
    expect(lamp.on).toBe(false);
    // A made-up session is not one.
    const forged = await post(`${hearth.url}/api/v1/entities/lamp/commands/toggle`, {
      headers: { ...json, cookie: 'hearth_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      body: '{}',
    });
    expect(forged.status).toBe(403);

    // A reload keeps the session.
    await page.reload();
    await card(page, 'lamp').getByRole('switch', { name: 'Lamp', checked: false }).waitFor({ timeout: 5000 });

    // Logging out ends it on the server too.
    await page.getByRole('button', { name: 'Log out' }).click();
    await token.waitFor({ timeout: 3000 });
    await expect.poll(async () => (await context.cookies()).length).toBe(0);
    const after = await post(`${hearth.url}/api/v1/entities/lamp/commands/toggle`, {
      headers: { ...json, cookie: `hearth_session=${c?.value}` },
      body: '{}',
    });
    expect(after.status).toBe(403);
    expect(lamp.on).toBe(false);
  });

  it('the login route takes JSON only, from this origin only', async () => {
    const viaForm = await post(`${hearth.url}/api/v1/session`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${TOKEN}`,
    });
    expect(viaForm.status).toBe(415);
    const crossSite = await post(`${hearth.url}/api/v1/session`, {
      headers: { ...json, origin: 'http://evil.example' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.get('set-cookie')).toBeNull();
    const ok = await post(`${hearth.url}/api/v1/session`, {
      headers: json,
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('set-cookie')).toMatch(
      /^hearth_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=2592000; HttpOnly; SameSite=Strict$/,
    );
  });
});
