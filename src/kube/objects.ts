import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { EndpointSlice } from 'kubernetes-models/discovery.k8s.io/v1/EndpointSlice';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IContainerPort } from 'kubernetes-models/v1/ContainerPort';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { agentUser, apiUser, controllerUser } from '../bus/mqtt/acl.js';
import type { KubernetesConfig } from '../config/sections/kubernetes.js';
import { PodMonitor, ServiceMonitor } from './monitoring.js';
import { namespaceLevel } from './pod-security.js';
import { mqttPasswordVar, mqttUserVar } from './source.js';

/** A Kubernetes object as kubernetes-models builds it: validates itself and serialises to JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string } | undefined;
  validate(): void;
  toJSON(): unknown;
}

/** What the objects are made from: the checked config, reduced to what the manifests need. */
export interface ClusterPlan {
  kube: KubernetesConfig;
  /** The ConfigMap's hearth.yaml text. */
  configText: string;
  controlPort: number;
  publicPort: number | undefined;
  /** `http.metrics.port`: the scrape port of every hearth pod; undefined without `http.metrics`. */
  metricsPort: number | undefined;
  agents: AgentPlan[];
  /** Keys of the Secret `hearth-env` (variables the config references), sorted. */
  secretKeys: string[];
  /**
   * The in-cluster Mosquitto's users (hearth's roles first, src/bus/mqtt/acl.ts) and its
   * `acl_file`; undefined with an external broker. Their passwords, and the password file
   * (key `passwd`), are in the Secret hearth-mqtt.
   */
  broker: { users: string[]; acl: string } | undefined;
  /** Keys of the Secret `hearth-mqtt-tls` (ca.crt, tls.crt, tls.key: the files the config sets); empty without TLS. */
  tlsKeys: string[];
}

export interface AgentPlan {
  /** The agent name in hearth.yaml (`agent: kitchen`). */
  name: string;
  /** Its Kubernetes name part (lowercase, `-` for `_`). */
  slug: string;
  node: string | undefined;
  group: number;
  /** Serial device paths of its devices. */
  devices: string[];
  /**
   * A device plugin's resource that gives the pod its serial devices (one unit per path); left
   * out, each path is mounted from the node, which only a privileged container may open.
   */
  resource?: string | undefined;
}

export const secretName = 'hearth-env';
/** The broker's users' passwords (a key per user) and Mosquitto's password file of them (`passwd`). */
export const mqttSecretName = 'hearth-mqtt';
export const passwdKey = 'passwd';
/** The Secret of the MQTT TLS files; the pods see its keys in `${configDir}/tls`. */
export const tlsSecretName = 'hearth-mqtt-tls';
const configDir = '/etc/hearth';
/** Where the controllers mount `cluster.kubernetes.backups`; the ConfigMap's `backup.dir` says this. */
export const backupsDir = '/var/lib/hearth/backups';
const appLabel = 'app.kubernetes.io/name';
const componentLabel = 'app.kubernetes.io/component';
const partOf = {
  'app.kubernetes.io/part-of': 'hearth',
  'app.kubernetes.io/managed-by': 'hearth-kube-render',
};

