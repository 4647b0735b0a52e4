import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';

/**
 * The Pod Security Standards (kubernetes.io/docs/concepts/security/pod-security-standards/), as
 * far as the pods hearth renders can touch them: which rules a pod spec breaks at each level.
 * `kube render` labels the namespace with the strictest level every rendered pod meets, so the
 * cluster's admission enforces what the manifests promise.
 */
export type PodSecurityLevel = 'restricted' | 'baseline' | 'privileged';

/** Capabilities a baseline pod may add (the standard's list). */
const baselineCapabilities = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

/** Volume types a restricted pod may use. */
const restrictedVolumes = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

function containersOf(spec: IPodSpec): IContainer[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/** What keeps `spec` from the baseline level, one line each; empty when it meets it. */
export function baselineViolations(spec: IPodSpec): string[] {
  const out: string[] = [];
  if (spec.hostNetwork) out.push('hostNetwork: true');
  if (spec.hostPID) out.push('hostPID: true');
  if (spec.hostIPC) out.push('hostIPC: true');
  for (const v of spec.volumes ?? []) if (v.hostPath) out.push(`volume ${v.name}: hostPath`);
  if (spec.securityContext?.seccompProfile?.type === 'Unconfined') out.push('pod seccompProfile: Unconfined');
  for (const c of containersOf(spec)) {
    const sc = c.securityContext;
    if (sc?.privileged) out.push(`container ${c.name}: privileged`);
    for (const cap of sc?.capabilities?.add ?? [])
      if (!baselineCapabilities.has(cap)) out.push(`container ${c.name}: adds capability ${cap}`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`container ${c.name}: hostPort ${p.hostPort}`);
    if (sc?.procMount !== undefined && sc.procMount !== 'Default')
      out.push(`container ${c.name}: procMount ${sc.procMount}`);
    if (sc?.seccompProfile?.type === 'Unconfined') out.push(`container ${c.name}: seccompProfile Unconfined`);
  }
  return out;
}

/** What keeps `spec` from the restricted level (baseline's rules first), one line each. */
export function restrictedViolations(spec: IPodSpec): string[] {
  const out = baselineViolations(spec);
  for (const v of spec.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (type !== undefined && !restrictedVolumes.has(type)) out.push(`volume ${v.name}: ${type}`);
  }
  const pod = spec.securityContext;
  if (pod?.runAsUser === 0) out.push('pod runAsUser: 0');
  const podSeccomp = pod?.seccompProfile?.type;
  for (const c of containersOf(spec)) {
    const sc = c.securityContext;
    if (sc?.allowPrivilegeEscalation !== false)
      out.push(`container ${c.name}: allowPrivilegeEscalation is not false`);
    const nonRoot = sc?.runAsNonRoot ?? pod?.runAsNonRoot;
    if (nonRoot !== true) out.push(`container ${c.name}: runAsNonRoot is not true`);
    if (sc?.runAsUser === 0) out.push(`container ${c.name}: runAsUser 0`);
    const seccomp = sc?.seccompProfile?.type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
      out.push(`container ${c.name}: seccompProfile is not RuntimeDefault or Localhost`);
    if (!(sc?.capabilities?.drop ?? []).includes('ALL'))
      out.push(`container ${c.name}: capabilities do not drop ALL`);
    for (const cap of sc?.capabilities?.add ?? [])
      if (cap !== 'NET_BIND_SERVICE') out.push(`container ${c.name}: adds capability ${cap}`);
  }
  return out;
}

/** The strictest level `spec` meets. */
export function podSecurityLevel(spec: IPodSpec): PodSecurityLevel {
  if (baselineViolations(spec).length > 0) return 'privileged';
  return restrictedViolations(spec).length > 0 ? 'baseline' : 'restricted';
}

const order: PodSecurityLevel[] = ['restricted', 'baseline', 'privileged'];

/** The level a namespace needs for all of `specs`: the loosest any of them needs. */
export function namespaceLevel(specs: readonly IPodSpec[]): PodSecurityLevel {
  let level: PodSecurityLevel = 'restricted';
  for (const s of specs) {
    const l = podSecurityLevel(s);
    if (order.indexOf(l) > order.indexOf(level)) level = l;
  }
  return level;
}
