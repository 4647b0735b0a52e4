import type { Registry } from 'prom-client';
import type { BackupStatus } from '../backup/scheduler.js';
import type { EntityView, RuntimeApi } from '../core/runtime-api.js';
import { hearthVersion } from '../version.js';

/** What metrics read of the runtime: its entities at scrape time, and its events. */
export type MetricsRuntime = Pick<RuntimeApi, 'list' | 'ready' | 'events'>;

/**
 * Prometheus metrics, fed by the bus and by reading the runtime at scrape time.
 *
 * hearth's own series are plain counters and histograms in memory, written in the text
 * exposition format here. prom-client (with its OpenTelemetry dependency) is loaded at the
 * first scrape, for the process and Node.js series (`process_resident_memory_bytes`, GC,
 * event-loop lag ...): a box nobody scrapes never parses it. Those series count from the first
 * scrape on, except the process ones (CPU, memory, start time), which the OS keeps anyway.
 */
export class Metrics {
  readonly httpRequests = new CounterFamily(
    'hearth_http_requests_total',
    'HTTP requests answered, by route pattern and status',
    ['method', 'route', 'status'],
  );
  readonly httpDuration = new HistogramFamily(
    'hearth_http_request_duration_seconds',
    'Time to answer an HTTP request, by route pattern',
    ['route'],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly forbidden = new CounterFamily('hearth_http_forbidden_total', 'Requests refused with 403', [
    'listener',
    'reason',
  ]);
  readonly connectionsRefused = new CounterFamily(
    'hearth_http_connections_refused_total',
    'Connections closed on arrival because their client address already had http.maxConnectionsPerClient open',
    ['listener'],
  );
  readonly sseStreams = new GaugeFamily(
    'hearth_sse_streams',
    'Event streams (GET /api/v1/events) open now, by listener',
    ['listener'],
  );
  readonly sseRefused = new CounterFamily(
    'hearth_sse_refused_total',
    'Event streams refused because the listener had http.maxStreams open',
    ['listener'],
  );
  readonly sseDropped = new CounterFamily(
    'hearth_sse_dropped_total',
    'Event streams closed because the client did not read (buffer: too much unread; stalled: no drain in time)',
    ['listener', 'reason'],
  );
  readonly sseFrames = new CounterFamily(
    'hearth_sse_frames_total',
    'State events serialised for event streams: one per change and audience, whatever the number of streams',
    ['listener'],
  );
  readonly sseReplayed = new CounterFamily(
    'hearth_sse_replayed_total',
    'Events sent again to event streams that reconnected with Last-Event-ID',
    ['listener'],
  );
  readonly sseResets = new CounterFamily(
    'hearth_sse_resets_total',
    'Reconnected event streams sent a reset and a snapshot instead of a replay, by reason (too-old, other-process, invalid, too-much)',
    ['listener', 'reason'],
  );
  readonly #automationRuns = new CounterFamily(
    'hearth_automation_runs_total',
    'Automation runs ended or skipped, by automation and outcome (ok, failed, skipped, cancelled)',
    ['automation', 'outcome'],
  );
  readonly #deviceDuration = new HistogramFamily(
    'hearth_device_call_duration_seconds',
    'Time of calls to devices, by driver, entity, operation and outcome',
    ['driver', 'entity', 'op', 'outcome'],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly #deviceErrors = new CounterFamily(
    'hearth_device_call_errors_total',
    'Failed calls to devices (timeouts and errors), by driver and entity',
    ['driver', 'entity', 'op', 'outcome'],
  );
  readonly #runtime: MetricsRuntime;
  readonly #leases: (() => ReadonlyArray<{ lease: string; leading: boolean }>) | undefined;
  #mqtt: (() => MqttHealth) | undefined;
  #backups: (() => BackupStatus | null) | undefined;
  #process: Promise<Registry> | undefined;

  /** What app.ts serves at /metrics: the same shape as a prom-client Registry. */
  readonly registry = {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    metrics: () => this.#text(),
  };

  /**
   * Device calls and automation runs are counted from `runtime.events`, the bus the runtime's
   * own devices and automations announce them on. `leases`: what this process leads
   * (`hearth_leader{lease}`: 1 holder, 0 standby); a cluster role's. One box leads nothing and
   * has no such series.
   */
  constructor(runtime: MetricsRuntime, leases?: () => ReadonlyArray<{ lease: string; leading: boolean }>) {
    this.#runtime = runtime;
    this.#leases = leases;
    const bus = runtime.events;
    bus.on(
      'device.call',
      (c) => {
        const labels = { driver: c.driver, entity: c.entity, op: c.op, outcome: c.outcome };
        this.#deviceDuration.observe(labels, c.durationMs / 1000);
        if (c.outcome !== 'ok') this.#deviceErrors.inc(labels);
      },
      'metrics',
    );
    bus.on(
      'automation.run',
      (r) => this.#automationRuns.inc({ automation: r.automation, outcome: r.outcome }),
      'metrics',
    );
  }

  /** Reports this process's MQTT connection (`hearth_mqtt_*`); set where there is one. */
  watchMqtt(read: () => MqttHealth): void {
    this.#mqtt = read;
  }

  /** Reports backups (`hearth_backup_*`); set where the scheduler runs. */
  watchBackups(read: () => BackupStatus | null): void {
    this.#backups = read;
  }

  async #text(): Promise<string> {
    this.#process ??= import('prom-client').then((mod) => {
      // prom-client is CommonJS: in the bundle its exports arrive on `default`, from source as
      // named exports too. test/secrets.test.ts scrapes the built CLI.
      const { Registry, collectDefaultMetrics } = (mod as unknown as { default?: typeof mod }).default ?? mod;
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      return registry;
    });
    const build = new GaugeFamily(
      'hearth_build_info',
      "hearth's version and the Node.js it runs on; always 1",
      ['version', 'node'],
    );
    build.set({ version: hearthVersion, node: process.versions.node }, 1);
    const available = new GaugeFamily('hearth_entity_available', '1 if the entity is available, 0 if not', [
      'entity',
      'kind',
      'driver',
    ]);
    const states = new EntityStates();
    for (const e of this.#runtime.list()) {
      available.set({ entity: e.id, kind: e.kind, driver: e.driver }, e.available ? 1 : 0);
      states.add(e);
    }
    const ready = new GaugeFamily(
      'hearth_ready',
      '1 once the store is open and every driver has started',
      [],
    );
    ready.set({}, this.#runtime.ready ? 1 : 0);
    const leader = new GaugeFamily(
      'hearth_leader',
      '1 while this process holds the lease (it leads), 0 while it stands by',
      ['lease'],
    );
    for (const l of this.#leases?.() ?? []) leader.set({ lease: l.lease }, l.leading ? 1 : 0);
    const mqtt = this.#mqtt?.();
    const mqttFamilies = mqtt ? mqttSeries(mqtt) : [];
    const backups = this.#backups?.();
    const backupFamilies = backups ? backupSeries(backups) : [];
    const own = [
      this.httpRequests,
      this.httpDuration,
      this.forbidden,
      this.connectionsRefused,
      this.sseStreams,
      this.sseRefused,
      this.sseDropped,
      this.sseFrames,
      this.sseReplayed,
      this.sseResets,
      this.#deviceDuration,
      this.#deviceErrors,
      this.#automationRuns,
      build,
      available,
      ...states.families(),
      ready,
      ...(this.#leases ? [leader] : []),
      ...mqttFamilies,
      ...backupFamilies,
    ].map((f) => f.text());
    return `${own.join('\n\n')}\n\n${await (await this.#process).metrics()}`;
  }
}

type Labels<L extends string> = Partial<Record<L, string | number>>;

/** Label sets are keyed by their values in declared order; entity ids bound how many there are. */
abstract class Family<L extends string, V> {
  protected readonly series = new Map<string, { labels: string; value: V }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
  ) {}

  protected entry(labels: Labels<L>, init: () => V): V {
    const key = this.labelNames.map((n) => String(labels[n] ?? '')).join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const text = this.labelNames
        .filter((n) => labels[n] !== undefined)
        .map((n) => `${n}="${escapeLabel(String(labels[n]))}"`)
        .join(',');
      s = { labels: text, value: init() };
      this.series.set(key, s);
    }
    return s.value;
  }

  protected abstract type: string;
  protected abstract lines(): string[];

  text(): string {
    return [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
      ...this.lines(),
    ].join('\n');
  }
}

