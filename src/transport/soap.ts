/**
 * UPnP SOAP over HTTP, as Wemo plugs and Sonos speakers speak it: one POST per call on its own
 * connection, and the few text helpers their envelopes need. Imports nothing from hearth, so
 * protocol clients and simulators can share it.
 */
import { type IncomingMessage, request } from 'node:http';

const ENVELOPE_OPEN =
  '<?xml version="1.0" encoding="utf-8"?>' +
  '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"' +
  ' s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>';
const ENVELOPE_CLOSE = '</s:Body></s:Envelope>';

/** A whole SOAP envelope around `body` (an action element or a fault). */
export function soapEnvelope(body: string): string {
  return `${ENVELOPE_OPEN}${body}${ENVELOPE_CLOSE}`;
}

/** A UPnP fault, as devices send it with HTTP 500 for an action or argument they do not take. */
export function faultEnvelope(code: number, description: string): string {
  return soapEnvelope(
    '<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>' +
      '<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">' +
      `<errorCode>${code}</errorCode><errorDescription>${escapeXml(description)}</errorDescription>` +
      '</UPnPError></detail></s:Fault>',
  );
}

/** `<`, `>`, `&`, `"` and `'` as entities: URIs carry `&` and metadata is a whole DIDL-Lite document. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => XML_ESCAPES[c] ?? c);
}
const XML_ESCAPES: Record<string, string> = {
  '<': '&lt;',
  '>': '&gt;',
  '&': '&amp;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Undoes one level of XML escaping: the five named entities and numeric references. */
export function unescapeXml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]{1,6}|#[0-9]{1,7});/g, (whole, name: string) => {
    switch (name) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const code = name[1] === 'x' ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

/**
 * The unescaped text of the first `<name>` element, or undefined when there is none. Answers
 * hold flat elements of escaped text, so a scan for the tag is enough; no XML parser needed.
 */
export function elementText(xml: string, name: string): string | undefined {
  const open = new RegExp(`<(?:[A-Za-z0-9_-]+:)?${name}(?:\\s[^>]*)?(/?)>`).exec(xml);
  if (!open) return undefined;
  if (open[1] === '/') return '';
  const start = open.index + open[0].length;
  const end = xml.indexOf('<', start);
  if (end < 0) return undefined;
  return unescapeXml(xml.slice(start, end));
}

/**
 * The headers of one call; `soapAction` is `"<service type>#<action>"`, quotes included.
 * `Connection: close`: real plugs give EOFs on a reused connection.
 */
export function soapHeaders(soapAction: string, body: string): Record<string, string | number> {
  return {
    'Content-Type': 'text/xml; charset="utf-8"',
    SOAPACTION: soapAction,
    Connection: 'close',
    'Content-Length': Buffer.byteLength(body),
  };
}

export interface SoapPost {
  host: string;
  port: number;
  /** The control URL's path, e.g. `/upnp/control/basicevent1`. */
  path: string;
  /** From soapHeaders; a caller on a hot path builds them once. */
  headers: Record<string, string | number>;
  body: string;
  /** A longer reply is not the device talking: the call fails and the socket is destroyed. */
  maxReplyBytes: number;
  /** How the reply's bytes become text; SOAP replies are ASCII in practice. */
  encoding: 'utf8' | 'latin1';
  /** The call's own deadline, besides the signal; none when absent. */
  timeoutMs?: number;
  /** Aborting rejects with `signal.reason` and destroys the socket at once. */
  signal?: AbortSignal;
}

/** Where a POST failed; the client turns it into a sentence that names its device. */
export type SoapFailure =
  /** No connection, or it broke before the reply: `code` is the socket error's. */
  | 'connect'
  /** `timeoutMs` passed first. */
  | 'timeout'
  /** The reply passed `maxReplyBytes`. */
  | 'too-large'
  /** The device closed the connection in the middle of its reply. */
  | 'cut'
  /** The reply stream failed. */
  | 'reply';

export class SoapPostError extends Error {
  readonly failure: SoapFailure;
  /** The socket error's code (`ECONNREFUSED` ...), or `ETIMEDOUT` for a timeout. */
  readonly code: string | undefined;

  constructor(failure: SoapFailure, message: string, code?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SoapPostError';
    this.failure = failure;
    this.code = code;
  }
}

/**
 * One POST on its own connection (`agent: false` and `Connection: close`: no pool holds a socket
 * to a device that hung). Resolves with the status and body of any complete
 * reply; the caller decides what a non-200 means.
 */
export function soapPost(p: SoapPost): Promise<{ status: number; body: string }> {
  const { signal } = p;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (err: unknown, reply?: { status: number; body: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolve(reply as { status: number; body: string });
      else reject(err);
    };
    const failWith = (err: unknown): void => {
      settle(err);
      req.destroy();
    };
    const onAbort = (): void => failWith(signal?.reason);

    const req = request({
      host: p.host,
      port: p.port,
      method: 'POST',
      path: p.path,
      headers: p.headers,
      agent: false,
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (p.timeoutMs !== undefined) {
      const ms = p.timeoutMs;
      timer = setTimeout(
        () => failWith(new SoapPostError('timeout', `no answer within ${ms} ms`, 'ETIMEDOUT')),
        ms,
      );
    }

    req.on('error', (err: NodeJS.ErrnoException) =>
      settle(new SoapPostError('connect', err.message, err.code, err)),
    );
    req.on('response', (res: IncomingMessage) => {
      res.setEncoding(p.encoding);
      let body = '';
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length > p.maxReplyBytes) {
          failWith(new SoapPostError('too-large', `reply larger than ${p.maxReplyBytes} bytes`));
        }
      });
      res.on('end', () => settle(undefined, { status: res.statusCode ?? 0, body }));
      // A device that drops the connection mid-reply ends here without 'end'.
      res.on('close', () => {
        if (!res.complete) settle(new SoapPostError('cut', 'connection closed in the middle of the reply'));
      });
      // With a Content-Length, a cut reply is an 'aborted' error rather than a bare close.
      res.on('error', (err) =>
        settle(
          res.complete
            ? new SoapPostError('reply', err.message, undefined, err)
            : new SoapPostError('cut', 'connection closed in the middle of the reply', undefined, err),
        ),
      );
    });
    req.end(p.body);
  });
}
