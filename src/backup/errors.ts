import { HearthError, reasonOf } from '../core/errors.js';

/**
 * A backup or restore that cannot go on, for a reason the person running it can act on: the
 * message says what is wrong and what to do, and is printed as it is (no stack trace). It never
 * quotes a secret: not the passphrase, not the database URL's password.
 */
export class BackupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackupError';
  }
}

/** Why a store operation failed, for a person: the store's own message, without its error code. */
export function storeReason(err: unknown): string {
  return err instanceof HearthError ? err.message : reasonOf(err);
}
