/**
 * Serving TLS: certificates from files (reloaded when they rotate) or, with no `server.tls`, a
 * self-generated development certificate for localhost written to a temp dir so clients can trust it.
 * TLS 1.3 is always available (Gatekeeper ≥ 3.11 requires it); 1.2 is the floor (Kyverno).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import selfsigned from 'selfsigned';
import type { TlsConfig } from '../config/index.ts';
import { ProvenantError } from '../types/errors.ts';

export interface ServingTls {
  readonly options: TlsOptions;
  /** Where the certificate came from, for the start-up line. */
  readonly description: string;
  /** Files to watch for rotation (empty for the development certificate). */
  readonly files: readonly string[];
  /** Re-reads the files; throws CONFIG_UNREADABLE when they are unreadable. */
  readonly reload: () => SecureContextOptions;
}

export function servingTls(config: TlsConfig | undefined): ServingTls {
  return config === undefined ? developmentTls() : fileTls(config);
}

function fileTls(config: TlsConfig): ServingTls {
  const read = (): SecureContextOptions => ({
    cert: readTlsFile(config.cert, 'server certificate'),
    key: readTlsFile(config.key, 'server key'),
    ...(config.clientCA === undefined ? {} : { ca: readTlsFile(config.clientCA, 'client CA') }),
  });
  const files = [config.cert, config.key, ...(config.clientCA === undefined ? [] : [config.clientCA])];
  return {
    options: {
      ...read(),
      minVersion: config.minVersion,
      // mTLS: with a client CA, a client without a certificate it signed never reaches a route.
      requestCert: config.clientCA !== undefined,
      rejectUnauthorized: config.clientCA !== undefined,
    },
    description: `certificate ${config.cert}${config.clientCA === undefined ? '' : `, client certificates required (CA ${config.clientCA})`}`,
    files,
    reload: read,
  };
}

function readTlsFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ProvenantError('CONFIG_UNREADABLE', `cannot read the ${what} ${path}: ${String(err)}`, {
      cause: err,
    });
  }
}

const DEV_CERT_DAYS = 30;

function developmentTls(): ServingTls {
  const pems = selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    days: DEV_CERT_DAYS,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  const dir = join(tmpdir(), 'provenant-dev');
  // One file per process: two development servers on one machine must not overwrite each other's.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, `tls-${process.pid}.crt`);
  writeFileSync(certPath, pems.cert);
  const options = { cert: pems.cert, key: pems.private };
  return {
    options: { ...options, minVersion: 'TLSv1.2' },
    description: `self-generated development certificate for localhost (trust it with --cacert ${certPath})`,
    files: [],
    reload: () => options,
  };
}
