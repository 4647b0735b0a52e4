import type { EntityView } from '../core/runtime.js';

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

/** `view` as a public reader sees it: the reason (and failure attributes) made generic. */
export function publicView(view: EntityView): EntityView {
  let attributes = view.attributes;
  for (const key of failureAttributes) {
    const value = attributes[key];
    if (typeof value === 'string') attributes = { ...attributes, [key]: publicReason(value) };
  }
  if (view.reason === null && attributes === view.attributes) return view;
  return { ...view, reason: publicReason(view.reason), attributes };
}