/** Every object of the cluster except the Secret, which `secretObject` makes. */
export function buildObjects(plan: ClusterPlan): KubeObject[] {
  const { kube } = plan;
  const ns = kube.namespace;
  const meta = (name: string, app: string, component: string) => ({
    name,
    namespace: ns,
    labels: { [appLabel]: app, [componentLabel]: component, ...partOf },
  });
  const objects: KubeObject[] = [];
  const configHash = createHash('sha256').update(plan.configText).digest('hex').slice(0, 16);

  objects.push(
    new ServiceAccount({
      metadata: meta('hearth', 'hearth', 'hearth'),
      // hearth never talks to the Kubernetes API.
      automountServiceAccountToken: false,
    }),
    new ConfigMap({
      metadata: meta('hearth-config', 'hearth', 'config'),
      data: { 'hearth.yaml': plan.configText },
    }),
  );

  const role = (component: string, args: string[], opts: RoleOptions): Deployment => {
    const labels = { [appLabel]: 'hearth', [componentLabel]: component };
    const ports: IContainerPort[] = [{ name: 'http', containerPort: plan.controlPort, protocol: 'TCP' }];
    if (opts.publicPort !== undefined)
      ports.push({ name: 'public', containerPort: opts.publicPort, protocol: 'TCP' });
    if (plan.metricsPort !== undefined)
      ports.push({ name: 'metrics', containerPort: plan.metricsPort, protocol: 'TCP' });
    const mounts: IVolumeMount[] = [
      { name: 'config', mountPath: configDir, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ];
    const volumes: IVolume[] = [
      plan.tlsKeys.length === 0
        ? { name: 'config', configMap: { name: 'hearth-config' } }
        : {
            // One volume for both: a mount at /etc/hearth/tls inside the read-only ConfigMap
            // volume cannot be made (the runtime cannot create its mount point there).
            name: 'config',
            projected: {
              sources: [
                { configMap: { name: 'hearth-config' } },
                {
                  secret: {
                    name: tlsSecretName,
                    // Read by the pod's group only (fsGroup below): the key is a secret.
                    items: plan.tlsKeys.map((key) => ({ key, path: `tls/${key}`, mode: 0o440 })),
                  },
                },
              ],
            },
          },
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
    ];
    const backups = opts.backups ? kube.backups : undefined;
    if (backups !== undefined) {
      mounts.push({ name: 'backups', mountPath: backupsDir });
      volumes.push(
        'nfs' in backups
          ? { name: 'backups', nfs: { server: backups.nfs.server, path: backups.nfs.path } }
          : { name: 'backups', persistentVolumeClaim: { claimName: backups.claim } },
      );
    }
    // Without a device plugin, each port comes from the node as a hostPath volume.
    const hostDevices = opts.resource === undefined ? opts.devices : [];
    hostDevices.forEach((path, i) => {
      mounts.push({ name: `serial-${i}`, mountPath: path });
      volumes.push({ name: `serial-${i}`, hostPath: { path, type: 'CharDevice' } });
    });
    // A device plugin puts the device into the container (at the path it is configured with)
    // and allows it in the container's device cgroup: no privilege is needed to open it.
    const deviceLimits =
      opts.resource === undefined || opts.devices.length === 0
        ? {}
        : { [opts.resource]: String(opts.devices.length) };
    const container: IContainer = {
      name: 'hearth',
      image: kube.image,
      imagePullPolicy: 'IfNotPresent',
      // The image's entrypoint (tini, then `node /app/bin/hearth.js`) stays: tini is PID 1.
      args: ['start', ...args, '--config', `${configDir}/hearth.yaml`],
      envFrom: [{ secretRef: { name: secretName } }],
      env: [
        { name: 'HEARTH_CONFIG', value: `${configDir}/hearth.yaml` },
        // Its own broker user: only its own password is in this pod.
        ...(plan.broker === undefined
          ? []
          : [
              { name: mqttUserVar, value: opts.mqttUser },
              {
                name: mqttPasswordVar,
                valueFrom: { secretKeyRef: { name: mqttSecretName, key: opts.mqttUser } },
              },
            ]),
      ],
      ports,
      livenessProbe: httpProbe('/healthz', 10, 3),
      readinessProbe: httpProbe('/readyz', 5, 2),
      startupProbe: httpProbe('/healthz', 2, 30),
      resources: {
        requests: { cpu: '50m', memory: '96Mi' },
        // A scheduled backup is a second Node process in the container (up to about 120 MB
        // with a large media folder): the limit makes room for it beside the controller.
        limits: { cpu: '500m', memory: backups === undefined ? '256Mi' : '512Mi', ...deviceLimits },
      },
      securityContext:
        hostDevices.length > 0
          ? {
              // A container may open a device node only if its device cgroup allows it, and
              // Kubernetes adds a hostPath device to it only for a privileged container (the
              // namespace's Pod Security level is then `privileged`). Still not root: the
              // process has no capability, and opens the port through the dialout group.
              privileged: true,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
            }
          : {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              capabilities: { drop: ['ALL'] },
            },
      volumeMounts: mounts,
    };
    const spec: IPodSpec = {
      serviceAccountName: 'hearth',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 30,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: kube.runAsUser,
        runAsGroup: kube.runAsUser,
        seccompProfile: { type: 'RuntimeDefault' },
        ...(opts.group === undefined ? {} : { supplementalGroups: [opts.group] }),
        // A claim's volume is made group-writable for hearth (only at the top when it already
        // is, not file by file on every start). NFS ignores this: the export must let the uid write.
        ...(backups === undefined ? {} : { fsGroup: kube.runAsUser, fsGroupChangePolicy: 'OnRootMismatch' }),
        // The TLS files are root's, group fsGroup, mode 0440: hearth reads them through its group.
        ...(plan.tlsKeys.length === 0 ? {} : { fsGroup: kube.runAsUser }),
      },
      // A dead node's pods move after 30 s instead of the default 300 s; the leases hand the
      // work over meanwhile.
      tolerations: ['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready'].map((key) => ({
        key,
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 30,
      })),
      containers: [container],
      volumes,
    };
    if (opts.node !== undefined) spec.nodeSelector = { 'kubernetes.io/hostname': opts.node };
    if (opts.replicas > 1) {
      spec.topologySpreadConstraints = [
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          // A one-node cluster still runs every replica.
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: labels },
        },
      ];
      spec.affinity = {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: {
                topologyKey: 'kubernetes.io/hostname',
                labelSelector: { matchLabels: labels },
              },
            },
          ],
        },
      };
    }
    return new Deployment({
      metadata: meta(`hearth-${component}`, 'hearth', component),
      spec: {
        replicas: opts.replicas,
        revisionHistoryLimit: 3,
        selector: { matchLabels: labels },
        strategy: opts.recreate
          ? { type: 'Recreate' }
          : { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: {
            labels: { ...labels, ...partOf },
            annotations: { 'hearth/config-sha256': configHash },
          },
          spec,
        },
      },
    });
  };

  objects.push(
    role('api', ['--role', 'api'], {
      replicas: 2,
      publicPort: plan.publicPort,
      devices: [],
      recreate: false,
      mqttUser: apiUser,
    }),
    role('controller', ['--role', 'controller'], {
      replicas: 2,
      devices: [],
      recreate: false,
      backups: true,
      mqttUser: controllerUser,
    }),
  );
  const budget = (component: string, replicas: number) =>
    new PodDisruptionBudget({
      metadata: meta(`hearth-${component}`, 'hearth', component),
      spec: {
        // Two replicas: a drain waits until the other one runs. One (a pinned agent, whose pod
        // cannot move): a drain may stop it, or the node could never be drained; its devices are
        // left safe and unavailable until it is back.
        ...(replicas > 1 ? { minAvailable: 1 } : { maxUnavailable: 1 }),
        selector: { matchLabels: { [appLabel]: 'hearth', [componentLabel]: component } },
      },
    });
  objects.push(budget('api', 2), budget('controller', 2));
  for (const agent of plan.agents) {
    const serial = agent.devices.length > 0;
    // One process per serial port: two would fight over it. A pinned agent has one node.
    const replicas = serial || agent.node !== undefined ? 1 : 2;
    objects.push(
      role(`agent-${agent.slug}`, ['--role', 'agent', '--agent', agent.name], {
        replicas,
        recreate: serial,
        node: agent.node,
        devices: agent.devices,
        resource: agent.resource,
        group: serial ? agent.group : undefined,
        mqttUser: agentUser(agent.name),
      }),
      budget(`agent-${agent.slug}`, replicas),
    );
  }

  // The control listener, for the LAN; the public one, for the Ingress.
  const apiSelector = { [appLabel]: 'hearth', [componentLabel]: 'api' };
  objects.push(
    new Service({
      metadata: meta('hearth-control', 'hearth', 'api'),
      spec: {
        type: kube.controlService.type,
        // The client's own address reaches hearth (its allow-list) and the NetworkPolicy.
        externalTrafficPolicy: 'Local',
        selector: apiSelector,
        ports: [
          {
            name: 'http',
            port: plan.controlPort,
            targetPort: 'http',
            protocol: 'TCP',
            ...(kube.controlService.nodePort === undefined ? {} : { nodePort: kube.controlService.nodePort }),
          },
        ],
      },
    }),
  );
  if (plan.publicPort !== undefined) {
    objects.push(
      new Service({
        metadata: meta('hearth-public', 'hearth', 'api'),
        spec: {
          type: 'ClusterIP',
          selector: apiSelector,
          ports: [{ name: 'public', port: plan.publicPort, targetPort: 'public', protocol: 'TCP' }],
        },
      }),
    );
    if (kube.ingressHost !== undefined) {
      objects.push(
        new Ingress({
          metadata: meta('hearth-public', 'hearth', 'api'),
          spec: {
            ...(kube.ingressClass === undefined ? {} : { ingressClassName: kube.ingressClass }),
            rules: [
              {
                host: kube.ingressHost,
                http: {
                  paths: [
                    {
                      path: '/',
                      pathType: 'Prefix',
                      backend: { service: { name: 'hearth-public', port: { name: 'public' } } },
                    },
                  ],
                },
              },
            ],
          },
        }),
      );
    }
  }

  // Who may reach what. A pod selected by a policy takes only what some policy allows.
  const lan = kube.lanCidrs.map((cidr) => ({ ipBlock: { cidr } }));
  objects.push(
    new NetworkPolicy({
      metadata: meta('hearth-control', 'hearth', 'hearth'),
      spec: {
        podSelector: { matchLabels: { [appLabel]: 'hearth' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [...lan, { podSelector: {} }],
            ports: [{ protocol: 'TCP', port: plan.controlPort }],
          },
        ],
      },
    }),
  );
  if (plan.publicPort !== undefined) {
    objects.push(
      new NetworkPolicy({
        metadata: meta('hearth-public', 'hearth', 'api'),
        spec: {
          podSelector: { matchLabels: apiSelector },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [
                {
                  namespaceSelector: {
                    matchLabels: { 'kubernetes.io/metadata.name': kube.ingressNamespace },
                  },
                },
              ],
              ports: [{ protocol: 'TCP', port: plan.publicPort }],
            },
          ],
        },
      }),
    );
  }

  const monitoring = kube.monitoring;
  if (monitoring !== undefined && plan.metricsPort !== undefined) {
    // Prometheus's pods (their namespace's labels) may reach the metrics port of every role.
    objects.push(
      new NetworkPolicy({
        metadata: meta('hearth-metrics', 'hearth', 'hearth'),
        spec: {
          podSelector: { matchLabels: { [appLabel]: 'hearth' } },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [{ namespaceSelector: { matchLabels: monitoring.prometheusNamespaceLabels } }],
              ports: [{ protocol: 'TCP', port: plan.metricsPort }],
            },
          ],
        },
      }),
    );
    const endpoint = {
      port: 'metrics',
      path: '/metrics',
      scheme: 'http' as const,
      interval: monitoring.interval,
    };
    const common = {
      selector: { matchLabels: { [appLabel]: 'hearth' } },
      namespaceSelector: { matchNames: [ns] },
      // Every series says which role it came from.
      podTargetLabels: [componentLabel],
    };
    const monitorMeta = {
      name: 'hearth',
      namespace: ns,
      labels: { ...monitoring.labels, [appLabel]: 'hearth', [componentLabel]: 'monitoring', ...partOf },
    };
    if (monitoring.kind === 'PodMonitor') {
      objects.push(
        new PodMonitor({ metadata: monitorMeta, spec: { ...common, podMetricsEndpoints: [endpoint] } }),
      );
    } else {
      // A headless Service of every hearth pod's metrics port, for the ServiceMonitor to follow.
      objects.push(
        new Service({
          metadata: meta('hearth-metrics', 'hearth', 'monitoring'),
          spec: {
            type: 'ClusterIP',
            clusterIP: 'None',
            selector: { [appLabel]: 'hearth' },
            ports: [{ name: 'metrics', port: plan.metricsPort, targetPort: 'metrics', protocol: 'TCP' }],
          },
        }),
        new ServiceMonitor({
          metadata: monitorMeta,
          spec: {
            ...common,
            selector: { matchLabels: { [appLabel]: 'hearth', [componentLabel]: 'monitoring' } },
            endpoints: [endpoint],
          },
        }),
      );
    }
  }

  objects.push(...postgresObjects(plan, meta), ...mosquittoObjects(plan, meta));

  // The namespace admits what the pods need and no more (Pod Security Admission): restricted,
  // unless a serial port is mounted from the node (privileged) or a volume type outside the
  // restricted list is used (baseline: an NFS export for backups).
  const pods = objects.flatMap((o) =>
    o instanceof Deployment || o instanceof StatefulSet
      ? [o.spec?.template.spec].filter((p) => p !== undefined)
      : [],
  );
  const level = namespaceLevel(pods);
  objects.unshift(
    new Namespace({
      metadata: {
        name: ns,
        labels: {
          ...partOf,
          'kubernetes.io/metadata.name': ns,
          'pod-security.kubernetes.io/enforce': level,
          'pod-security.kubernetes.io/audit': level,
          'pod-security.kubernetes.io/warn': level,
        },
      },
    }),
  );
  return objects;
}

