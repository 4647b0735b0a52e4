/** The JSON API as the dashboard uses it: same-origin fetches; control requests are JSON POSTs. */

export interface Entity {
  id: string;
  kind: string;
  name: string;
  driver: string;
  state: unknown;
  available: boolean;
  reason: string | null;
  updatedAt: string | null;
  commands: string[];
  attributes: Record<string, unknown>;
}

export interface Device {
  id: string;
  name: string;
  room: string | null;
  entities: string[];
}

export interface Run {
  id: number;
  trigger: string;
  startedAt: number;
  endedAt: number | null;
  outcome: 'queued' | 'running' | 'ok' | 'failed' | 'skipped' | 'cancelled';
  error: string | null;
}

export interface Automation {
  id: string;
  name: string;
  triggers: string[];
  mode: string;
  running: number;
  queued: number;
  nextRunAt: string | null;
  lastRun: Run | null;
}

/** GET /api/v1/backups (src/backup/scheduler.ts BackupStatus); null where this process cannot tell. */
export interface Backups {
  every: string | null;
  newest: { name: string; at: string; bytes: number } | null;
  lastError: { at: string; message: string } | null;
  nextAt: string | null;
  running: boolean;
  stale: boolean;
}

export interface Session {
  tokenRequired: boolean;
  authenticated: boolean;
}

/** A refused or failed request, with the server's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let r: Response;
  try {
    r = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'hearth did not answer; is it running?');
  }
  if (r.status === 204) return undefined as T;
  const data = (await r.json().catch(() => ({}))) as { error?: { message?: string } } & T;
  if (!r.ok) throw new ApiError(r.status, data.error?.message ?? `${method} ${path}: HTTP ${r.status}`);
  return data;
}

export const api = {
  session: () => call<Session>('GET', '/api/v1/session'),
  login: (token: string) => call<Session>('POST', '/api/v1/session', { token }),
  logout: () => call<void>('DELETE', '/api/v1/session'),
  entities: () => call<{ entities: Entity[] }>('GET', '/api/v1/entities').then((r) => r.entities),
  devices: () => call<{ devices: Device[] }>('GET', '/api/v1/devices').then((r) => r.devices),
  backups: () => call<{ backups: Backups | null }>('GET', '/api/v1/backups').then((r) => r.backups),
  media: () =>
    call<{ files: string[] }>('GET', '/api/v1/media').then(
      (r) => r.files,
      () => [] as string[],
    ),
  automations: () =>
    call<{ automations: Automation[] }>('GET', '/api/v1/automations').then((r) => r.automations),
  runs: (id: string) =>
    call<{ runs: Run[] }>('GET', `/api/v1/automations/${encodeURIComponent(id)}/runs?limit=5`).then(
      (r) => r.runs,
    ),
  run: (id: string) => call<{ run: Run }>('POST', `/api/v1/automations/${encodeURIComponent(id)}/run`, {}),
  command: (id: string, name: string, args: Record<string, unknown> = {}) =>
    call<{ entity: Entity }>(
      'POST',
      `/api/v1/entities/${encodeURIComponent(id)}/commands/${encodeURIComponent(name)}`,
      args,
    ).then((r) => r.entity),
};