class CounterFamily<L extends string> extends Family<L, { n: number }> {
  protected type = 'counter';

  inc(labels: Labels<L>, by = 1): void {
    this.entry(labels, () => ({ n: 0 })).n += by;
  }

  protected lines(): string[] {
    return [...this.series.values()].map((s) => `${this.name}${braces(s.labels)} ${formatValue(s.value.n)}`);
  }
}

class GaugeFamily<L extends string> extends Family<L, { n: number }> {
  protected type = 'gauge';

  set(labels: Labels<L>, value: number): void {
    this.entry(labels, () => ({ n: 0 })).n = value;
  }

  protected lines(): string[] {
    return [...this.series.values()].map((s) => `${this.name}${braces(s.labels)} ${formatValue(s.value.n)}`);
  }
}

interface HistogramSeries {
  /** Count per bucket (not cumulative); the last is +Inf. */
  buckets: number[];
  sum: number;
  count: number;
}

class HistogramFamily<L extends string> extends Family<L, HistogramSeries> {
  protected type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    private readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }

  observe(labels: Labels<L>, value: number): void {
    const s = this.entry(labels, () => ({
      buckets: new Array(this.bounds.length + 1).fill(0),
      sum: 0,
      count: 0,
    }));
    const found = this.bounds.findIndex((b) => value <= b);
    const i = found === -1 ? this.bounds.length : found;
    s.buckets[i] = (s.buckets[i] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }

  protected lines(): string[] {
    const out: string[] = [];
    for (const { labels, value } of this.series.values()) {
      const sep = labels === '' ? '' : ',';
      let cumulative = 0;
      this.bounds.forEach((b, i) => {
        cumulative += value.buckets[i] ?? 0;
        out.push(`${this.name}_bucket{${labels}${sep}le="${formatValue(b)}"} ${cumulative}`);
      });
      out.push(`${this.name}_bucket{${labels}${sep}le="+Inf"} ${value.count}`);
      out.push(`${this.name}_sum${braces(labels)} ${formatValue(value.sum)}`);
      out.push(`${this.name}_count${braces(labels)} ${value.count}`);
    }
    return out;
  }
}

