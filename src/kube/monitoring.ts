/**
 * prometheus-operator's PodMonitor and ServiceMonitor (monitoring.coreos.com/v1), which
 * kubernetes-models has no type for: the fields hearth renders, each checked as the CRD's
 * schema checks it (required `selector`, the Duration pattern of `interval`, the `scheme` enum,
 * names and labels as Kubernetes takes them), so a monitor is validated offline like every
 * other rendered object.
 */

/** The CRD's Duration pattern (`interval`, `scrapeTimeout`). */
export const durationPattern =
  /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;
const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const labelKey =
  /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
/** A container or Service port name (IANA_SVC_NAME). */
const portName = /^(?=.{1,15}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** One scrape endpoint: a named port, a path, the scheme and how often. */
export interface MetricsEndpoint {
  port: string;
  path: string;
  scheme: 'http' | 'https';
  interval: string;
}

export interface MonitorMetadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

interface MonitorSpec {
  selector: { matchLabels: Record<string, string> };
  namespaceSelector: { matchNames: string[] };
  /** Pod labels copied onto every series (the role: app.kubernetes.io/component). */
  podTargetLabels: string[];
}

export interface PodMonitorSpec extends MonitorSpec {
  podMetricsEndpoints: MetricsEndpoint[];
}

export interface ServiceMonitorSpec extends MonitorSpec {
  endpoints: MetricsEndpoint[];
}

/** Why `value` is not a valid monitor, one problem per line; empty when it is. */
function problems(
  kind: string,
  metadata: MonitorMetadata,
  spec: MonitorSpec,
  endpoints: readonly MetricsEndpoint[],
): string[] {
  const out: string[] = [];
  if (!dnsLabel.test(metadata.name))
    out.push(`metadata.name ${JSON.stringify(metadata.name)} is not a DNS label`);
  if (!dnsLabel.test(metadata.namespace))
    out.push(`metadata.namespace ${JSON.stringify(metadata.namespace)} is not a DNS label`);
  const labels = (where: string, map: Record<string, string>) => {
    for (const [k, v] of Object.entries(map)) {
      if (!labelKey.test(k)) out.push(`${where}: ${JSON.stringify(k)} is not a label key`);
      if (!labelValue.test(v)) out.push(`${where}.${k}: ${JSON.stringify(v)} is not a label value`);
    }
  };
  labels('metadata.labels', metadata.labels);
  if (Object.keys(spec.selector.matchLabels).length === 0)
    out.push('spec.selector.matchLabels is empty: it would select every pod');
  labels('spec.selector.matchLabels', spec.selector.matchLabels);
  for (const n of spec.namespaceSelector.matchNames)
    if (!dnsLabel.test(n))
      out.push(`spec.namespaceSelector.matchNames: ${JSON.stringify(n)} is not a namespace`);
  for (const l of spec.podTargetLabels)
    if (!labelKey.test(l)) out.push(`spec.podTargetLabels: ${JSON.stringify(l)} is not a label key`);
  const field = kind === 'PodMonitor' ? 'podMetricsEndpoints' : 'endpoints';
  if (endpoints.length === 0) out.push(`spec.${field} is empty`);
  endpoints.forEach((e, i) => {
    const at = `spec.${field}[${i}]`;
    if (!portName.test(e.port)) out.push(`${at}.port ${JSON.stringify(e.port)} is not a port name`);
    if (!e.path.startsWith('/')) out.push(`${at}.path must start with /`);
    if (e.scheme !== 'http' && e.scheme !== 'https') out.push(`${at}.scheme must be http or https`);
    if (e.interval === '' || !durationPattern.test(e.interval))
      out.push(`${at}.interval ${JSON.stringify(e.interval)} is not a Prometheus duration`);
  });
  return out;
}

abstract class Monitor<S extends MonitorSpec> {
  readonly apiVersion = 'monitoring.coreos.com/v1';
  abstract readonly kind: 'PodMonitor' | 'ServiceMonitor';
  readonly metadata: MonitorMetadata;
  readonly spec: S;
  /** As kubernetes-models' constructors: the object's data (apiVersion and kind are the class's). */
  constructor(data: { metadata: MonitorMetadata; spec: S }) {
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  protected abstract endpoints(): readonly MetricsEndpoint[];

  validate(): void {
    const found = problems(this.kind, this.metadata, this.spec, this.endpoints());
    if (found.length > 0) throw new Error(found.join('; '));
  }

  toJSON(): unknown {
    return { apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, spec: this.spec };
  }
}

export class PodMonitor extends Monitor<PodMonitorSpec> {
  readonly kind = 'PodMonitor';
  protected endpoints(): readonly MetricsEndpoint[] {
    return this.spec.podMetricsEndpoints;
  }
}

export class ServiceMonitor extends Monitor<ServiceMonitorSpec> {
  readonly kind = 'ServiceMonitor';
  protected endpoints(): readonly MetricsEndpoint[] {
    return this.spec.endpoints;
  }
}
