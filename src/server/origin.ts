import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { hostname } from 'node:os';

/*
 * Defences of control routes against the browsers in the house, which sit inside the allow-list:
 * a page from the internet can POST to the LAN without a preflight (text/plain, a form), and with
 * DNS rebinding a name it owns can point at this box, so its script reads the answers too.
 * The Host check stops the second (a rebound name is not one of ours); the Origin and
 * Sec-Fetch-Site checks stop the first. A client that sends neither header (curl, scripts, old
 * devices) is not a browser and passes.
 */

/** `Host` names accepted besides IP literals and `localhost`: this machine's names and `extra`. */
export class HostNames {
  readonly #names: ReadonlySet<string>;

  /** `extra` are the names of `http.hostNames` (a DNS name, a reverse proxy's name). */
  constructor(extra: readonly string[] = [], machine: string = hostname()) {
    const names = new Set<string>();
    const own = normaliseName(machine);
    if (own) {
      const short = own.split('.')[0] ?? own;
      for (const n of [own, short, `${short}.local`, `${own}.local`]) names.add(n);
    }
    for (const n of extra) {
      const name = normaliseName(n);
      if (name) names.add(name);
    }
    this.#names = names;
  }

  /**
   * True if the `Host` header names this box: an IP literal (IPv6 in brackets), `localhost`,
   * `*.localhost`, one of the names. No header at all (HTTP/1.0 devices) passes: only a browser
   * can be rebound, and browsers always send it.
   */
  allows(host: string | undefined): boolean {
    if (host === undefined) return true;
    const name = hostOf(host);
    if (name === undefined) return false;
    if (name.startsWith('[')) return name.endsWith(']') && isIP(name.slice(1, -1)) === 6;
    if (isIP(name) === 4) return true;
    if (name === 'localhost' || name.endsWith('.localhost')) return true;
    return this.#names.has(name);
  }
}

/** The host part of a `Host` header, lower case, without port or trailing dot; undefined if malformed. */
function hostOf(header: string): string | undefined {
  const text = header.trim().toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m?.[1]) return undefined;
  return m[1].replace(/\.$/, '');
}

function normaliseName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

export type CrossSite = { why: string } | undefined;

/**
 * Undefined when the request is not cross-site; otherwise why it is. Refused: an `Origin` that
 * is not this request's own (`http(s)://` + its `Host`), `Origin: null` (sandboxed frames, file
 * pages), and `Sec-Fetch-Site` other than `same-origin` or `none`: `same-site` is refused too,
 * because another port or another box of the same site (a router's page, a printer's) is
 * exactly the kind of page that should not drive a heater. A browser too old to send either
 * header still sends `Referer` for a form posted from another site's page: when neither header
 * came, a `Referer` of another origin is refused as well. Old devices send none of the three.
 */
export function crossSite(headers: IncomingHttpHeaders): CrossSite {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return {
      why: `the browser says the request comes from a page of another site (Sec-Fetch-Site: ${site})`,
    };
  }
  const origin = headers.origin;
  if (origin === undefined) {
    const referer = headers.referer;
    if (site !== undefined || referer === undefined || sameOrigin(referer, headers.host)) return undefined;
    return {
      why: `the request comes from a page of ${JSON.stringify(refererOrigin(referer).slice(0, 100))} (its Referer), not of this server`,
    };
  }
  if (!sameOrigin(origin, headers.host)) {
    return {
      why: `the request comes from a page of ${JSON.stringify(origin.slice(0, 100))}, not of this server`,
    };
  }
  return undefined;
}

/** The origin part of a Referer (its path may name things of the other site's), or the text if it is no URL. */
function refererOrigin(referer: string): string {
  try {
    const url = new URL(referer);
    return url.origin === 'null' ? referer : url.origin;
  } catch {
    return referer;
  }
}

/** True when `origin` (an Origin, or a Referer's URL) is `http(s)://` + `host`. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // `null` and anything else that is not an origin
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  // URL.host drops the scheme's default port; so must the Host header.
  const defaultPort = url.protocol === 'https:' ? ':443' : ':80';
  let own = host.trim().toLowerCase();
  if (own.endsWith(defaultPort)) own = own.slice(0, -defaultPort.length);
  return url.host === own;
}
