import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SerialPort } from 'serialport';
import { afterAll, describe, expect, it } from 'vitest';
import { PtyPair } from './pty.js';
import { openSerialPort } from './serial-port.js';

const dir = mkdtempSync(join(tmpdir(), 'hearth-serial-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function opened(port: SerialPort): Promise<void> {
  return new Promise((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
}

function closed(port: SerialPort): Promise<void> {
  return new Promise((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
}

describe('openSerialPort', () => {
  // The host's read finds nothing (EAGAIN) and waits on the binding's poller; the answer comes
  // later, while nothing else in this process is due. Node 26.4 on runs nothing after a poller
  // event, so without the wake-up the answer would sit until the next timer: here, the deadline.
  it('hands over an answer that comes while the loop is otherwise idle, at once, every time', async () => {
    const pair = new PtyPair(join(dir, 'ttyUSB0'));
    await pair.plug();
    const host = openSerialPort({ path: pair.devicePath, baudRate: 115200, autoOpen: false });
    const device = openSerialPort({ path: pair.simPath, baudRate: 115200, autoOpen: false });
    try {
      await Promise.all([opened(host), opened(device)]);
      device.on('data', (chunk: Buffer) => {
        setTimeout(() => device.write(`ack ${String(chunk)}`), 20);
      });
      let received = '';
      let wake: (() => void) | undefined;
      host.on('data', (chunk: Buffer) => {
        received += String(chunk);
        wake?.();
      });
      for (let i = 0; i < 5; i++) {
        const want = `ack ${i}\n`;
        const sent = Date.now();
        host.write(`${i}\n`);
        await new Promise<void>((resolve, reject) => {
          const deadline = setTimeout(
            () => reject(new Error(`no "${want.trim()}" within 1 s; got ${JSON.stringify(received)}`)),
            1000,
          );
          wake = () => {
            if (!received.includes(want)) return;
            clearTimeout(deadline);
            resolve();
          };
        });
        // 20 ms of the device's own delay plus the pty; the deadline is 1 s.
        expect(Date.now() - sent).toBeLessThan(500);
      }
    } finally {
      await Promise.all([closed(host), closed(device)]);
      await pair.unplug();
    }
  });
});
