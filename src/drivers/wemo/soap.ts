/**
 * The SOAP texts of the Wemo `basicevent1` service, shared by the client and the simulator so
 * the two cannot drift apart. Imports nothing from hearth's core; the generic SOAP parts are in
 * src/transport/soap.ts.
 */
import { soapEnvelope } from '../../transport/soap.js';

export { faultEnvelope } from '../../transport/soap.js';

/** Where every basicevent action is posted. */
export const CONTROL_PATH = '/upnp/control/basicevent1';

/** The service type; the SOAPACTION header is `"<this>#<action>"`, quotes included. */
export const SERVICE_TYPE = 'urn:Belkin:service:basicevent:1';

export type WemoAction = 'GetBinaryState' | 'SetBinaryState';

/** A request or response envelope for one action, with the one argument every action here takes. */
export function envelope(element: string, binaryState: string): string {
  return soapEnvelope(
    `<u:${element} xmlns:u="${SERVICE_TYPE}"><BinaryState>${binaryState}</BinaryState></u:${element}>`,
  );
}

/** The request bodies, built once: the client only ever sends these three. */
export const GET_REQUEST = envelope('GetBinaryState', '');
export const SET_ON_REQUEST = envelope('SetBinaryState', '1');
export const SET_OFF_REQUEST = envelope('SetBinaryState', '0');

const OPEN_TAG = '<BinaryState>';

/**
 * The text of the first `<BinaryState>` element up to `<` or `|` (Insight plugs append
 * `|since|on-for|...` to the state), or undefined when there is no such element. A plain
 * scan rather than a regex or an XML parser: this runs on every button press.
 */
export function binaryStateText(xml: string): string | undefined {
  const open = xml.indexOf(OPEN_TAG);
  if (open < 0) return undefined;
  const start = open + OPEN_TAG.length;
  let end = start;
  for (; end < xml.length; end++) {
    const c = xml.charCodeAt(end);
    if (c === 0x3c /* < */ || c === 0x7c /* | */) return xml.slice(start, end).trim();
  }
  return undefined;
}

/** True if `text` is one or more ASCII digits. */
export function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
