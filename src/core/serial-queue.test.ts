import { describe, expect, it } from 'vitest';
import { QueueFullError, SerialQueue } from './serial-queue.js';

/** Work that takes a turn of the event loop (timers and I/O run meanwhile), so overlap would show. */
const aTurn = () => new Promise((r) => setImmediate(r));

describe('SerialQueue', () => {
  it('runs work one at a time, in the order given, past failures', async () => {
    const q = new SerialQueue('test');
    const log: string[] = [];
    let running = 0;
    const job = (name: string, fail = false) =>
      q.run(async () => {
        running++;
        expect(running).toBe(1);
        log.push(`start ${name}`);
        await aTurn();
        log.push(`end ${name}`);
        running--;
        if (fail) throw new Error(`${name} failed`);
        return name;
      });
    const a = job('a');
    const b = job('b', true);
    const c = job('c');
    await expect(a).resolves.toBe('a');
    await expect(b).rejects.toThrow('b failed');
    await expect(c).resolves.toBe('c');
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(q.size).toBe(0);
  });

  it('treats a function that throws at once like one that rejects', async () => {
    const q = new SerialQueue('test');
    const bad = q.run(() => {
      throw new Error('sync');
    });
    await expect(bad).rejects.toThrow('sync');
    await expect(q.run(async () => 1)).resolves.toBe(1);
  });

  it('refuses work past its limit with an error that says where, and takes work again once it drains', async () => {
    const q = new SerialQueue('commands for lamp', 2);
    let release = () => {};
    const first = q.run(() => new Promise<void>((r) => (release = r)));
    const second = q.run(async () => 'second');
    const third = q.run(async () => 'third');
    await expect(third).rejects.toBeInstanceOf(QueueFullError);
    await expect(third).rejects.toThrow('commands for lamp: 2 are already waiting');
    expect(q.size).toBe(2);
    release();
    await first;
    await expect(second).resolves.toBe('second');
    await q.idle();
    expect(q.size).toBe(0);
    await expect(q.run(async () => 'again')).resolves.toBe('again');
  });

  it('idle() waits for everything queued so far and never rejects', async () => {
    const q = new SerialQueue('test');
    let done = false;
    q.run(async () => {
      await aTurn();
      throw new Error('ignored by idle');
    }).catch(() => {});
    q.run(async () => {
      await aTurn();
      done = true;
    });
    await q.idle();
    expect(done).toBe(true);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => new SerialQueue('x', 0)).toThrow(RangeError);
  });
});
