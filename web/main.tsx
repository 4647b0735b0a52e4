import './app.css';
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import {
  ApiError,
  type Automation,
  api,
  type Backups,
  type Device,
  type Entity,
  type Run,
  type Session,
} from './api';
import { EntityCard, stateText } from './entity';

/** What the last action came to, read out to screen readers too. */
export type Notify = (text: string, bad?: boolean) => void;

interface Group {
  key: string;
  title: string;
  room: string | null;
  entities: Entity[];
}

/** Unavailable first, then by name. */
const byAttention = (a: Entity, b: Entity) =>
  Number(a.available) - Number(b.available) || a.name.localeCompare(b.name);

function groupEntities(entities: Map<string, Entity>, devices: Device[]): Group[] {
  const placed = new Set<string>();
  const groups: Group[] = [];
  for (const d of devices) {
    const members = d.entities.flatMap((id) => {
      const e = entities.get(id);
      if (!e) return [];
      placed.add(id);
      return [e];
    });
    if (members.length > 0) {
      groups.push({
        key: `device:${d.id}`,
        title: d.name,
        room: d.room,
        entities: members.sort(byAttention),
      });
    }
  }
  // Entities no configured device declares: buttons, and what a bridge (zigbee2mqtt) found.
  const rest = new Map<string, Entity[]>();
  for (const e of entities.values()) {
    if (placed.has(e.id)) continue;
    // Before the log-in the device list is not readable: then every device is just a device.
    const title = e.driver === 'hearth' ? 'Buttons' : devices.length > 0 ? `Found by ${e.driver}` : 'Devices';
    rest.set(title, [...(rest.get(title) ?? []), e]);
  }
  for (const [title, members] of rest) {
    groups.push({ key: `rest:${title}`, title, room: null, entities: members.sort(byAttention) });
  }
  return groups;
}

