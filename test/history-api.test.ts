// GET /api/v1/entities/<id>/history through a real hearth, on SQLite and on PostgreSQL (one box
// whose store is a fresh test database), with a sensor fed by an mqtt-sensor/v1 thing over a
// Mosquitto of the test's own.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hearth, startHearth } from '../src/compose.js';
import { loadConfigFile } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import { drivers } from '../src/drivers/index.js';
import { http, tempDir } from './support/hearth.js';
import { mosquittoMissing, TestMosquitto } from './support/mosquitto.js';
import { createTestDatabase, postgresMissing } from './support/postgres.js';
import { until } from './support/wait.js';

interface Backend {
  name: string;
  storage(): Promise<{ yaml: string; drop(): Promise<void> }>;
}

const backends: Backend[] = [
  { name: 'sqlite', storage: async () => ({ yaml: '{ sqlite: hearth.db }', drop: async () => {} }) },
  {
    name: 'postgres',
    async storage() {
      const db = await createTestDatabase();
      return { yaml: `{ postgres: { url: "${db.url}" } }`, drop: () => db.drop() };
    },
  },
];

const json = async (url: string) => {
  const r = await http(url);
  return { status: r.status, body: JSON.parse(r.body) };
};

for (const backend of backends)
  describe.skipIf(mosquittoMissing ?? (backend.name === 'postgres' && postgresMissing))(
    `history API on ${backend.name}`,
    () => {
      let broker: TestMosquitto;
      let device: MqttClient;
      let h: Hearth;
      let dir: string;
      let drop: () => Promise<void>;
      let base: string;
      let publicBase: string;

      beforeAll(async () => {
        broker = await TestMosquitto.start();
        device = await mqtt.connectAsync(broker.url);
        const storage = await backend.storage();
        drop = storage.drop;
        dir = tempDir();
        const file = join(dir, 'hearth.yaml');
        writeFileSync(
          file,
          [
            'http: { host: 127.0.0.1, port: 0, public: { host: 127.0.0.1, port: 0 } }',
            `storage: ${storage.yaml}`,
            `mqtt: { url: "${broker.url}" }`,
            'history: { flush: 100ms }',
            'things:',
            '  - { id: temp, kind: mqtt-sensor/v1, topic: home/temp, unit: "°C" }',
            '',
          ].join('\n'),
        );
        h = await startHearth(loadConfigFile(file, { drivers }), { log: silentLogger() });
        base = `${h.url}/api/v1/entities`;
        publicBase = `${h.publicUrl}/api/v1/entities`;
      });
      afterAll(async () => {
        await h?.stop();
        await device?.endAsync();
        await broker?.stop();
        await drop?.();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      /** The history of `id` once `ok` holds for it. */
      function historyWhen(
        id: string,
        ok: (body: { points: Record<string, unknown>[] }) => boolean,
        what: string,
      ) {
        return until(
          async () => {
            const r = await json(`${base}/${id}/history`);
            return r.status === 200 && ok(r.body) ? r.body : undefined;
          },
          { what: `the history of ${id} to hold ${what}` },
        );
      }

      it('answers the raw readings of the last 24 h, with the unit', async () => {
        // The first retained, so hearth has it however late it subscribes; the others once it has.
        await device.publishAsync('home/temp', '20', { retain: true });
        await until(() => h.runtime.get('temp')?.state === 20, { what: 'the sensor to read 20' });
        // Back to back: both often reach hearth in one packet, and so are recorded in one ms.
        for (const v of ['21', '25']) await device.publishAsync('home/temp', v);
        const body = await historyWhen(
          'temp',
          (b) => b.points.filter((p) => typeof p.v === 'number').length === 3,
          'three readings',
        );
        expect(body).toMatchObject({ id: 'temp', unit: '°C', step: null });
        expect(body.to - body.from).toBe(86_400_000);
        const numbers = body.points.filter((p: { v: unknown }) => typeof p.v === 'number');
        expect(numbers.map((p: { v: number }) => p.v)).toEqual([20, 21, 25]);
        // Oldest first, epoch ms, within the range.
        const times = body.points.map((p: { t: number }) => p.t);
        expect([...times].sort((a, b) => a - b)).toEqual(times);
        expect(times[0]).toBeGreaterThanOrEqual(body.from);
      });

      it('answers buckets (min, mean, max, count) when asked for a step', async () => {
        const now = Date.now();
        const r = await json(
          `${base}/temp/history?from=${now - 3_600_000}&to=${new Date(now + 1000).toISOString()}&step=1h`,
        );
        expect(r.status).toBe(200);
        expect(r.body.step).toBe(3_600_000);
        const buckets = r.body.points.filter((p: { min?: number }) => p.min !== undefined);
        const all = buckets.reduce(
          (
            acc: { min: number; max: number; sum: number; count: number },
            b: { min: number; max: number; mean: number; count: number },
          ) => ({
            min: Math.min(acc.min, b.min),
            max: Math.max(acc.max, b.max),
            sum: acc.sum + b.mean * b.count,
            count: acc.count + b.count,
          }),
          { min: Infinity, max: -Infinity, sum: 0, count: 0 },
        );
        expect(all).toEqual({ min: 20, max: 25, sum: 66, count: 3 });
      });

      it('serves it on the public listener too (it is status: the states are public there already)', async () => {
        const r = await json(`${publicBase}/temp/history`);
        expect(r.status).toBe(200);
        expect(r.body.id).toBe('temp');
      });

      it('refuses too many points (400, saying which step would do), a bad time, and an unknown entity (404)', async () => {
        const year = await json(
          `${base}/temp/history?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z&step=1m`,
        );
        expect(year.status).toBe(400);
        expect(year.body.error.message).toBe('366d in steps of 1m is more than 5000 points');
        expect(year.body.error.hint).toBe('Ask for step=3h or more, or a shorter range.');
        // Without a step, a range past raw retention comes in the smallest step that fits.
        const auto = await json(`${base}/temp/history?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z`);
        expect(auto.status).toBe(200);
        expect(auto.body.step).toBe(3 * 3_600_000);
        const bad = await json(`${base}/temp/history?from=yesterday`);
        expect(bad.status).toBe(400);
        expect(bad.body.error.message).toBe('from is not a time: use an ISO time or epoch ms');
        const backwards = await json(`${base}/temp/history?from=2000&to=1000`);
        expect(backwards.status).toBe(400);
        const step = await json(`${base}/temp/history?step=5x`);
        expect(step.status).toBe(400);
        const none = await json(`${base}/nothing-here/history`);
        expect(none.status).toBe(404);
        expect(none.body.error.code).toBe('HEARTH_ERR_ENTITY_NOT_FOUND');
      });

      it('keeps the history of a button after it is deleted', async () => {
        expect((await http(`${h.url}/api/v0/buttons/gone/on`, { method: 'POST' })).status).toBeLessThan(300);
        await historyWhen('gone', (b) => b.points.some((p) => p.v === 'on'), 'the press');
        expect((await http(`${base}/gone`, { method: 'DELETE' })).status).toBe(204);
        const after = await json(`${base}/gone/history`);
        expect(after.status).toBe(200);
        expect(after.body).toMatchObject({ id: 'gone', unit: null });
        expect(after.body.points.some((p: { v: unknown }) => p.v === 'on')).toBe(true);
      });
    },
  );
