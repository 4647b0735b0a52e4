import { createHash } from 'node:crypto';
import type { EntityView } from '../contract/views.js';

/**
 * The status page, `GET /`: hearth's public face. One self-contained HTML document (no
 * external assets, no build step), rendered on the server so it reads without JavaScript,
 * then kept live by a small script on /api/v1/events. It shows state only: nothing on it
 * controls anything.
 */

const style = `
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #f5f5f2; --card: #fff; --muted: #6b6b6b; --on: #c2410c; --bad: #b91c1c; }
@media (prefers-color-scheme: dark) { :root { --fg: #ececec; --bg: #161616; --card: #232323; --muted: #a0a0a0; --on: #fb923c; --bad: #f87171; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 40rem; margin: 0 auto; padding: 1rem; }
header { display: flex; align-items: baseline; justify-content: space-between; gap: 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .75rem; }
#live { font-size: .85rem; color: var(--muted); }
#live[data-live="true"] { color: inherit; }
ul { list-style: none; margin: 0; padding: 0; display: grid; gap: .5rem; }
li { background: var(--card); border-radius: .6rem; padding: .7rem .9rem; box-shadow: 0 1px 2px rgb(0 0 0 / .08); }
.row { display: flex; justify-content: space-between; align-items: baseline; gap: .75rem; }
.name { font-weight: 600; overflow-wrap: anywhere; }
.state { font-variant-numeric: tabular-nums; white-space: nowrap; }
.state[data-state="on"], .state[data-state="open"] { color: var(--on); font-weight: 600; }
.meta { font-size: .85rem; color: var(--muted); margin-top: .2rem; }
.avail[data-available="false"] { color: var(--bad); font-weight: 600; }
`;

