/**
 * The UPnP SOAP texts of a Sonos zone player's AVTransport and RenderingControl services, shared
 * by the client and the simulator so the two cannot drift apart. Imports nothing from hearth's
 * core; the generic SOAP parts are in src/transport/soap.ts.
 */
import { escapeXml, soapEnvelope, faultEnvelope as soapFault, unescapeXml } from '../../transport/soap.js';

export { elementText, escapeXml, unescapeXml } from '../../transport/soap.js';

export const AV_TRANSPORT = {
  name: 'AVTransport',
  path: '/MediaRenderer/AVTransport/Control',
  type: 'urn:schemas-upnp-org:service:AVTransport:1',
} as const;

export const RENDERING_CONTROL = {
  name: 'RenderingControl',
  path: '/MediaRenderer/RenderingControl/Control',
  type: 'urn:schemas-upnp-org:service:RenderingControl:1',
} as const;

export type SonosService = typeof AV_TRANSPORT | typeof RENDERING_CONTROL;

/** The actions hearth calls, and so the only ones the simulator answers. */
export const AV_TRANSPORT_ACTIONS = [
  'GetTransportInfo',
  'GetMediaInfo',
  'GetPositionInfo',
  'SetAVTransportURI',
  'Play',
  'Pause',
  'Seek',
] as const;
export const RENDERING_CONTROL_ACTIONS = ['GetVolume', 'SetVolume'] as const;
export type SonosAction = (typeof AV_TRANSPORT_ACTIONS)[number] | (typeof RENDERING_CONTROL_ACTIONS)[number];

/** Arguments in the order the service description lists them (players are picky about order). */
export type SoapArgs = ReadonlyArray<readonly [name: string, value: string | number]>;

/** The request body of one action; every value is escaped. */
export function requestEnvelope(service: SonosService, action: string, args: SoapArgs): string {
  let body = `<u:${action} xmlns:u="${service.type}">`;
  for (const [name, value] of args) body += `<${name}>${escapeXml(String(value))}</${name}>`;
  return soapEnvelope(`${body}</u:${action}>`);
}

/** The response body of one action, as a zone player sends it. */
export function responseEnvelope(service: SonosService, action: string, args: SoapArgs): string {
  return requestEnvelope(service, `${action}Response`, args);
}

/** The SOAPACTION header: `"<service type>#<action>"`, quotes included. */
export function soapAction(service: SonosService, action: string): string {
  return `"${service.type}#${action}"`;
}

/** A UPnP fault, as a zone player sends it with HTTP 500. */
export function faultEnvelope(code: number, description = upnpErrors[code] ?? ''): string {
  return soapFault(code, description);
}

/**
 * What the UPnP error codes that zone players send mean (they send the code alone, without a
 * description), so a fault becomes a sentence a person can act on.
 */
export const upnpErrors: Readonly<Record<number, string>> = {
  401: 'invalid action',
  402: 'invalid arguments',
  501: 'action failed',
  701: 'transition not available',
  702: 'no contents',
  704: 'format not supported for playback',
  705: 'transport is locked',
  711: 'illegal seek target',
  712: 'play mode not supported',
  714: 'illegal MIME type',
  715: 'content busy',
  716: 'resource not found',
  718: 'invalid instance id',
  800: 'the speaker is not the coordinator of its group',
};

/** All arguments of a request or response body, by element name, unescaped (for the simulator). */
export function actionArgs(xml: string, element: string): Map<string, string> | undefined {
  const open = new RegExp(`<([A-Za-z0-9_-]+:)?${element}(?:\\s[^>]*)?>`).exec(xml);
  if (!open) return undefined;
  const close = xml.indexOf(`</${open[1] ?? ''}${element}>`, open.index);
  if (close < 0) return undefined;
  const inner = xml.slice(open.index + open[0].length, close);
  const args = new Map<string, string>();
  for (const m of inner.matchAll(/<([A-Za-z0-9_]+)(?:\s[^>]*)?(?:\/>|>([^<]*)<\/\1>)/g)) {
    args.set(m[1] as string, unescapeXml(m[2] ?? ''));
  }
  return args;
}

/** `H:MM:SS` (what zone players send and take) as seconds; undefined for `NOT_IMPLEMENTED` and such. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+):([0-5]?\d):([0-5]?\d)(?:\.\d+)?$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}

/** Seconds as `H:MM:SS`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}