interface RoleOptions {
  replicas: number;
  recreate: boolean;
  publicPort?: number | undefined;
  node?: string | undefined;
  devices: string[];
  /** A device plugin's resource for the devices, instead of hostPath volumes. */
  resource?: string | undefined;
  group?: number | undefined;
  /** Mount `cluster.kubernetes.backups` at backupsDir (the controllers run the backup schedule). */
  backups?: boolean;
  /** Its user on the in-cluster broker. */
  mqttUser: string;
}

type Meta = (
  name: string,
  app: string,
  component: string,
) => { name: string; namespace: string; labels: Record<string, string> };

function httpProbe(path: string, periodSeconds: number, failureThreshold: number): IProbe {
  return { httpGet: { path, port: 'http' }, periodSeconds, failureThreshold, timeoutSeconds: 2 };
}

const backendSecurity = (uid: number): IPodSecurityContext => ({
  runAsNonRoot: true,
  runAsUser: uid,
  runAsGroup: uid,
  fsGroup: uid,
  seccompProfile: { type: 'RuntimeDefault' },
});
const containerSecurity = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

/** A Service without a selector and an EndpointSlice: the name `name` leads to an address outside. */
function externalService(name: string, port: number, external: { host: string; port: number }, meta: Meta) {
  return [
    new Service({
      metadata: meta(name, name, 'external'),
      spec: { type: 'ClusterIP', ports: [{ name, port, targetPort: external.port, protocol: 'TCP' }] },
    }),
    new EndpointSlice({
      metadata: {
        ...meta(`${name}-external`, name, 'external'),
        labels: {
          ...meta(`${name}-external`, name, 'external').labels,
          'kubernetes.io/service-name': name,
          'endpointslice.kubernetes.io/managed-by': 'hearth-kube-render',
        },
      },
      addressType: isIP(external.host) === 6 ? 'IPv6' : 'IPv4',
      endpoints: [{ addresses: [external.host], conditions: { ready: true } }],
      ports: [{ name, port: external.port, protocol: 'TCP' }],
    }),
  ];
}

