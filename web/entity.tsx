import { useState } from 'preact/hooks';
import type { Entity } from './api';

type Command = (e: Entity, name: string, args?: Record<string, unknown>) => Promise<void>;

interface Props {
  entity: Entity;
  /** False until the browser has logged in (when a token is set): then the card only shows. */
  canControl: boolean;
  /** Chime files of the media folder. */
  media: string[];
  command: Command;
}

/** An id safe for `id` attributes from an entity id (A-Z, a-z, 0-9, _ and -). */
const domId = (prefix: string, id: string) => `${prefix}-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;

export function stateText(e: Entity): string {
  const s = e.state;
  if (s === null || s === undefined) return '—';
  const unit = e.attributes.unit;
  if (typeof s === 'number') return typeof unit === 'string' ? `${s} ${unit}` : String(s);
  if (typeof s === 'string') return /^\d{4}-\d\d-\d\dT/.test(s) ? new Date(s).toLocaleString() : s;
  if (typeof s === 'object' && 'power' in s) {
    const c = s as { power: string; mode: string; target: number };
    return c.power === 'on' ? `${c.mode}, ${c.target} °C` : 'off';
  }
  return JSON.stringify(s);
}

const numberAttr = (e: Entity, name: string): number | undefined => {
  const v = e.attributes[name];
  return typeof v === 'number' && v > 0 ? v : undefined;
};

/** "until 08:15" from an ISO `until` attribute (a brew's or a valve's end). */
function until(e: Entity): string {
  const u = e.attributes.until;
  if (typeof u !== 'string') return '';
  const t = new Date(u);
  return Number.isNaN(t.getTime())
    ? ''
    : ` until ${t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
}

function Minutes({
  e,
  label,
  max,
  initial,
  action,
  onGo,
}: {
  e: Entity;
  label: string;
  max: number;
  initial: number;
  action: string;
  onGo: (minutes: number) => Promise<void>;
}) {
  const [minutes, setMinutes] = useState(String(Math.min(initial, max)));
  const [busy, setBusy] = useState(false);
  const id = domId('min', e.id);
  const value = Number(minutes);
  const valid = Number.isFinite(value) && value > 0 && value <= max;
  return (
    <form
      class="inline"
      onSubmit={async (ev) => {
        ev.preventDefault();
        if (!valid) return;
        setBusy(true);
        await onGo(value);
        setBusy(false);
      }}
    >
      <label for={id}>{label}</label>
      <input
        id={id}
        type="number"
        inputMode="decimal"
        min="1"
        max={max}
        step="1"
        required
        value={minutes}
        onInput={(ev) => setMinutes((ev.target as HTMLInputElement).value)}
      />
      <button type="submit" disabled={busy || !valid} aria-label={`${action} ${e.name}`}>
        {action}
      </button>
    </form>
  );
}

function Chime({ e, media, command }: { e: Entity; media: string[]; command: Command }) {
  const [file, setFile] = useState(media[0] ?? '');
  const [busy, setBusy] = useState(false);
  const id = domId('media', e.id);
  const chosen = file || media[0] || '';
  return (
    <form
      class="inline"
      onSubmit={async (ev) => {
        ev.preventDefault();
        if (!chosen) return;
        setBusy(true);
        await command(e, 'play', { media: chosen });
        setBusy(false);
      }}
    >
      <label for={id}>Chime</label>
      {media.length > 0 ? (
        <select id={id} value={chosen} onChange={(ev) => setFile((ev.target as HTMLSelectElement).value)}>
          {media.map((f) => (
            <option key={f} value={f}>
              {f}
            </option>
          ))}
        </select>
      ) : (
        <input
          id={id}
          type="text"
          placeholder="file in the media folder"
          required
          value={file}
          onInput={(ev) => setFile((ev.target as HTMLInputElement).value)}
        />
      )}
      <button type="submit" disabled={busy || !chosen} aria-label={`Play on ${e.name}`}>
        Play
      </button>
    </form>
  );
}

function Controls({ entity: e, media, command }: Omit<Props, 'canControl'>) {
  const [busy, setBusy] = useState(false);
  const run = async (name: string, args?: Record<string, unknown>) => {
    setBusy(true);
    await command(e, name, args);
    setBusy(false);
  };
  switch (e.kind) {
    case 'switch':
    case 'button':
    case 'climate': {
      const on =
        e.kind === 'climate' ? (e.state as { power?: string } | null)?.power === 'on' : e.state === 'on';
      const name = e.kind === 'switch' ? 'toggle' : on ? 'off' : 'on';
      // A switch: named for the device, its state on or off ("Living room lamp, switch, on"),
      // the name the same whatever the state. It shows the state, as a wall switch does.
      return (
        <button
          type="button"
          role="switch"
          class="toggle"
          aria-checked={on}
          aria-label={e.name}
          disabled={busy}
          onClick={() => run(name)}
        >
          {on ? 'On' : 'Off'}
        </button>
      );
    }
    case 'heater':
      return e.state === 'on' ? (
        <button type="button" disabled={busy} onClick={() => run('stop')} aria-label={`Stop ${e.name}`}>
          Stop
        </button>
      ) : (
        <Minutes
          e={e}
          label="Minutes"
          max={numberAttr(e, 'maxBrewMinutes') ?? 60}
          initial={15}
          action="Brew"
          onGo={(minutes) => command(e, 'brew', { minutes })}
        />
      );
    case 'valve':
      return e.state === 'open' ? (
        <button type="button" disabled={busy} onClick={() => run('close')} aria-label={`Close ${e.name}`}>
          Close
        </button>
      ) : (
        <Minutes
          e={e}
          label="Minutes"
          max={numberAttr(e, 'maxOpenMinutes') ?? 60}
          initial={10}
          action="Open"
          onGo={(minutes) => command(e, 'open', { seconds: Math.round(minutes * 60) })}
        />
      );
    case 'chime':
      return <Chime e={e} media={media} command={command} />;
    default:
      return null;
  }
}

export function EntityCard({ entity: e, canControl, media, command }: Props) {
  const stateClass = typeof e.state === 'string' ? e.state : '';
  return (
    <li class="card entity" data-id={e.id} data-available={String(e.available)}>
      <div class="row">
        <span class="name">{e.name}</span>
        <span class="state" data-state={stateClass}>
          {stateText(e)}
          {stateClass === 'on' || stateClass === 'open' ? until(e) : ''}
        </span>
      </div>
      {!e.available && <p class="reason">Unavailable: {e.reason ?? 'no reason given'}</p>}
      {canControl && e.available && (
        <div class="controls">
          <Controls entity={e} media={media} command={command} />
        </div>
      )}
    </li>
  );
}
