import { describe, expect, it } from 'vitest';
import { letTimePass, settlesAtOnce, until, untilOutput, waitUntil } from './support/wait.js';

// The one wait helper of the tests (test/support/wait.ts): what it returns, and what its
// failures say, since a failure's message is all a reader of a CI log gets.
describe('test/support/wait.ts', () => {
  it('until returns the first truthy value of a sync or async check', async () => {
    let n = 0;
    expect(
      await until(() => (++n >= 3 ? { n } : undefined), { what: 'three checks', intervalMs: 1 }),
    ).toEqual({
      n: 3,
    });
    expect(await until(async () => 'yes', { what: 'an async yes' })).toBe('yes');
  });

  it('says what was awaited and the last value seen when it runs out', async () => {
    let n = 0;
    const err = await until(() => ++n > 1e9 && n, { what: 'a big n', timeoutMs: 60, intervalMs: 5 }).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^timed out after 60 ms waiting for a big n; last seen: false$/);
  });

  it('treats a throwing check as not yet, and reports its last error', async () => {
    let n = 0;
    expect(
      await until(
        () => {
          if (++n < 3) throw new Error(`not yet ${n}`);
          return n;
        },
        { what: 'n to reach 3', intervalMs: 1 },
      ),
    ).toBe(3);
    const err = await until(
      () => {
        throw new Error('the lamp is off');
      },
      { what: () => 'the lamp on', timeoutMs: 50 },
    ).catch((e: Error) => e);
    expect((err as Error).message).toBe(
      'timed out after 50 ms waiting for the lamp on; last error: the lamp is off',
    );
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('fails at once when failOn settles, with what it settled with', async () => {
    const t0 = performance.now();
    const err = await until(() => false, {
      what: 'a line',
      timeoutMs: 5000,
      failOn: letTimePass(30).then(() => 'the process exited (1)'),
    }).catch((e: Error) => e);
    expect((err as Error).message).toBe(
      'gave up waiting for a line: "the process exited (1)"; last seen: false',
    );
    expect(performance.now() - t0).toBeLessThan(4000);
  });

  it('does not let a check that never settles outlast the wait by much', async () => {
    const err = await until(() => new Promise<boolean>(() => {}), { what: 'an answer', timeoutMs: 50 }).catch(
      (e: Error) => e,
    );
    expect((err as Error).message).toMatch(
      /^timed out after 50 ms waiting for an answer: the last check did not settle/,
    );
  });

  it('untilOutput returns the match, and shows the end of the output when it fails', async () => {
    let out = 'starting\n';
    setTimeout(() => {
      out += 'hearth is ready on http://127.0.0.1:8080\n';
    }, 20);
    const m = await untilOutput(() => out, /ready on (\S+)/);
    expect(m[1]).toBe('http://127.0.0.1:8080');
    const err = await untilOutput(() => out, /never/, { timeoutMs: 40 }).catch((e: Error) => e);
    expect((err as Error).message).toContain(
      'waiting for /never/ in the output; the output ends:\nstarting\n',
    );
  });

  it('settlesAtOnce tells a refusal made at once from one that waits for a timer', async () => {
    expect(await settlesAtOnce(Promise.reject(new Error('full')))).toBe(true);
    expect(await settlesAtOnce((async () => Promise.resolve(1))())).toBe(true);
    expect(await settlesAtOnce(letTimePass(5))).toBe(false);
  });

  it('waitUntil keeps the (check, timeoutMs, what) form', async () => {
    let on = false;
    setTimeout(() => {
      on = true;
    }, 10);
    await waitUntil(() => on, 5000, 'the lamp on');
    await expect(waitUntil(() => false, 30, 'the lamp off')).rejects.toThrow(
      'timed out after 30 ms waiting for the lamp off',
    );
  });
});
