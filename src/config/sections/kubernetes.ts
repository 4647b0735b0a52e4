import { isIP } from 'node:net';
import { z } from 'zod/v3';
import { parseCidr } from '../cidr.js';

/**
 * `cluster.kubernetes:`: what `hearth kube render` needs beyond the rest of hearth.yaml to write
 * Kubernetes manifests for the cluster roles. Only the renderer reads it; `hearth start` ignores it.
 */

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
 * The in-cluster Mosquitto's users beside hearth's roles (src/bus/mqtt/acl.ts): Home Assistant
 * and zigbee2mqtt, each with its own topics and hearth's public ones. With any of them, the
 * broker takes connections from `lanCidrs` and other namespaces, and `nodePort` opens it to the LAN.
 */
const mqttInCluster = {
  clients: z
    .array(z.enum(['homeassistant', 'zigbee2mqtt']))
    .max(2)
    .default([]),
  nodePort: nodePort.optional(),
};

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
    postgres: backendSchema('PostgreSQL', 'postgres:16-alpine', 5432, {}).default({ inCluster: true }),
    mqtt: backendSchema(
      'Mosquitto',
      'eclipse-mosquitto:2',
      1883,
      mqttInCluster,
      ', clients: [homeassistant, zigbee2mqtt], nodePort: 31883',
    ).default({ inCluster: true }),
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
