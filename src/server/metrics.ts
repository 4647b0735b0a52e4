import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus } from '../core/bus.js';
import type { RuntimeApi } from '../core/runtime-api.js';

/** Prometheus metrics, fed by the bus and by reading the runtime at scrape time. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'route'>;
  readonly forbidden: Counter<'listener' | 'reason'>;
  readonly sseStreams: Gauge<'listener'>;
  readonly sseRefused: Counter<'listener'>;
  readonly sseDropped: Counter<'listener' | 'reason'>;
  readonly sseFrames: Counter<'listener'>;

  /**
   * `leases`: what this process leads (`hearth_leader{lease}`: 1 holder, 0 standby); a cluster
   * role's. One box leads nothing and has no such series.
   */
  constructor(
    runtime: Pick<RuntimeApi, 'list' | 'ready'>,
    bus: Bus,
    leases?: () => ReadonlyArray<{ lease: string; leading: boolean }>,
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: 'hearth_http_requests_total',
      help: 'HTTP requests answered, by route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'hearth_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by route pattern',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.forbidden = new Counter({
      name: 'hearth_http_forbidden_total',
      help: 'Requests refused with 403',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.sseStreams = new Gauge({
      name: 'hearth_sse_streams',
      help: 'Event streams (GET /api/v1/events) open now, by listener',
      labelNames: ['listener'],
      registers,
    });
    this.sseRefused = new Counter({
      name: 'hearth_sse_refused_total',
      help: 'Event streams refused because the listener had http.maxStreams open',
      labelNames: ['listener'],
      registers,
    });
    this.sseDropped = new Counter({
      name: 'hearth_sse_dropped_total',
      help: 'Event streams closed because the client did not read (buffer: too much unread; stalled: no drain in time)',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.sseFrames = new Counter({
      name: 'hearth_sse_frames_total',
      help: 'State events serialised for event streams: one per change and audience, whatever the number of streams',
      labelNames: ['listener'],
      registers,
    });
    const deviceDuration = new Histogram({
      name: 'hearth_device_call_duration_seconds',
      help: 'Time of calls to devices, by driver, entity, operation and outcome',
      labelNames: ['driver', 'entity', 'op', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const deviceErrors = new Counter({
      name: 'hearth_device_call_errors_total',
      help: 'Failed calls to devices (timeouts and errors), by driver and entity',
      labelNames: ['driver', 'entity', 'op', 'outcome'],
      registers,
    });
    bus.on(
      'device.call',
      (c) => {
        const labels = { driver: c.driver, entity: c.entity, op: c.op, outcome: c.outcome };
        deviceDuration.observe(labels, c.durationMs / 1000);
        if (c.outcome !== 'ok') deviceErrors.inc(labels);
      },
      'metrics',
    );
    new Gauge({
      name: 'hearth_entity_available',
      help: '1 if the entity is available, 0 if not',
      labelNames: ['entity', 'kind', 'driver'],
      registers,
      collect() {
        this.reset();
        for (const e of runtime.list()) {
          this.set({ entity: e.id, kind: e.kind, driver: e.driver }, e.available ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'hearth_ready',
      help: '1 once the store is open and every driver has started',
      registers,
      collect() {
        this.set(runtime.ready ? 1 : 0);
      },
    });
    if (leases) {
      new Gauge({
        name: 'hearth_leader',
        help: '1 while this process holds the lease (it leads), 0 while it stands by',
        labelNames: ['lease'],
        registers,
        collect() {
          this.reset();
          for (const l of leases()) this.set({ lease: l.lease }, l.leading ? 1 : 0);
        },
      });
    }
  }
}