const braces = (labels: string) => (labels === '' ? '' : `{${labels}}`);

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** The exposition format's escapes: backslash, double quote and newline in label values. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** What `hearth_mqtt_*` reports of a connection (MqttLink's state and stats). */
export interface MqttHealth {
  connected: boolean;
  /** Payloads ignored because they were not what their topic carries (bad JSON, wrong shape, too big). */
  garbage: number;
  /** Publishes dropped because the offline queue was full. */
  dropped: number;
  reconnects: number;
  /** Of `garbage`, payloads over the connection's size limit, dropped unread. */
  oversize?: number;
}

function mqttSeries(m: MqttHealth): Array<{ text(): string }> {
  const connected = new GaugeFamily('hearth_mqtt_connected', '1 while connected to the MQTT broker', []);
  connected.set({}, m.connected ? 1 : 0);
  const garbage = new CounterFamily(
    'hearth_mqtt_garbage_total',
    'MQTT payloads ignored because they were not what their topic carries (bad JSON, wrong shape, unknown entity, too big)',
    [],
  );
  garbage.inc({}, m.garbage);
  const dropped = new CounterFamily(
    'hearth_mqtt_dropped_total',
    'MQTT publishes dropped while the broker was away, past the bounded queue',
    [],
  );
  dropped.inc({}, m.dropped);
  const reconnects = new CounterFamily(
    'hearth_mqtt_reconnects_total',
    'Connections to the MQTT broker after the first',
    [],
  );
  reconnects.inc({}, m.reconnects);
  const oversize = new CounterFamily(
    'hearth_mqtt_oversize_total',
    'MQTT payloads dropped unread because they were over the size limit (8 MiB); also in hearth_mqtt_garbage_total',
    [],
  );
  oversize.inc({}, m.oversize ?? 0);
  return [connected, garbage, dropped, reconnects, oversize];
}

/** The on/off kinds, and the state that counts as on for `hearth_entity_on`. */
const onStates: Partial<Record<EntityView['kind'], string>> = {
  switch: 'on',
  button: 'on',
  heater: 'on',
  calendar: 'on',
  binary_sensor: 'on',
  valve: 'open',
  chime: 'playing',
};

/**
 * A sensor unit as Prometheus names it (base units where a reading has an obvious one; the
 * units households read where the brief of a home dashboard wants them: percent, hPa, kWh),
 * and the factor from the sensor's unit to it.
 */
