/**
 * The HEARTH_ERR_* catalogue: every error a person or a client can see has a code, an HTTP
 * status, a message that names the bad value, and a hint that says what to do next.
 */
export const errorCatalogue = {
  HEARTH_ERR_CONFIG: { status: 500, hint: 'Fix the config file at the line shown, then run `hearth check`.' },
  HEARTH_ERR_ENTITY_NOT_FOUND: { status: 404, hint: 'List entities with GET /api/v1/entities.' },
  HEARTH_ERR_BAD_ID: { status: 400, hint: 'Ids are 1 to 64 characters of A-Z, a-z, 0-9, _ and -.' },
  HEARTH_ERR_UNKNOWN_COMMAND: { status: 400, hint: "GET /api/v1/entities/<id> lists the entity's commands." },
  HEARTH_ERR_BAD_ARGUMENTS: { status: 400, hint: 'Send a JSON object with the arguments the command takes.' },
  HEARTH_ERR_BAD_REQUEST: { status: 400, hint: 'See the README for the request format.' },
  HEARTH_ERR_NOT_FOUND: { status: 404, hint: 'See the README for the API.' },
  HEARTH_ERR_REQUEST_TIMEOUT: {
    status: 408,
    hint: 'Send the whole request at once; hearth does not wait for a slow one.',
  },
  HEARTH_ERR_BODY_TOO_LARGE: {
    status: 413,
    hint: 'Send a smaller body: commands take a small JSON object of arguments (at most 64 KiB).',
  },
  HEARTH_ERR_URL_TOO_LONG: { status: 414, hint: 'Ids are at most 64 characters; check the path.' },
  HEARTH_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    hint: 'Send the arguments as JSON with the header Content-Type: application/json, or send no body.',
  },
  HEARTH_ERR_HEADERS_TOO_LARGE: {
    status: 431,
    hint: 'Send fewer or shorter headers (at most 16 KiB in all).',
  },
  HEARTH_ERR_TOO_MANY_STREAMS: {
    status: 503,
    hint: 'Close an event stream you no longer read, or raise http.maxStreams in the config.',
  },
  HEARTH_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    hint: 'See the Allow header for the methods this path takes.',
  },
  HEARTH_ERR_DEVICE_TIMEOUT: {
    status: 504,
    hint: 'Check that the device is powered and on the network; hearth retries by itself.',
  },
  HEARTH_ERR_DEVICE_FAILED: {
    status: 502,
    hint: 'Check the device address and port in the config; hearth retries by itself.',
  },
  HEARTH_ERR_FORBIDDEN: {
    status: 403,
    hint: "Add the client's network to http.allow in the config, or send the header Authorization: Bearer <token> when http.token is set.",
  },
  HEARTH_ERR_TOO_MANY_LOGINS: {
    status: 429,
    hint: 'Wait for the time in the Retry-After header, then enter the token set as http.token in the config.',
  },
  HEARTH_ERR_TOO_MANY_BUTTONS: {
    status: 409,
    hint: 'Delete buttons no one uses with DELETE /api/v1/entities/<id>, or declare this one under `buttons:` in the config (declared buttons never count), or raise buttonLimits.maxUndeclared.',
  },
  HEARTH_ERR_ENTITY_DECLARED: {
    status: 409,
    hint: 'Only a button created by a press can be deleted through the API; to remove a declared button or a device, delete it from the config file and restart hearth.',
  },
  HEARTH_ERR_AUTOMATION_BUSY: {
    status: 409,
    hint: 'The automation is already running as often as its mode allows; wait for the run to end, or set `mode: restart`, `queued` or `parallel` (with `max`) on it in the config.',
  },
  HEARTH_ERR_NOT_READY: { status: 503, hint: 'hearth is starting or stopping; try again in a moment.' },
  HEARTH_ERR_INTERNAL: {
    status: 500,
    hint: 'This is a bug in hearth: the log has the detail; please report it with that line.',
  },
  HEARTH_ERR_STORE: {
    status: 500,
    hint: 'Check that the data directory is writable and the disk is not full.',
  },
  HEARTH_ERR_STORE_NOT_EMPTY: {
    status: 409,
    hint: 'Restore with --force to replace what the store holds (states, automation runs, history), or restore into an empty store.',
  },
  HEARTH_ERR_STORE_UNAVAILABLE: {
    status: 503,
    hint: 'The database could not be reached or did not commit in time; nothing was saved. Check that PostgreSQL is running and reachable at storage.postgres.url, then try again.',
  },
} as const satisfies Record<string, { status: number; hint: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class HearthError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HearthError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.hint = options?.hint ?? errorCatalogue[code].hint;
  }

  toJSON(): { code: ErrorCode; message: string; hint: string } {
    return { code: this.code, message: this.message, hint: this.hint };
  }
}

/** A one-line, human-readable reason for any thrown value. */
export function reasonOf(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const text = err.message || err.name;
    const line = code && !text.includes(code) ? `${code}: ${text}` : text;
    return line.replace(/\s*\n\s*/g, ' ');
  }
  return String(err).replace(/\s*\n\s*/g, ' ');
}
