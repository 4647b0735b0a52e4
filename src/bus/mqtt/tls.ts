import { createSecureContext } from 'node:tls';
import { reasonOf } from '../../core/errors.js';
import { readSmallFile } from '../../core/read-file.js';

/** The PEM files of `mqtt.ca`, `mqtt.cert` and `mqtt.key`, as paths. */
export interface MqttTlsFiles {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/** Their contents, for mqtt.js. Never logged: `key` is a secret. */
export interface MqttTlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

export type TlsField = keyof MqttTlsFiles;

/** A problem with one of the files: which field, and a one-line message naming the path, never the contents. */
export interface TlsFileProblem {
  field: TlsField;
  message: string;
}

const what: Record<TlsField, string> = {
  ca: "the CA certificate that signed the broker's certificate",
  cert: "hearth's client certificate",
  key: 'the private key of mqtt.cert',
};

/**
 * Reads and checks the files: each one readable and PEM of the right kind, the key unencrypted
 * and matching the certificate. Returns the contents, or the first problem. Used by `hearth check`
 * (the problem at the field's line) and when the connection is opened (files can change between).
 */
export function readTlsFiles(files: MqttTlsFiles): MqttTlsMaterial | TlsFileProblem {
  const out: MqttTlsMaterial = {};
  for (const field of ['ca', 'cert', 'key'] as const) {
    const path = files[field];
    if (path === undefined) continue;
    let text: string;
    try {
      text = readSmallFile(path);
    } catch (err) {
      return {
        field,
        // ENOENT's message repeats the path: once is enough.
        message: `cannot read ${path} (${reasonOf(err).replace(/, open '.*'$/, '')}): it should be ${what[field]}, in PEM; check the path (relative to the config file's folder) and that hearth's user may read it`,
      };
    }
    const problem = pemProblem(field, text);
    if (problem) return { field, message: `${path} ${problem}` };
    out[field] = text;
  }
  // OpenSSL's own checks (a certificate it cannot parse, a key of another certificate). Its
  // messages name the problem, never the key's contents.
  if (out.ca !== undefined) {
    try {
      createSecureContext({ ca: out.ca });
    } catch (err) {
      return { field: 'ca', message: `${files.ca} is not a usable CA certificate (${reasonOf(err)})` };
    }
  }
  if (out.cert !== undefined && out.key !== undefined) {
    try {
      createSecureContext({ cert: out.cert, key: out.key });
    } catch (err) {
      return {
        field: 'key',
        message: `${files.key} does not go with the certificate ${files.cert} (${reasonOf(err)}): give the key the certificate was made for`,
      };
    }
  }
  return out;
}

export function isTlsFileProblem(r: MqttTlsMaterial | TlsFileProblem): r is TlsFileProblem {
  return 'field' in r && 'message' in r;
}

function pemProblem(field: TlsField, text: string): string | undefined {
  if (field === 'key') {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      return 'is not a PEM private key (no -----BEGIN ... PRIVATE KEY----- line)';
    }
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(text)) {
      return "is encrypted with a passphrase, which hearth cannot ask for: write it out unencrypted (openssl pkey -in KEY -out hearth-key.pem) and make it readable by hearth's user only";
    }
    return undefined;
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    return 'is not a PEM certificate (no -----BEGIN CERTIFICATE----- line); a DER file converts with openssl x509 -inform der -in FILE -out FILE.pem';
  }
  return undefined;
}

/** OpenSSL's verification codes for a chain that does not lead to a trusted CA. */
const untrustedCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/**
 * A TLS failure of the connection to the broker as one line that says what to do, or undefined
 * when `err` is not one.
 */
export function describeTlsError(err: Error): string | undefined {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // OpenSSL's message carries its source file and line; its `reason` alone is the readable part.
  const short = (err as { reason?: unknown }).reason;
  const reason = typeof short === 'string' && short !== '' ? short : err.message || code;
  if (untrustedCodes.has(code) || err.message === 'TLS not authorized') {
    return `MQTT: the broker's certificate is not trusted (${reason}): set mqtt.ca to the CA that signed it`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') {
    const names = (err as { cert?: { subjectaltname?: unknown } }).cert?.subjectaltname;
    const forNames = typeof names === 'string' && names !== '' ? `; it is for ${names}` : '';
    return `MQTT: the broker's certificate is not trusted (${reason.replace(/[:\s]+$/, '')}${forNames}): connect by a name the certificate holds (the host of mqtt.url), or have the broker's certificate made for this name and set mqtt.ca to the CA that signed it`;
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return `MQTT: the broker's certificate is not trusted (${reason}): renew the broker's certificate (or check this box's clock)`;
  }
  if (/CERTIFICATE_REQUIRED/.test(code)) {
    return `MQTT: the broker asks for a client certificate (${reason}): set mqtt.cert and mqtt.key`;
  }
  if (
    /ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_EXPIRED)/.test(
      code,
    )
  ) {
    return `MQTT: the broker refused hearth's client certificate (${reason}): mqtt.cert must be signed by a CA the broker trusts (its cafile), and be valid`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(err.message)) {
    return `MQTT: the broker did not answer in TLS (${reason}): mqtt.url is mqtts://, so its port must be the broker's TLS listener (usually 8883), or use mqtt:// for a plain one`;
  }
  return undefined;
}
