import type {
  Counter as CounterType,
  Gauge as GaugeType,
  Histogram as HistogramType,
  Registry as RegistryType,
} from 'prom-client';
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';
import type { BackupStatus, EntityView } from '../contract/views.js';
import type { RuntimeApi } from '../core/runtime-api.js';
import { hearthRevision, hearthVersion } from '../version.js';

/** What metrics read of the runtime: its entities at scrape time, and its events. */
export type MetricsRuntime = Pick<RuntimeApi, 'list' | 'ready' | 'events'>;

/** What app.ts serves at /metrics: the text exposition format, and its content type. */
export interface Exposition {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/**
 * Prometheus metrics, fed by the bus and by reading the runtime at scrape time.
 *
 * hearth's own series are prom-client Counters, Gauges and Histograms in a Registry of this
 * Metrics' own (never prom-client's global one: a test process holds several). What is read at
 * scrape time (entities, readiness, leases, the MQTT link, backups) is a metric whose collect()
 * reads it. Only prom-client's metric classes load with hearth; its default metrics (the
 * process and Node.js series: `process_resident_memory_bytes`, GC, event-loop lag ...), with
 * their OpenTelemetry dependency, load at the first scrape: a box nobody scrapes never parses
 * them. Those series count from the first scrape on, except the process ones (CPU, memory,
 * start time), which the OS keeps anyway.
 */
export class Metrics {
  readonly #registry: RegistryType = new Registry();
  readonly httpRequests: CounterType<'method' | 'route' | 'status'> = this.#counter(
    'hearth_http_requests_total',
    'HTTP requests answered, by route pattern and status',
    ['method', 'route', 'status'],
  );
  readonly httpDuration: HistogramType<'route'> = new Histogram({
    name: 'hearth_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route pattern',
    labelNames: ['route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.#registry],
  });
  readonly forbidden: CounterType<'listener' | 'reason'> = this.#counter(
    'hearth_http_forbidden_total',
    'Requests refused with 403',
    ['listener', 'reason'],
  );
  readonly connectionsRefused: CounterType<'listener'> = this.#counter(
    'hearth_http_connections_refused_total',
    'Connections closed on arrival because their client address already had http.maxConnectionsPerClient open',
    ['listener'],
  );
  readonly sseStreams: GaugeType<'listener'> = new Gauge({
    name: 'hearth_sse_streams',
    help: 'Event streams (GET /api/v1/events) open now, by listener',
    labelNames: ['listener'],
    registers: [this.#registry],
  });
  readonly sseRefused: CounterType<'listener'> = this.#counter(
    'hearth_sse_refused_total',
    'Event streams refused because the listener had http.maxStreams open',
    ['listener'],
  );
  readonly sseDropped: CounterType<'listener' | 'reason'> = this.#counter(
    'hearth_sse_dropped_total',
    'Event streams closed because the client did not read (buffer: too much unread; stalled: no drain in time)',
    ['listener', 'reason'],
  );
  readonly sseFrames: CounterType<'listener'> = this.#counter(
    'hearth_sse_frames_total',
    'State events serialised for event streams: one per change and audience, whatever the number of streams',
    ['listener'],
  );
  readonly sseReplayed: CounterType<'listener'> = this.#counter(
    'hearth_sse_replayed_total',
    'Events sent again to event streams that reconnected with Last-Event-ID',
    ['listener'],
  );
  readonly sseResets: CounterType<'listener' | 'reason'> = this.#counter(
    'hearth_sse_resets_total',
    'Reconnected event streams sent a reset and a snapshot instead of a replay, by reason (too-old, other-process, invalid, too-much)',
    ['listener', 'reason'],
  );
  readonly #deviceDuration = new Histogram({
    name: 'hearth_device_call_duration_seconds',
    help: 'Time of calls to devices, by driver, entity, operation and outcome',
    labelNames: ['driver', 'entity', 'op', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.#registry],
  });
  readonly #deviceErrors = this.#counter(
    'hearth_device_call_errors_total',
    'Failed calls to devices (timeouts and errors), by driver and entity',
    ['driver', 'entity', 'op', 'outcome'],
  );
  readonly #automationRuns = this.#counter(
    'hearth_automation_runs_total',
    'Automation runs ended or skipped, by automation and outcome (ok, failed, skipped, cancelled)',
    ['automation', 'outcome'],
  );
  readonly #runtime: MetricsRuntime;
  /** What this scrape read of the runtime, once for every metric that shows it. */
  #scrape: Scrape | undefined;
  #mqtt: (() => MqttHealth) | undefined;
  #backups: (() => BackupStatus | null) | undefined;
  /** The `hearth_backup_*` metrics, apart: a process that cannot tell (null) shows none of them. */
  #backupRegistry: RegistryType | undefined;
  #process: Promise<RegistryType> | undefined;

  /** What app.ts serves at /metrics. */
  readonly registry: Exposition = {
    contentType: Registry.PROMETHEUS_CONTENT_TYPE,
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
    const scrape = () => this.#current();
    new Gauge({
      name: 'hearth_build_info',
      help: "hearth's version, the git commit it was built from, and the Node.js it runs on; always 1",
      labelNames: ['version', 'revision', 'node'],
      registers: [this.#registry],
    }).set({ version: hearthVersion, revision: hearthRevision, node: process.versions.node }, 1);
    this.#gauge(
      'hearth_entity_available',
      '1 if the entity is available, 0 if not',
      ['entity', 'kind', 'driver'],
      () => scrape().states.available,
    );
    this.#gauge(
      'hearth_entity_on',
      '1 while the entity is on (a valve open, a chime playing, a climate running), 0 while not; no series until its state is known',
      ['entity', 'kind'],
      () => scrape().states.on,
    );
    this.#gauge(
      'hearth_climate_target_celsius',
      'The target temperature of an air conditioner or heat pump',
      ['entity'],
      () => scrape().states.target,
    );
    // Every sensor family is declared at each scrape, with or without series: a stable exposition.
    for (const name of sensorNames) {
      this.#gauge(`hearth_sensor_${name}`, `A sensor reading in ${name.replace(/_/g, ' ')}`, ['entity'], () =>
        scrape().states.sensors(name),
      );
    }
    this.#gauge(
      'hearth_sensor_value',
      'A sensor reading in a unit without its own metric (the unit is a label)',
      ['entity', 'unit'],
      () => scrape().states.other,
    );
    this.#gauge('hearth_ready', '1 once the store is open and every driver has started', [], () => [
      [{}, this.#runtime.ready ? 1 : 0],
    ]);
    if (leases) {
      this.#gauge(
        'hearth_leader',
        '1 while this process holds the lease (it leads), 0 while it stands by',
        ['lease'],
        () => leases().map((l): Sample<'lease'> => [{ lease: l.lease }, l.leading ? 1 : 0]),
      );
    }
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
    const first = this.#mqtt === undefined;
    this.#mqtt = read;
    if (!first) return;
    const mqtt = () => this.#current().mqtt;
    this.#gauge('hearth_mqtt_connected', '1 while connected to the MQTT broker', [], () => [
      [{}, mqtt()?.connected ? 1 : 0],
    ]);
    this.#reading(
      'hearth_mqtt_garbage_total',
      'MQTT payloads ignored because they were not what their topic carries (bad JSON, wrong shape, unknown entity, too big)',
      () => mqtt()?.garbage,
    );
    this.#reading(
      'hearth_mqtt_dropped_total',
      'MQTT publishes dropped while the broker was away, past the bounded queue',
      () => mqtt()?.dropped,
    );
    this.#reading(
      'hearth_mqtt_reconnects_total',
      'Connections to the MQTT broker after the first',
      () => mqtt()?.reconnects,
    );
    this.#reading(
      'hearth_mqtt_oversize_total',
      'MQTT payloads dropped unread because they were over the size limit (8 MiB); also in hearth_mqtt_garbage_total',
      () => mqtt()?.oversize ?? 0,
    );
  }

  /** Reports backups (`hearth_backup_*`); set where the scheduler runs. */
  watchBackups(read: () => BackupStatus | null): void {
    this.#backups = read;
    if (this.#backupRegistry) return;
    const registry = new Registry();
    this.#backupRegistry = registry;
    const newest = () => this.#current().backups?.newest;
    // The newest archive in `backup.dir` (made on schedule or by hand), and whether backups are late.
    this.#gauge(
      'hearth_backup_last_success_timestamp_seconds',
      'When the newest archive in backup.dir was made (Unix time); absent while there is none',
      [],
      () => {
        const n = newest();
        return n ? [[{}, Date.parse(n.at) / 1000]] : [];
      },
      registry,
    );
    this.#gauge(
      'hearth_backup_last_size_bytes',
      'Size of the newest archive in backup.dir',
      [],
      () => {
        const n = newest();
        return n ? [[{}, n.bytes]] : [];
      },
      registry,
    );
    this.#gauge(
      'hearth_backup_stale',
      '1 when the newest archive is older than twice the backup.every schedule',
      [],
      () => [[{}, this.#current().backups?.stale ? 1 : 0]],
      registry,
    );
  }

  /** What this scrape reads: one look at the runtime, the MQTT link and backups for every metric. */
  #current(): Scrape {
    return this.#scrape ?? this.#read();
  }

  #read(): Scrape {
    return {
      states: EntityStates.of(this.#runtime.list()),
      mqtt: this.#mqtt?.(),
      backups: this.#backups?.() ?? null,
    };
  }

  async #text(): Promise<string> {
    this.#process ??= import('prom-client').then((mod) => {
      // prom-client is CommonJS: in the bundle its exports arrive on `default`, from source as
      // named exports too. test/secrets.test.ts scrapes the built CLI.
      const { collectDefaultMetrics } = (mod as unknown as { default?: typeof mod }).default ?? mod;
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      return registry;
    });
    const process = await this.#process;
    const scrape = this.#read();
    const registries = [this.#registry];
    if (this.#backupRegistry && scrape.backups) registries.push(this.#backupRegistry);
    registries.push(process);
    // Every collect() runs as metrics() starts, before its first await: they all see this scrape.
    this.#scrape = scrape;
    try {
      return await Registry.merge(registries).metrics();
    } finally {
      if (this.#scrape === scrape) this.#scrape = undefined;
    }
  }

  #counter<L extends string>(name: string, help: string, labelNames: readonly L[]): CounterType<L> {
    return new Counter({ name, help, labelNames, registers: [this.#registry] });
  }

  /** A gauge whose series are read at each scrape: exactly those `read` gives, in its order. */
  #gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => Iterable<Sample<L>>,
    registry = this.#registry,
  ): void {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        // An unlabelled gauge resets to 0; it shows no sample unless `read` gives one.
        if (labelNames.length === 0) this.remove();
        for (const [labels, value] of read()) this.set(labels, value);
      },
    });
  }

  /** An unlabelled counter that shows a total kept elsewhere (MqttLink's stats), read at each scrape. */
  #reading(name: string, help: string, read: () => number | undefined): void {
    new Counter({
      name,
      help,
      registers: [this.#registry],
      collect() {
        this.reset();
        const total = read();
        if (total === undefined) this.remove();
        else this.inc(total);
      },
    });
  }
}

