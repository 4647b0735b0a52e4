import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { z } from 'zod/v3';
import { BackupError } from './errors.js';

/**
 * The secrets file in an archive (`secrets.enc`), encrypted with a passphrase from the
 * environment: scrypt derives a 256-bit key from it and a random salt, AES-256-GCM encrypts and
 * authenticates, so a wrong passphrase and a changed file are both refused, never half-read.
 * The file is JSON (small: the secrets file is at most 1 MB), so a person can see what it is.
 */

export const PASSPHRASE_ENV = 'HEARTH_BACKUP_PASSPHRASE';
/** Shorter passphrases fall to a guessing attack on a stolen archive far too soon. */
export const minPassphraseLength = 12;

/** scrypt cost: 32 MiB and about 0.1 s on a small board per backup or restore; fine for both. */
const COST = { N: 2 ** 15, r: 8, p: 1 };
/** Also authenticated: a file of another purpose or version cannot pass for this one. */
const AAD = Buffer.from('hearth secrets.enc v1');

const envelopeSchema = z
  .object({
    hearthSecrets: z.literal(1),
    kdf: z.literal('scrypt'),
    // Bounded, so an archive cannot make restore spend gigabytes deriving a key.
    N: z
      .number()
      .int()
      .min(2 ** 10)
      .max(2 ** 20),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
    salt: z.string().min(16),
    iv: z.string().min(16),
    tag: z.string().min(16),
    data: z.string(),
  })
  .strict();

/**
 * The passphrase from HEARTH_BACKUP_PASSPHRASE, checked: set and long enough. `purpose` says
 * why it is needed ("--include-secrets encrypts the secrets file with a passphrase"), `otherwise`
 * what else the user can do.
 */
export function passphraseFromEnv(env: NodeJS.ProcessEnv, purpose: string, otherwise = ''): string {
  const value = env[PASSPHRASE_ENV];
  if (value === undefined || value === '') {
    throw new BackupError(
      `${purpose}, and ${PASSPHRASE_ENV} is not set: export it (at least ${minPassphraseLength} characters; keep it somewhere other than the backups)${otherwise}`,
    );
  }
  if ([...value].length < minPassphraseLength) {
    throw new BackupError(
      `${PASSPHRASE_ENV} is too short (${[...value].length} characters); use at least ${minPassphraseLength}, e.g. four random words`,
    );
  }
  return value;
}

function deriveKey(
  passphrase: string,
  salt: Buffer,
  cost: { N: number; r: number; p: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      passphrase.normalize('NFC'),
      salt,
      32,
      { ...cost, maxmem: 256 * cost.N * cost.r + 16 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

/** Encrypts the secrets file's bytes; the result is the content of `secrets.enc`. */
export async function encryptSecrets(plain: Buffer, passphrase: string): Promise<Buffer> {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = await deriveKey(passphrase, salt, COST);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(AAD);
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  const envelope = {
    hearthSecrets: 1,
    kdf: 'scrypt',
    ...COST,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
  return Buffer.from(`${JSON.stringify(envelope)}\n`);
}

/**
 * Decrypts `secrets.enc`. A wrong passphrase and a changed file look alike to AES-GCM (the tag
 * does not match); the message says both.
 */
export async function decryptSecrets(sealed: Buffer, passphrase: string): Promise<Buffer> {
  let envelope: z.infer<typeof envelopeSchema>;
  try {
    envelope = envelopeSchema.parse(JSON.parse(sealed.toString('utf8')));
  } catch {
    throw new BackupError('secrets.enc is not an encrypted hearth secrets file; the archive is damaged');
  }
  const tag = Buffer.from(envelope.tag, 'base64');
  if (tag.length !== 16) {
    throw new BackupError('secrets.enc is not an encrypted hearth secrets file; the archive is damaged');
  }
  const key = await deriveKey(passphrase, Buffer.from(envelope.salt, 'base64'), envelope);
  // A full 16-byte tag only: a shortened one would be easier to forge.
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(envelope.iv, 'base64'), {
    authTagLength: 16,
  });
  decipher.setAAD(AAD);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(Buffer.from(envelope.data, 'base64')), decipher.final()]);
  } catch {
    throw new BackupError(
      `the passphrase in ${PASSPHRASE_ENV} does not open secrets.enc: it is not the one the backup was made with`,
    );
  }
}
