import { isIP } from 'node:net';
import { z } from 'zod/v3';
import { parseCidr } from '../cidr.js';

/**
 * `cluster.kubernetes:`: what `hearth kube render` needs beyond the rest of hearth.yaml to write
 * Kubernetes manifests for the cluster roles. Only the renderer reads it; `hearth start` ignores it.
 */

/**
 * The images of the in-cluster backends: a full version, never a tag that moves (`16-alpine`
 * changes under a running cluster at its next pull). Set `postgres.image` or `mqtt.image` to
 * another version, or to `name:tag@sha256:...` to pin the digest your registry serves.
 */
export const postgresImage = 'postgres:16.15-alpine';
export const mosquittoImage = 'eclipse-mosquitto:2.0.22';

/** A DNS-1123 label: what Kubernetes accepts as a namespace or a node-local object name. */
const dnsLabel = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be a Kubernetes name: lowercase letters, digits and -, at most 63 characters, starting and ending with a letter or digit',
  );

const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== undefined, 'must be a network in CIDR notation, like 192.168.1.0/24');

const ipAddress = z
  .string()
  .refine(
    (s) => isIP(s) !== 0,
    'must be an IP address (an EndpointSlice points at addresses, not host names)',
  );

const port = z.number().int().min(1).max(65_535);
const nodePort = z
  .number()
  .int()
  .min(30_000, 'must be in the NodePort range 30000-32767')
  .max(32_767, 'must be in the NodePort range 30000-32767');

/**
 * The in-cluster Mosquitto for programs beside hearth. `clients`: Home Assistant and zigbee2mqtt
 * get users of their own (src/bus/mqtt/acl.ts: their own topics and hearth's public ones), whose
 * pods in other namespaces of the cluster may then reach the broker. `expose`: a Service of its
 * own on the LAN (a LoadBalancer or a NodePort), open to `from` (default `lanCidrs`).
 */
const mqttInCluster = {
  clients: z
    .array(z.enum(['homeassistant', 'zigbee2mqtt']))
    .max(2)
    .default([]),
  expose: z
    .object({
      /** LoadBalancer (k3s's ServiceLB, MetalLB) or NodePort; default LoadBalancer. */
      type: z.enum(['LoadBalancer', 'NodePort']).default('LoadBalancer'),
      /** With NodePort: the port on the nodes, 30000-32767; Kubernetes picks one when left out. */
      nodePort: nodePort.optional(),
      /** With LoadBalancer: the address to ask for (MetalLB, kube-vip); the pool's choice when left out. */
      loadBalancerIP: ipAddress.optional(),
      /** Networks that may connect (the NetworkPolicy); default `lanCidrs`. */
      from: z.array(cidr).min(1).optional(),
    })
    .strict()
    .superRefine((e, ctx) => {
      if (e.nodePort !== undefined && e.type !== 'NodePort') {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['nodePort'],
          message: 'is for type NodePort only',
        });
      }
      if (e.loadBalancerIP !== undefined && e.type !== 'LoadBalancer') {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['loadBalancerIP'],
          message: 'is for type LoadBalancer only',
        });
      }
    })
    .optional(),
};

/** A Kubernetes label key (`release`, `kubernetes.io/metadata.name`) and value. */
const labelKey = z
  .string()
  .regex(
    /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/,
    'must be a Kubernetes label key like release or kubernetes.io/metadata.name',
  );
const labelValue = z
  .string()
  .regex(
    /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/,
    'must be a Kubernetes label value: at most 63 letters, digits, -, _ or ., starting and ending with a letter or digit',
  );

/**
 * A PodMonitor or ServiceMonitor (prometheus-operator, monitoring.coreos.com/v1) that scrapes
 * `http.metrics` of every hearth pod, and a NetworkPolicy rule that lets the namespace of
 * Prometheus reach that port.
 */