function Login({ onDone }: { onDone: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError('');
    try {
      onDone(await api.login(token));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card login" onSubmit={submit} aria-labelledby="login-title">
      <h2 id="login-title">Log in</h2>
      <p>
        This hearth asks for its token (http.token in the config) once; this browser then stays logged in.
      </p>
      <label for="token">Token</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="current-password"
        required
        value={token}
        onInput={(e) => setToken((e.target as HTMLInputElement).value)}
      />
      <button type="submit" disabled={busy}>
        Log in
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

const when = (ms: number | string | null) => (ms === null ? 'never' : new Date(ms).toLocaleString());

function RunLine({ run }: { run: Run }) {
  return (
    <li>
      <span class={`outcome outcome-${run.outcome}`}>{run.outcome}</span> {when(run.startedAt)}{' '}
      <span class="muted">({run.trigger})</span>
      {run.error && <span class="muted"> — {run.error}</span>}
    </li>
  );
}

function AutomationCard({ a, notify, reload }: { a: Automation; notify: Notify; reload: () => void }) {
  const [runs, setRuns] = useState<Run[] | undefined>();
  const [busy, setBusy] = useState(false);
  const runNow = async () => {
    setBusy(true);
    try {
      const { run } = await api.run(a.id);
      notify(`${a.name}: ${run.outcome}${run.error ? ` (${run.error})` : ''}`);
    } catch (err) {
      notify(`${a.name}: ${err instanceof Error ? err.message : String(err)}`, true);
    } finally {
      setBusy(false);
      reload();
      if (runs) setRuns(await api.runs(a.id).catch(() => runs));
    }
  };
  const toggleRuns = async (ev: Event) => {
    if ((ev.currentTarget as HTMLDetailsElement).open && !runs) setRuns(await api.runs(a.id).catch(() => []));
  };
  return (
    <li class="card" data-automation={a.id}>
      <div class="row">
        <h3>{a.name}</h3>
        <button type="button" onClick={runNow} disabled={busy} aria-label={`Run now: ${a.name}`}>
          Run now
        </button>
      </div>
      <p class="muted">
        {a.triggers.length > 0 ? `When: ${a.triggers.join('; ')}` : 'No triggers: runs only when asked'}
        {a.nextRunAt && ` · next ${when(a.nextRunAt)}`}
        {a.running > 0 && ` · running`}
      </p>
      <p>
        Last run:{' '}
        {a.lastRun ? (
          <>
            <span class={`outcome outcome-${a.lastRun.outcome}`}>{a.lastRun.outcome}</span>{' '}
            {when(a.lastRun.startedAt)}
            {a.lastRun.error && <span class="muted"> — {a.lastRun.error}</span>}
          </>
        ) : (
          'never'
        )}
      </p>
      <details onToggle={toggleRuns}>
        <summary>Recent runs</summary>
        {runs === undefined ? <p>Loading…</p> : runs.length === 0 ? <p>No runs yet.</p> : null}
        {runs && runs.length > 0 && (
          <ul class="runs">
            {runs.map((r) => (
              <RunLine key={r.id} run={r} />
            ))}
          </ul>
        )}
      </details>
    </li>
  );
}

/** "3 hours ago": the age of a time, in the largest unit that fits. */
function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const [n, unit] =
    s < 90
      ? [s, 'second']
      : s < 5400
        ? [Math.round(s / 60), 'minute']
        : s < 129_600
          ? [Math.round(s / 3600), 'hour']
          : [Math.round(s / 86_400), 'day'];
  return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
}

const megabytes = (bytes: number) => `${(bytes / 1_048_576).toFixed(bytes < 10_485_760 ? 1 : 0)} MB`;

/** The newest backup's age; a warning when backups are late or the last one failed. */
function BackupLine({ b }: { b: Backups }) {
  const late = b.stale || b.lastError !== null;
  return (
    <section aria-labelledby="backups" class={late ? 'backups late' : 'backups'}>
      <h2 id="backups">Backups</h2>
      <p role={late ? 'alert' : undefined}>
        {b.newest ? (
          <>
            Newest backup <time dateTime={b.newest.at}>{age(b.newest.at)}</time> ({megabytes(b.newest.bytes)})
          </>
        ) : (
          'No backup yet'
        )}
        {b.stale && ': late, older than twice the schedule'}
        {b.every === null && ' · none scheduled (backup.every in the config; or run hearth backup)'}
        {b.nextAt && ` · next ${when(b.nextAt)}`}
        {b.running && ' · one is running'}
      </p>
      {b.lastError && (
        <p class="error">
          The last scheduled backup failed {age(b.lastError.at)}: {b.lastError.message}
        </p>
      )}
    </section>
  );
}

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [entities, setEntities] = useState<Map<string, Entity>>(new Map());
  const [devices, setDevices] = useState<Device[]>([]);
  const [automations, setAutomations] = useState<Automation[]>([]);
  const [media, setMedia] = useState<string[]>([]);
  const [backups, setBackups] = useState<Backups | null>(null);
  const [live, setLive] = useState(false);
  const [message, setMessage] = useState<{ text: string; bad: boolean } | undefined>();

  const notify = useCallback<Notify>((text, bad = false) => setMessage({ text, bad }), []);
  const allowed = session !== undefined && (!session.tokenRequired || session.authenticated);

  const upsert = useCallback((e: Entity) => setEntities((m) => new Map(m).set(e.id, e)), []);
  const resync = useCallback(async () => {
    try {
      const list = await api.entities();
      setEntities(new Map(list.map((e) => [e.id, e])));
    } catch {
      // hearth is starting (503) or went away: try again shortly.
      setTimeout(() => void resync(), 2000);
    }
  }, []);
  const loadAutomations = useCallback(() => {
    api.automations().then(setAutomations, () => {});
    api.backups().then(setBackups, () => {});
  }, []);

  useEffect(() => {
    api.session().then(setSession, (err: unknown) => notify(String(err), true));
  }, [notify]);

  // Entities are status: they stream whether or not this browser has logged in.
  useEffect(() => {
    const events = new EventSource('/api/v1/events');
    // The first connection replays nothing: read every entity, then follow. A reconnect sends
    // the last id back by itself and gets what it missed, or a `reset` with every entity.
    let first = true;
    events.addEventListener('open', () => {
      setLive(true);
      if (first) void resync();
      first = false;
    });
    events.addEventListener('reset', (m) => {
      const { entities } = JSON.parse((m as MessageEvent<string>).data) as { entities: Entity[] };
      setEntities(new Map(entities.map((e) => [e.id, e])));
    });
    events.addEventListener('error', () => setLive(false));
    events.addEventListener('state', (m) => upsert(JSON.parse((m as MessageEvent<string>).data) as Entity));
    events.addEventListener('removed', (m) => {
      const { id } = JSON.parse((m as MessageEvent<string>).data) as { id: string };
      setEntities((old) => {
        const next = new Map(old);
        next.delete(id);
        return next;
      });
    });
    return () => events.close();
  }, [resync, upsert]);

  useEffect(() => {
    if (!allowed) return;
    api.devices().then(setDevices, () => {});
    api.media().then(setMedia);
    loadAutomations();
    const timer = setInterval(loadAutomations, 30_000);
    return () => clearInterval(timer);
  }, [allowed, loadAutomations]);

  const command = useCallback(
    async (e: Entity, name: string, args?: Record<string, unknown>) => {
      try {
        const after = await api.command(e.id, name, args);
        upsert(after);
        notify(`${e.name}: ${name}, now ${stateText(after)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 403 && session?.tokenRequired) {
          setSession({ tokenRequired: true, authenticated: false });
        }
        notify(`${e.name}: ${err instanceof Error ? err.message : String(err)}`, true);
      }
    },
    [notify, session, upsert],
  );

  const groups = useMemo(() => groupEntities(entities, devices), [entities, devices]);
  const unavailable = [...entities.values()].filter((e) => !e.available).sort(byAttention);
  const rooms = new Map<string, Group[]>();
  for (const g of groups) {
    const room = g.room ?? (devices.some((d) => d.room) ? 'Elsewhere' : '');
    rooms.set(room, [...(rooms.get(room) ?? []), g]);
  }

  const logout = async () => {
    await api.logout().catch(() => {});
    setSession({ tokenRequired: true, authenticated: false });
  };

  return (
    <>
      <header>
        <h1>hearth</h1>
        <span class="live" data-live={String(live)}>
          {live ? 'live' : 'not live'}
        </span>
        {session?.tokenRequired && session.authenticated && (
          <button type="button" class="quiet" onClick={logout}>
            Log out
          </button>
        )}
      </header>
      <main>
        <p class={message?.bad ? 'message error' : 'message'} role="status" aria-live="polite">
          {message?.text ?? ''}
        </p>
        {session && !allowed && <Login onDone={setSession} />}
        {unavailable.length > 0 && (
          <section aria-labelledby="attention">
            <h2 id="attention">Unavailable</h2>
            <ul class="attention">
              {unavailable.map((e) => (
                <li key={e.id}>
                  <strong>{e.name}</strong>: {e.reason ?? 'unavailable'}
                </li>
              ))}
            </ul>
          </section>
        )}
        {[...rooms].map(([room, roomGroups]) => (
          <section key={room || 'all'} aria-label={room || 'Devices'}>
            {room && <h2>{room}</h2>}
            {roomGroups.map((g) => (
              <section key={g.key} class="group" aria-label={g.title}>
                {/* A device of one entity of its own name needs no heading of its own. */}
                {(g.entities.length > 1 || g.entities[0]?.name !== g.title) && <h3>{g.title}</h3>}
                <ul class="entities">
                  {g.entities.map((e) => (
                    <EntityCard key={e.id} entity={e} canControl={allowed} media={media} command={command} />
                  ))}
                </ul>
              </section>
            ))}
          </section>
        ))}
        {entities.size === 0 && <p>No entities yet.</p>}
        {allowed && (
          <section aria-labelledby="automations">
            <h2 id="automations">Automations</h2>
            {automations.length === 0 ? (
              <p>No automations in the config.</p>
            ) : (
              <ul class="automations">
                {automations.map((a) => (
                  <AutomationCard key={a.id} a={a} notify={notify} reload={loadAutomations} />
                ))}
              </ul>
            )}
          </section>
        )}
        {allowed && backups && <BackupLine b={backups} />}
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
