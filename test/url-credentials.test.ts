// A URL with user:password@ in an automation's http action: refused by the built CLI at its
// line, and the password never printed (credentials belong in headers, from the secrets file).
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './support/cli-run.js';
import { tempDir } from './support/hearth.js';

const PASSWORD = `pw-${randomBytes(18).toString('base64url')}`;
const dir = tempDir('hearth-url-credentials-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (url: string) => `storage: { sqlite: hearth.db }
automations:
  - id: notify
    triggers: [{ webhook: true }]
    actions:
      - http:
          url: ${url}
          method: POST
`;

describe('an http action URL with credentials', () => {
  it('is refused by check and start at its line, written in the file or from the environment, and the password is never printed', {
    timeout: 60_000,
  }, async () => {
    const literal = join(dir, 'literal.yaml');
    writeFileSync(literal, config(`https://hook:${PASSWORD}@hooks.example.com/notify`));
    const fromEnv = join(dir, 'env.yaml');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's ${VAR}
    writeFileSync(fromEnv, config('"${HOOK_URL}"'));
    const env = { HOOK_URL: `http://admin:${PASSWORD}@192.168.1.20:8123/api/webhook/x` };
    const runs = await Promise.all([
      runCli(['check', '--config', literal]),
      runCli(['start', '--config', literal], { env: { HEARTH_LOG_LEVEL: 'trace' } }),
      runCli(['check', '--config', fromEnv], { env }),
    ]);
    for (const [r, file] of [
      [runs[0], literal],
      [runs[1], literal],
      [runs[2], fromEnv],
    ] as const) {
      expect(r?.code).toBe(1);
      expect(r?.stderr).toContain(
        `${file}:7:16: automations[0].actions[0].http.url: must not hold user:password@`,
      );
      expect(r?.stderr).toContain('put the credentials in headers');
      expect(`${r?.stdout}${r?.stderr}`).not.toContain(PASSWORD);
    }
  });

  it('a URL without credentials, with an Authorization header, is fine', async () => {
    const ok = join(dir, 'ok.yaml');
    writeFileSync(
      ok,
      `${config('https://hooks.example.com/notify')}          headers: { Authorization: "Bearer \${HOOK_TOKEN}" }\n`,
    );
    const r = await runCli(['check', '--config', ok], { env: { HOOK_TOKEN: PASSWORD } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(PASSWORD);
  });
});
