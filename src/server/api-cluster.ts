import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Lease, Member } from '../store/store.js';

/** `GET /api/v1/cluster`: who runs, who leads. */
export interface ClusterStatus {
  /** `one box`: one process runs every role; `cluster`: roles on several processes. */
  mode: 'one box' | 'cluster';
  members: Array<Omit<Member, 'startedAt' | 'lastSeen'> & { startedAt: string; lastSeen: string }>;
  leases: Array<Omit<Lease, 'expiresAt'> & { expiresAt: string }>;
}

/** The answer where no store keeps members: this process, leading nothing (there is nothing to lead). */
export function oneBoxStatus(startedAt: number): () => Promise<ClusterStatus> {
  return async () => ({
    mode: 'one box',
    members: [
      {
        id: `all@${hostname()}:${process.pid}`,
        role: 'all',
        host: hostname(),
        pid: process.pid,
        startedAt: new Date(startedAt).toISOString(),
        lastSeen: new Date().toISOString(),
        silentMs: 0,
      },
    ],
    leases: [],
  });
}

/** The answer of a cluster role, from the shared store's members and leases. */
export function storeStatus(store: {
  members: { list(): Promise<Member[]> };
  leases: { list(): Promise<Lease[]> };
}): () => Promise<ClusterStatus> {
  return async () => {
    const [members, leases] = await Promise.all([store.members.list(), store.leases.list()]);
    return {
      mode: 'cluster',
      members: members.map((m) => ({
        ...m,
        startedAt: new Date(m.startedAt).toISOString(),
        lastSeen: new Date(m.lastSeen).toISOString(),
      })),
      leases: leases.map((l) => ({ ...l, expiresAt: new Date(l.expiresAt).toISOString() })),
    };
  };
}

/** A control route: it names hosts and processes. */
export function registerClusterRoute(app: FastifyInstance, status: () => Promise<ClusterStatus>): void {
  app.get('/api/v1/cluster', async () => status());
}
