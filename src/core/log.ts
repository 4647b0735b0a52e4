import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Keys whose values never reach a log line, at the top level, one level down, and in request
 * headers (`{ req: { headers: { authorization } } }`). Config values are not logged at all; this
 * is the net under that rule.
 */
const redactPaths = [
  'token',
  '*.token',
  '*.*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'cookie',
  '*.cookie',
  'headers.cookie',
  '*.headers.cookie',
  'password',
  '*.password',
];

/**
 * JSON logs, quiet by default: no line per request at `info`, so an SD card is not worn out.
 * Secrets never reach a log line: config values are not logged, and the keys above are
 * redacted wherever they appear. `destination` is stdout unless given (tests pass a stream).
 */
export function createLogger(
  level = process.env.HEARTH_LOG_LEVEL ?? 'info',
  destination?: pino.DestinationStream,
): Logger {
  const options = { level, base: { app: 'hearth' }, redact: { paths: redactPaths } };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that writes nothing, for tools and tests that do not want output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