const monitoringSchema = z
  .object({
    /** PodMonitor (the pods directly) or ServiceMonitor (through a headless Service hearth-metrics). */
    kind: z.enum(['PodMonitor', 'ServiceMonitor']).default('PodMonitor'),
    /** How often Prometheus scrapes; default 30s. */
    interval: z
      .string()
      .regex(
        /^((([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$/,
        'must be a Prometheus duration in hours, minutes and seconds, like 30s or 1m',
      )
      .refine((d) => d !== '', 'must not be empty: like 30s or 1m')
      .default('30s'),
    /**
     * Labels on the monitor, for the selector of your Prometheus (kube-prometheus-stack's
     * `release: <its release name>`); none when left out.
     */
    labels: z.record(labelKey, labelValue).default({}),
    /**
     * The labels of the namespace Prometheus runs in: the NetworkPolicy lets its pods reach the
     * metrics port. Default `{ kubernetes.io/metadata.name: monitoring }`.
     */
    prometheusNamespaceLabels: z
      .record(labelKey, labelValue)
      .refine((l) => Object.keys(l).length > 0, 'must name at least one label of that namespace')
      .default({ 'kubernetes.io/metadata.name': 'monitoring' }),
  })
  .strict();

/** Where the roles find PostgreSQL or Mosquitto: a StatefulSet of ours, or an address outside. */
const backendSchema = <E extends z.ZodRawShape>(
  what: string,
  image: string,
  defaultPort: number,
  extra: E,
  extraHint = '',
) =>
  z.union(
    [
      z
        .object({
          inCluster: z.literal(true),
          /** The container image; multi-arch (arm64 and amd64). */
          image: z.string().min(1).default(image),
          /** Size of the PersistentVolumeClaim. */
          storage: z
            .string()
            .regex(/^[1-9][0-9]*(Mi|Gi|Ti)$/, 'must be a size like 1Gi or 512Mi')
            .default('1Gi'),
          ...extra,
        })
        .strict(),
      z
        .object({
          external: z.object({ host: ipAddress, port: port.default(defaultPort) }).strict(),
        })
        .strict(),
    ],
    {
      errorMap: () => ({
        message: `must be { inCluster: true${extraHint} } (a ${what} StatefulSet in the namespace) or { external: { host: IP, port: ${defaultPort} } }`,
      }),
    },
  );

/**
 * Where the controllers write scheduled backups (`backup.every`). Both controllers take turns by
 * lease on any node, so the folder must be reachable from every node: an NFS export (a NAS, off
 * the cluster's disks) or a ReadWriteMany claim the user made.
 */
const backupsChoices =
  '{ nfs: { server: HOST, path: /exported/folder } } (an NFS export, e.g. on a NAS) or { claim: NAME } (a ReadWriteMany PersistentVolumeClaim you made)';
const backupsSchema = z
  .object({
    nfs: z
      .object({
        /** The NFS server's host name or IP address. */
        server: z
          .string()
          .refine(
            (s) =>
              isIP(s) !== 0 ||
              /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
                s,
              ),
            "must be the NFS server's host name or IP address, like nas.home.lan or 192.168.1.5",
          ),
        /** The exported folder on the server. */
        path: z
          .string()
          .regex(
            /^\/[^\s]*$/,
            'must be the exported folder on the server, an absolute path like /volume1/hearth',
          ),
      })
      .strict()
      .optional(),
    /** An existing PersistentVolumeClaim (ReadWriteMany) in the namespace. */
    claim: z
      .string()
      .regex(
        /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
        'must be the name of a PersistentVolumeClaim in the namespace (lowercase letters, digits, - and .)',
      )
      .optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if ((b.nfs === undefined) === (b.claim === undefined)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message:
          b.nfs === undefined
            ? `must be ${backupsChoices}`
            : `takes one of nfs and claim, not both: ${backupsChoices}`,
      });
    }
  })
  .transform((b): { nfs: { server: string; path: string } } | { claim: string } =>
    b.nfs !== undefined ? { nfs: b.nfs } : { claim: b.claim ?? '' },
  );

export const kubernetesSchema = z
  .object({
    /** Namespace of every object; default hearth. */
    namespace: dnsLabel.default('hearth'),
    /** The hearth image, e.g. registry.local:5000/hearth:0.1.0 (multi-arch for Pis and laptops). */
    image: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9._\-/:@]*[a-zA-Z0-9_]$/,
        'must be an image reference like registry.local:5000/hearth:0.1.0',
      ),
    /** The uid and gid hearth runs as in its containers; default 1000. */
    runAsUser: z.number().int().min(1).max(2_147_483_647).default(10001),
    /** A host name for an Ingress to the public status listener (`http.public`); none when left out. */
    ingressHost: z
      .string()
      .regex(
        /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
        'must be a lowercase host name like hearth.home.lan',
      )
      .optional(),
    /** The Ingress's ingressClassName (traefik on k3s, public on microk8s); the cluster's default when left out. */
    ingressClass: dnsLabel.optional(),
    /** The namespace the ingress controller runs in: the only one the public port is open to. Default kube-system (k3s's Traefik). */
    ingressNamespace: dnsLabel.default('kube-system'),
    /** How the LAN reaches the control listener (the api pods' `http.port`). */
    controlService: z
      .object({
        type: z.enum(['NodePort', 'LoadBalancer']).default('NodePort'),
        /** With NodePort: the port on every node, 30000-32767; Kubernetes picks one when left out. */
        nodePort: nodePort.optional(),
      })
      .strict()
      .default({}),
    /** Networks that may reach the control port (a NetworkPolicy); pods of the namespace always may. */
    lanCidrs: z.array(cidr).min(1).default(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']),
    /** StorageClass of the PersistentVolumeClaims (local-path on k3s); the cluster's default when left out. */
    storageClass: dnsLabel.optional(),
    postgres: backendSchema('PostgreSQL', postgresImage, 5432, {}).default({ inCluster: true }),
    mqtt: backendSchema(
      'Mosquitto',
      mosquittoImage,
      1883,
      mqttInCluster,
      ', clients: [homeassistant, zigbee2mqtt], expose: { type: LoadBalancer }',
    ).default({ inCluster: true }),
    /** Prometheus (prometheus-operator) scrapes every role's `http.metrics`; none when left out. */
    monitoring: monitoringSchema.optional(),
    /** The controllers' volume for `backup.dir`; required with `backup.every`. */
    backups: backupsSchema.optional(),
    /**
     * Per agent name (the `agent:` of device entries): the node it runs on (`kubernetes.io/hostname`)
     * and the group that may open its serial devices (dialout, 20). An agent with a serial device
     * must be pinned; one without may be (1 replica on that node) or not (2 replicas anywhere).
     */
    agents: z
      .record(
        z.string(),
        z
          .object({
            node: z
              .string()
              .regex(
                /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/,
                'must be a node name as `kubectl get nodes` lists it',
              )
              .optional(),
            group: z.number().int().min(0).max(2_147_483_647).default(20),
            /**
             * How its serial ports reach the pod. Left out: each is mounted from the node
             * (hostPath), which only a privileged container may open, in a namespace of the
             * `privileged` Pod Security level. `{ resource: squat.ai/serial }`: a device plugin's
             * resource (generic-device-plugin, smarter-device-manager) gives the device to a
             * container that has no privilege at all.
             */
            serialDevice: z
              .object({
                resource: z
                  .string()
                  .regex(
                    /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)\/[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/,
                    "must be a device plugin's extended resource name like squat.ai/serial (domain/name)",
                  ),
              })
              .strict()
              .optional(),
          })
          .strict(),
      )
      .default({}),
  })
  .strict()
  .superRefine((k, ctx) => {
    if (k.controlService.nodePort !== undefined && k.controlService.type !== 'NodePort') {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['controlService', 'nodePort'],
        message: 'is for type NodePort only',
      });
    }
    if (k.ingressClass !== undefined && k.ingressHost === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['ingressClass'],
        message: 'needs ingressHost (the name the Ingress answers to)',
      });
    }
  });

export type KubernetesConfig = z.output<typeof kubernetesSchema>;
