import type { EntityView } from '../contract/views.js';

/*
 * What strangers see of a failure. A reason names LAN addresses, host names, serial numbers in
 * /dev/serial/by-id paths and file paths: detail the household needs and the internet must not
 * have. A public reader gets one of a few fixed phrases instead, chosen from the reason but
 * never copied from it, so nothing of the reason's text can leak.
 */

export const publicReasons = ['not answering', 'not found', 'device error'] as const;
export type PublicReason = (typeof publicReasons)[number];

const notAnswering =
  /\b(ETIMEDOUT|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|EHOSTDOWN|ENOTFOUND|EAI_AGAIN|EPIPE)\b|did not answer|no answer|timed out|closed the connection/i;
const notFound = /\b(ENOENT|ENODEV|ENXIO)\b|no such file|no file|not connected|unplugged|not open/i;

/** The phrase a public reader sees for `reason`; null stays null (available). */
export function publicReason(reason: string | null): PublicReason | null {
  if (reason === null) return null;
  if (notAnswering.test(reason)) return 'not answering';
  if (notFound.test(reason)) return 'not found';
  return 'device error';
}

/** Attributes that carry a failure's text (a zone closed by a failure): as generic as `reason`. */
const failureAttributes = ['failure', 'error', 'reason'];

/**
 * Attributes that identify a piece of hardware (a zigbee IEEE address, a serial number, a MAC,
 * a UPnP UDN): the household's to know, not the internet's. Left out of the public view, at any
 * depth (`zigbee: { ieee }`).
 */
const hardwareKey =
  /^(ieee|ieee_?address|serial|serial_?number|mac|mac_?address|udn|uuid|hw_?id|device_?id)$/i;
/** An IEEE 802.15.4 / EUI-64 address as zigbee2mqtt writes it (0x00158d0001a1b201). */
const eui64 = /\b0x[0-9a-f]{16}\b/gi;

/** `value` without hardware identities; the same object when it holds none. */
function withoutHardware(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(eui64, '(hidden)');
  if (Array.isArray(value)) {
    const out = value.map(withoutHardware);
    return out.every((v, i) => v === value[i]) ? value : out;
  }
  if (value === null || typeof value !== 'object') return value;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (hardwareKey.test(k)) {
      changed = true;
      continue;
    }
    const w = withoutHardware(v);
    if (w !== v) changed = true;
    out[k] = w;
  }
  return changed ? out : value;
}

/** `view` as a public reader sees it: the reason (and failure attributes) made generic, no hardware identity. */
export function publicView(view: EntityView): EntityView {
  let attributes = withoutHardware(view.attributes) as Record<string, unknown>;
  for (const key of failureAttributes) {
    const value = attributes[key];
    if (typeof value === 'string') attributes = { ...attributes, [key]: publicReason(value) };
  }
  if (view.reason === null && attributes === view.attributes) return view;
  return { ...view, reason: publicReason(view.reason), attributes };
}
