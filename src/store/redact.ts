/**
 * A database URL carries its password (`postgres://user:pass@host/db`). Everything hearth
 * prints about a URL goes through here, so the password never reaches a log, an error or an
 * HTTP answer.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*):[^@/]*@/i, '$1:***@');
}

/** Removes the password of `url` from `text` wherever it appears, and any credentials of a URL in it. */
export function redactText(text: string, url?: string): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^@/\s]*@/gi, '$1:***@');
  const password = url === undefined ? undefined : passwordOf(url);
  if (password) out = out.split(password).join('***');
  return out;
}

function passwordOf(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

/** `host:port/database` of a PostgreSQL URL, for messages. */
export function whereOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    return redactUrl(url);
  }
}

/**
 * Keys whose value is a secret wherever they appear in a config (`http.token`, `mqtt.password`,
 * an `Authorization` header, a passphrase): never echoed, never printed.
 */
const secretKey = /token|password|passwd|passphrase|secret|credential|api_?key|authorization/i;

export function isSecretKey(key: string): boolean {
  return secretKey.test(key);
}

/**
 * `value` (config data: mappings, lists, scalars) with every secret-bearing key's value replaced
 * by `***` and the credentials of any URL in a string removed: for printing config data.
 */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      isSecretKey(k) && v !== null && v !== undefined && v !== '' ? '***' : redactSecrets(v),
    ]),
  );
}
