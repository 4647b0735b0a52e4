/** The JSON API as the dashboard uses it: same-origin fetches; control requests are JSON POSTs. */

import type {
  AutomationRun,
  AutomationView,
  BackupStatus,
  DeviceLayout,
  EntityView,
} from '../src/contract/views.js';

/*
 * What the server sends, as src/contract/views.ts defines it for every client: types only, so
 * the bundle carries none of the server's code (nor zod).
 */
export type {
  AutomationRun as Run,
  AutomationView as Automation,
  BackupStatus as Backups,
  DeviceLayout as Device,
  EntityView as Entity,
};

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
  entities: () => call<{ entities: EntityView[] }>('GET', '/api/v1/entities').then((r) => r.entities),
  devices: () => call<{ devices: DeviceLayout[] }>('GET', '/api/v1/devices').then((r) => r.devices),
  backups: () => call<{ backups: BackupStatus | null }>('GET', '/api/v1/backups').then((r) => r.backups),
  media: () =>
    call<{ files: string[] }>('GET', '/api/v1/media').then(
      (r) => r.files,
      () => [] as string[],
    ),
  automations: () =>
    call<{ automations: AutomationView[] }>('GET', '/api/v1/automations').then((r) => r.automations),
  runs: (id: string) =>
    call<{ runs: AutomationRun[] }>('GET', `/api/v1/automations/${encodeURIComponent(id)}/runs?limit=5`).then(
      (r) => r.runs,
    ),
  run: (id: string) =>
    call<{ run: AutomationRun }>('POST', `/api/v1/automations/${encodeURIComponent(id)}/run`, {}),
  command: (id: string, name: string, args: Record<string, unknown> = {}) =>
    call<{ entity: EntityView }>(
      'POST',
      `/api/v1/entities/${encodeURIComponent(id)}/commands/${encodeURIComponent(name)}`,
      args,
    ).then((r) => r.entity),
};