const sensorUnits: Record<string, { name: string; factor: number; offset?: number }> = {
  '°C': { name: 'celsius', factor: 1 },
  C: { name: 'celsius', factor: 1 },
  '°F': { name: 'celsius', factor: 5 / 9, offset: -32 },
  '%': { name: 'percent', factor: 1 },
  W: { name: 'watts', factor: 1 },
  kW: { name: 'watts', factor: 1000 },
  kWh: { name: 'kilowatt_hours', factor: 1 },
  Wh: { name: 'kilowatt_hours', factor: 0.001 },
  hPa: { name: 'hectopascals', factor: 1 },
  mbar: { name: 'hectopascals', factor: 1 },
  Pa: { name: 'hectopascals', factor: 0.01 },
  kPa: { name: 'hectopascals', factor: 10 },
  V: { name: 'volts', factor: 1 },
  mV: { name: 'volts', factor: 0.001 },
  A: { name: 'amperes', factor: 1 },
  mA: { name: 'amperes', factor: 0.001 },
  lx: { name: 'lux', factor: 1 },
  ppm: { name: 'ppm', factor: 1 },
  ppb: { name: 'ppb', factor: 1 },
  'µg/m³': { name: 'micrograms_per_cubic_meter', factor: 1 },
  Hz: { name: 'hertz', factor: 1 },
  s: { name: 'seconds', factor: 1 },
  min: { name: 'seconds', factor: 60 },
  m: { name: 'meters', factor: 1 },
  cm: { name: 'meters', factor: 0.01 },
  mm: { name: 'meters', factor: 0.001 },
  in: { name: 'meters', factor: 0.0254 },
};

/** Every sensor family is declared at each scrape, with or without series: a stable exposition. */
const sensorNames = [...new Set(Object.values(sensorUnits).map((u) => u.name))];

/** Entity states as gauges, built at each scrape from the runtime's views. */
class EntityStates {
  readonly #on = new GaugeFamily(
    'hearth_entity_on',
    '1 while the entity is on (a valve open, a chime playing, a climate running), 0 while not; no series until its state is known',
    ['entity', 'kind'],
  );
  readonly #target = new GaugeFamily(
    'hearth_climate_target_celsius',
    'The target temperature of an air conditioner or heat pump',
    ['entity'],
  );
  readonly #sensors = new Map(
    sensorNames.map((name) => [
      name,
      new GaugeFamily(`hearth_sensor_${name}`, `A sensor reading in ${name.replace(/_/g, ' ')}`, ['entity']),
    ]),
  );
  readonly #other = new GaugeFamily(
    'hearth_sensor_value',
    'A sensor reading in a unit without its own metric (the unit is a label)',
    ['entity', 'unit'],
  );

  add(e: EntityView): void {
    const on = onStates[e.kind];
    if (on !== undefined && typeof e.state === 'string') {
      this.#on.set({ entity: e.id, kind: e.kind }, e.state === on ? 1 : 0);
      return;
    }
    if (e.kind === 'climate' && typeof e.state === 'object' && e.state !== null) {
      const s = e.state as { power?: unknown; target?: unknown };
      this.#on.set({ entity: e.id, kind: e.kind }, s.power === 'on' ? 1 : 0);
      if (typeof s.target === 'number') this.#target.set({ entity: e.id }, s.target);
      return;
    }
    if (e.kind !== 'sensor' || typeof e.state !== 'number' || !Number.isFinite(e.state)) return;
    const unit = typeof e.attributes.unit === 'string' ? e.attributes.unit : '';
    const known = sensorUnits[unit];
    if (!known) {
      this.#other.set({ entity: e.id, unit }, e.state);
      return;
    }
    this.#sensors.get(known.name)?.set({ entity: e.id }, (e.state + (known.offset ?? 0)) * known.factor);
  }

  families(): Array<{ text(): string }> {
    return [this.#on, this.#target, ...this.#sensors.values(), this.#other];
  }
}

/** The newest archive in `backup.dir` (made on schedule or by hand), and whether backups are late. */
function backupSeries(b: BackupStatus): Array<GaugeFamily<never>> {
  const success = new GaugeFamily(
    'hearth_backup_last_success_timestamp_seconds',
    'When the newest archive in backup.dir was made (Unix time); absent while there is none',
    [],
  );
  const size = new GaugeFamily(
    'hearth_backup_last_size_bytes',
    'Size of the newest archive in backup.dir',
    [],
  );
  const stale = new GaugeFamily(
    'hearth_backup_stale',
    '1 when the newest archive is older than twice the backup.every schedule',
    [],
  );
  if (b.newest) {
    success.set({}, Date.parse(b.newest.at) / 1000);
    size.set({}, b.newest.bytes);
  }
  stale.set({}, b.stale ? 1 : 0);
  return [success, size, stale];
}