/** Only hearth's pods may reach an in-cluster backend. */
function backendPolicy(name: string, port: number, component: string, meta: Meta) {
  return new NetworkPolicy({
    metadata: meta(name, name, component),
    spec: {
      podSelector: { matchLabels: { [appLabel]: name } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { [appLabel]: 'hearth' } } },
            { podSelector: { matchLabels: { [appLabel]: name } } },
          ],
          ports: [{ protocol: 'TCP', port }],
        },
      ],
    },
  });
}

function statefulSet(
  plan: ClusterPlan,
  meta: Meta,
  name: string,
  component: string,
  uid: number,
  storage: string,
  podSpec: (labels: Record<string, string>) => Omit<IPodSpec, 'securityContext'>,
) {
  const labels = { [appLabel]: name, [componentLabel]: component };
  return new StatefulSet({
    metadata: meta(name, name, component),
    spec: {
      serviceName: name,
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels: { ...labels, ...partOf } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: backendSecurity(uid),
          tolerations: ['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready'].map((key) => ({
            key,
            operator: 'Exists',
            effect: 'NoExecute',
            tolerationSeconds: 30,
          })),
          ...podSpec(labels),
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(plan.kube.storageClass === undefined ? {} : { storageClassName: plan.kube.storageClass }),
            resources: { requests: { storage } },
          },
        },
      ],
    },
  });
}