/** One series of a gauge read at scrape time: its labels and its value. */
type Sample<L extends string> = [Partial<Record<L, string | number>>, number];

interface Scrape {
  states: EntityStates;
  mqtt: MqttHealth | undefined;
  backups: BackupStatus | null;
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

/** Entity states as gauge samples, read once per scrape from the runtime's views. */
class EntityStates {
  readonly available: Array<Sample<'entity' | 'kind' | 'driver'>> = [];
  readonly on: Array<Sample<'entity' | 'kind'>> = [];
  readonly target: Array<Sample<'entity'>> = [];
  readonly #sensors = new Map<string, Array<Sample<'entity'>>>();
  readonly other: Array<Sample<'entity' | 'unit'>> = [];

  static of(views: Iterable<EntityView>): EntityStates {
    const states = new EntityStates();
    for (const e of views) states.#add(e);
    return states;
  }

  /** The readings of `hearth_sensor_<name>`. */
  sensors(name: string): Array<Sample<'entity'>> {
    return this.#sensors.get(name) ?? [];
  }

  #add(e: EntityView): void {
    this.available.push([{ entity: e.id, kind: e.kind, driver: e.driver }, e.available ? 1 : 0]);
    const on = onStates[e.kind];
    if (on !== undefined && typeof e.state === 'string') {
      this.on.push([{ entity: e.id, kind: e.kind }, e.state === on ? 1 : 0]);
      return;
    }
    if (e.kind === 'climate' && typeof e.state === 'object' && e.state !== null) {
      const s = e.state as { power?: unknown; target?: unknown };
      this.on.push([{ entity: e.id, kind: e.kind }, s.power === 'on' ? 1 : 0]);
      if (typeof s.target === 'number') this.target.push([{ entity: e.id }, s.target]);
      return;
    }
    if (e.kind !== 'sensor' || typeof e.state !== 'number' || !Number.isFinite(e.state)) return;
    const unit = typeof e.attributes.unit === 'string' ? e.attributes.unit : '';
    const known = sensorUnits[unit];
    if (!known) {
      this.other.push([{ entity: e.id, unit }, e.state]);
      return;
    }
    const readings = this.#sensors.get(known.name) ?? [];
    this.#sensors.set(known.name, readings);
    readings.push([{ entity: e.id }, (e.state + (known.offset ?? 0)) * known.factor]);
  }
}
