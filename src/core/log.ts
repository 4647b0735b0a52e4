import pino from 'pino';

export type Logger = pino.Logger;

/**
 * JSON logs, quiet by default: no line per request at `info`, so an SD card is not worn out.
 * Secrets never reach a log line: config values are not logged, and the keys below are
 * redacted wherever they appear.
 */
export function createLogger(level = process.env.HEARTH_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { app: 'hearth' },
    redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'password', '*.password'] },
  });
}

/** A logger that writes nothing, for tools and tests that do not want output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