function postgresObjects(plan: ClusterPlan, meta: Meta): KubeObject[] {
  const pg = plan.kube.postgres;
  if ('external' in pg) return externalService('postgres', 5432, pg.external, meta);
  const labels = { [appLabel]: 'postgres', [componentLabel]: 'database' };
  const probe: IProbe = {
    exec: { command: ['pg_isready', '-U', 'hearth', '-d', 'hearth', '-h', '127.0.0.1'] },
    periodSeconds: 10,
    timeoutSeconds: 5,
    failureThreshold: 6,
  };
  return [
    new Service({
      metadata: meta('postgres', 'postgres', 'database'),
      spec: {
        type: 'ClusterIP',
        selector: labels,
        ports: [{ name: 'postgres', port: 5432, targetPort: 'postgres', protocol: 'TCP' }],
      },
    }),
    statefulSet(plan, meta, 'postgres', 'database', 70, pg.storage, () => ({
      containers: [
        {
          name: 'postgres',
          image: pg.image,
          imagePullPolicy: 'IfNotPresent',
          env: [
            { name: 'POSTGRES_USER', value: 'hearth' },
            { name: 'POSTGRES_DB', value: 'hearth' },
            { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
            {
              name: 'POSTGRES_PASSWORD',
              valueFrom: { secretKeyRef: { name: secretName, key: 'HEARTH_PG_PASSWORD' } },
            },
          ],
          ports: [{ name: 'postgres', containerPort: 5432, protocol: 'TCP' }],
          livenessProbe: probe,
          readinessProbe: { ...probe, periodSeconds: 5 },
          resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
          securityContext: containerSecurity,
          volumeMounts: [
            { name: 'data', mountPath: '/var/lib/postgresql/data' },
            { name: 'run', mountPath: '/var/run/postgresql' },
            { name: 'tmp', mountPath: '/tmp' },
          ],
        },
      ],
      volumes: [
        { name: 'run', emptyDir: {} },
        { name: 'tmp', emptyDir: {} },
      ],
    })),
    backendPolicy('postgres', 5432, 'database', meta),
  ];
}

function mosquittoObjects(plan: ClusterPlan, meta: Meta): KubeObject[] {
  const mq = plan.kube.mqtt;
  if ('external' in mq) return externalService('mosquitto', 1883, mq.external, meta);
  const labels = { [appLabel]: 'mosquitto', [componentLabel]: 'broker' };
  // Every client logs in, each hearth role as its own user, and may do only what the ACL says.
  const conf = [
    'listener 1883',
    'set_tcp_nodelay true',
    'persistence true',
    'persistence_location /mosquitto/data/',
    'log_dest stdout',
    'allow_anonymous false',
    'password_file /mosquitto/auth/passwd',
    'acl_file /mosquitto/config/acl',
    '',
  ].join('\n');
  const acl = plan.broker?.acl ?? '';
  const probe: IProbe = { tcpSocket: { port: 'mqtt' }, periodSeconds: 10, failureThreshold: 3 };
  const confHash = createHash('sha256').update(conf).update(acl).digest('hex').slice(0, 16);
  const set = statefulSet(plan, meta, 'mosquitto', 'broker', 1883, mq.storage, () => ({
    // The password file, copied from the Secret so that it is Mosquitto's own (uid 1883, 0600):
    // Mosquitto warns about, and later versions refuse, one that others own or may read.
    initContainers: [
      {
        name: 'passwd',
        image: mq.image,
        imagePullPolicy: 'IfNotPresent',
        command: [
          'sh',
          '-c',
          'cp /mosquitto/secret/passwd /mosquitto/auth/passwd && chmod 0600 /mosquitto/auth/passwd',
        ],
        securityContext: containerSecurity,
        volumeMounts: [
          { name: 'secret', mountPath: '/mosquitto/secret', readOnly: true },
          { name: 'auth', mountPath: '/mosquitto/auth' },
        ],
      },
    ],
    containers: [
      {
        name: 'mosquitto',
        image: mq.image,
        imagePullPolicy: 'IfNotPresent',
        command: ['mosquitto', '-c', '/mosquitto/config/mosquitto.conf'],
        ports: [{ name: 'mqtt', containerPort: 1883, protocol: 'TCP' }],
        livenessProbe: probe,
        readinessProbe: { ...probe, periodSeconds: 5 },
        resources: { requests: { cpu: '20m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
        securityContext: containerSecurity,
        volumeMounts: [
          { name: 'config', mountPath: '/mosquitto/config', readOnly: true },
          { name: 'data', mountPath: '/mosquitto/data' },
          { name: 'auth', mountPath: '/mosquitto/auth', readOnly: true },
        ],
      },
    ],
    volumes: [
      { name: 'config', configMap: { name: 'mosquitto-config' } },
      {
        name: 'secret',
        secret: { secretName: mqttSecretName, items: [{ key: passwdKey, path: 'passwd', mode: 0o440 }] },
      },
      { name: 'auth', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    ],
  }));
  const template = set.spec?.template;
  if (template?.metadata) template.metadata.annotations = { 'hearth/config-sha256': confHash };
  const policy = backendPolicy('mosquitto', 1883, 'broker', meta);
  const from = policy.spec?.ingress?.[0]?.from;
  // Home Assistant or zigbee2mqtt in a pod of another namespace logs in as its own user.
  if (mq.clients.length > 0) from?.push({ namespaceSelector: {} });
  // The LAN reaches the broker through its own Service, from the networks it names.
  if (mq.expose !== undefined) {
    from?.push(...(mq.expose.from ?? plan.kube.lanCidrs).map((cidr) => ({ ipBlock: { cidr } })));
  }
  const objects: KubeObject[] = [
    new ConfigMap({
      metadata: meta('mosquitto-config', 'mosquitto', 'broker'),
      data: { 'mosquitto.conf': conf, acl },
    }),
    new Service({
      metadata: meta('mosquitto', 'mosquitto', 'broker'),
      spec: {
        type: 'ClusterIP',
        selector: labels,
        ports: [{ name: 'mqtt', port: 1883, targetPort: 'mqtt', protocol: 'TCP' }],
      },
    }),
    set,
    policy,
  ];
  const expose = mq.expose;
  if (expose !== undefined) {
    objects.push(
      new Service({
        metadata: meta('mosquitto-lan', 'mosquitto', 'broker'),
        spec: {
          type: expose.type,
          // The client's own address reaches the broker, so the NetworkPolicy's networks apply
          // (with Cluster, a node's address would stand in for it). The broker answers on the
          // node that runs it: a LoadBalancer (k3s's ServiceLB, MetalLB) announces that node.
          externalTrafficPolicy: 'Local',
          ...(expose.loadBalancerIP === undefined ? {} : { loadBalancerIP: expose.loadBalancerIP }),
          selector: labels,
          ports: [
            {
              name: 'mqtt',
              port: 1883,
              targetPort: 'mqtt',
              protocol: 'TCP',
              ...(expose.nodePort === undefined ? {} : { nodePort: expose.nodePort }),
            },
          ],
        },
      }),
    );
  }
  return objects;
}

/** The Secret of the broker's users: a password per user and the password file (`passwd`). */
export function mqttSecretObject(plan: ClusterPlan, values: Record<string, string>): KubeObject {
  return opaqueSecret(plan, mqttSecretName, [...(plan.broker?.users ?? []), passwdKey], values);
}

/** The Secret of the MQTT TLS files (PEM text by key); only with --with-secrets are values real. */
export function tlsSecretObject(plan: ClusterPlan, values: Record<string, string>): KubeObject {
  return opaqueSecret(plan, tlsSecretName, plan.tlsKeys, values);
}

/** The Secret of the variables the config references; only with --with-secrets are values real. */
export function secretObject(plan: ClusterPlan, values: Record<string, string>): KubeObject {
  return opaqueSecret(plan, secretName, plan.secretKeys, values);
}

/** An Opaque Secret of hearth's config with `keys`, each empty unless `values` has it. */
function opaqueSecret(
  plan: ClusterPlan,
  name: string,
  keys: readonly string[],
  values: Record<string, string>,
): KubeObject {
  return new Secret({
    metadata: {
      name,
      namespace: plan.kube.namespace,
      labels: { [appLabel]: 'hearth', [componentLabel]: 'config', ...partOf },
    },
    type: 'Opaque',
    stringData: Object.fromEntries(keys.map((k) => [k, values[k] ?? ''])),
  });
}
