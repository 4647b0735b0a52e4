import { createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * Mosquitto's password file, made the way `mosquitto_passwd` makes it: one `user:hash` line per
 * user, the hash `$7$<iterations>$<salt>$<hash>` (PBKDF2-HMAC-SHA512, a 12-byte salt, a 64-byte
 * key, both base64), which Mosquitto 2.0 and later read. test/mqtt-acl.test.ts checks a file made
 * here against a real Mosquitto.
 */

/** `mosquitto_passwd`'s own count. The passwords hearth generates are random, not guessable words. */
const iterations = 101;

/**
 * The hash of one password. The salt is random unless given; `kube render` derives it from the
 * user and the password ({@link stableSalt}), so the same passwords render the same file.
 */
export function mosquittoHash(password: string, salt: Buffer = randomBytes(12)): string {
  const key = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A salt that depends on the user and the password only: unique per password, stable across renders. */
export function stableSalt(username: string, password: string): Buffer {
  return createHmac('sha256', password).update(`mosquitto salt for ${username}`).digest().subarray(0, 12);
}

/** The password file's text for `users` (name → password), in the order given. */
export function passwordFile(users: ReadonlyMap<string, string>): string {
  return [...users].map(([name, pw]) => `${name}:${mosquittoHash(pw, stableSalt(name, pw))}\n`).join('');
}

/** A new password: 32 random bytes as 64 hex digits (safe in any config, URL or shell). */
export function newPassword(): string {
  return randomBytes(32).toString('hex');
}