const script = `
'use strict';
const list = document.getElementById('entities');
const live = document.getElementById('live');
const template = document.getElementById('card');
function stateText(e) {
  const s = e.state;
  if (s === null || s === undefined) return '\u2014';
  if (typeof s === 'number') return e.attributes && e.attributes.unit ? s + ' ' + e.attributes.unit : String(s);
  if (typeof s === 'string') return /^\\d{4}-\\d\\d-\\d\\dT/.test(s) ? new Date(s).toLocaleString() : s;
  return JSON.stringify(s);
}
function ago(iso) {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return new Date(iso).toLocaleString();
}
function fill(li, e) {
  const field = (name) => li.querySelector('[data-f="' + name + '"]');
  li.dataset.id = e.id;
  field('name').textContent = e.name;
  const state = field('state');
  state.textContent = stateText(e);
  state.dataset.state = typeof e.state === 'string' ? e.state : '';
  field('kind').textContent = e.kind;
  const available = field('available');
  available.textContent = e.available ? 'available' : 'unavailable';
  available.dataset.available = String(e.available);
  const time = field('updated');
  if (e.updatedAt) {
    time.dateTime = e.updatedAt;
    time.title = new Date(e.updatedAt).toLocaleString();
  } else {
    time.removeAttribute('datetime');
    time.title = '';
  }
  time.textContent = ago(e.updatedAt);
}
const empty = document.getElementById('empty');
const rowOf = (id) => [...list.children].find((c) => c.dataset.id === id);
function shown() {
  empty.hidden = list.children.length > 0;
}
function row(e) {
  const li = rowOf(e.id) || template.content.firstElementChild.cloneNode(true);
  fill(li, e);
  return li;
}
function upsert(e) {
  const li = row(e);
  if (!li.parentNode) list.append(li);
  shown();
}
function remove(r) {
  const li = rowOf(r.id);
  if (li) li.remove();
  shown();
}
function reset(snapshot) {
  list.replaceChildren(...snapshot.entities.map(row));
  shown();
}
function tick() {
  for (const t of list.querySelectorAll('time[datetime]')) t.textContent = ago(t.dateTime);
}
// The stream starts where the page's list ends: the server replays what came since, or resets.
const since = list.dataset.lastEventId;
const events = new EventSource('api/v1/events' + (since ? '?lastEventId=' + encodeURIComponent(since) : ''));
events.addEventListener('open', () => {
  live.textContent = 'live';
  live.dataset.live = 'true';
});
events.addEventListener('error', () => {
  live.textContent = 'reconnecting\u2026';
  live.dataset.live = 'false';
});
events.addEventListener('state', (m) => upsert(JSON.parse(m.data)));
events.addEventListener('removed', (m) => remove(JSON.parse(m.data)));
events.addEventListener('reset', (m) => reset(JSON.parse(m.data)));
tick();
setInterval(tick, 15000);
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/**
 * Headers of the page: only this page's own script and style run, it talks only to its own
 * origin, and no other site may frame it.
 */
export const statusPageHeaders = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
} as const;

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => escapes[c] ?? c);

function stateText(e: EntityView): string {
  const s = e.state;
  if (s === null || s === undefined) return '\u2014';
  const unit = e.attributes?.unit;
  if (typeof s === 'number') return typeof unit === 'string' ? `${s} ${unit}` : String(s);
  if (typeof s === 'string') return s;
  return JSON.stringify(s);
}

interface CardFields {
  id: string;
  name: string;
  state: string;
  stateClass: string;
  kind: string;
  available: boolean;
  updatedAt: string | null;
  updatedText: string;
}

function card(f: CardFields): string {
  const time = f.updatedAt ? ` datetime="${escapeHtml(f.updatedAt)}"` : '';
  return (
    `<li data-id="${escapeHtml(f.id)}"><div class="row"><span class="name" data-f="name">${escapeHtml(f.name)}</span>` +
    `<span class="state" data-f="state" data-state="${escapeHtml(f.stateClass)}">${escapeHtml(f.state)}</span></div>` +
    `<div class="meta"><span data-f="kind">${escapeHtml(f.kind)}</span> · ` +
    `<span class="avail" data-f="available" data-available="${f.available}">${f.available ? 'available' : 'unavailable'}</span> · ` +
    `updated <time data-f="updated"${time}>${escapeHtml(f.updatedText)}</time></div></li>`
  );
}

/**
 * The page for `entities`, with update times written in `timezone` until the script makes them
 * relative. `lastEventId`: the event journal's id as of `entities`, so the page's stream starts
 * there (the server replays what came since, or sends a reset).
 */
export function renderStatusPage(
  entities: readonly EntityView[],
  timezone: string,
  lastEventId?: string,
): string {
  // sv-SE writes 2025-01-31 09:01:00: unambiguous in every country.
  const when = new Intl.DateTimeFormat('sv-SE', {
    timeZone: timezone,
    dateStyle: 'short',
    timeStyle: 'medium',
  });
  const cards = entities.map((e) =>
    card({
      id: e.id,
      name: e.name,
      state: stateText(e),
      stateClass: typeof e.state === 'string' ? e.state : '',
      kind: e.kind,
      available: e.available,
      updatedAt: e.updatedAt,
      updatedText: e.updatedAt ? when.format(new Date(e.updatedAt)) : 'never',
    }),
  );
  const blank = card({
    id: '',
    name: '',
    state: '',
    stateClass: '',
    kind: '',
    available: true,
    updatedAt: null,
    updatedText: '',
  });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>hearth</title>
<style>${style}</style>
</head>
<body>
<main>
<header><h1>hearth</h1><span id="live" data-live="false">not live</span></header>
<p id="empty"${entities.length === 0 ? '' : ' hidden'}>No entities yet.</p>
<ul id="entities"${lastEventId ? ` data-last-event-id="${escapeHtml(lastEventId)}"` : ''}>
${cards.join('\n')}
</ul>
<template id="card">${blank}</template>
</main>
<script>${script}</script>
</body>
</html>
`;
}
