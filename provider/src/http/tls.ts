/**
 * Serving TLS: certificates from files (reloaded when they rotate) or, with no `server.tls`, a
 * self-generated development certificate for localhost written to a temp dir so clients can trust it.
 * TLS 1.3 is always available (Gatekeeper ≥ 3.11 requires it); 1.2 is the floor (Kyverno).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import ipaddr from 'ipaddr.js';
import selfsigned from 'selfsigned';
import type { Config, TlsConfig } from '../config/index.ts';
import { ProvenantError } from '../types/errors.ts';

/**
 * Forward-secret AEAD suites only (Mozilla's "intermediate" profile without DHE): the TLS 1.3 suites,
 * and for TLS 1.2 ECDHE with AES-GCM or ChaCha20-Poly1305 (RFC 5289, RFC 7905). No static-RSA key
 * exchange (no forward secrecy) and no CBC (Lucky13-style padding oracles, RFC 7457 §2.8). Go's
 * crypto/tls (Gatekeeper, Kyverno) offers all of these by default.
 */
export const DEFAULT_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface ServingTls {
  readonly options: TlsOptions;
  /** Where the certificate came from, for the start-up line. */
  readonly description: string;
  /** Files to watch for rotation (empty for the development certificate). */
  readonly files: readonly string[];
  /** Re-reads the files; throws CONFIG_UNREADABLE when they are unreadable. */
  readonly reload: () => SecureContextOptions;
  /** server.tls.clientCA is set: /v1/* answer only clients whose certificate it signed. */
  readonly clientCertificateRequired: boolean;
}

/** Throws CONFIG_TLS_REQUIRED for the development certificate beyond loopback, CONFIG_INVALID for bad ciphers. */
export function servingTls(server: Config['server']): ServingTls {
  if (server.tls !== undefined) return checkedCiphers(fileTls(server.tls), server.tls.ciphers);
  if (!isLoopback(server.host) && !server.allowDevCertificate) {
    throw new ProvenantError(
      'CONFIG_TLS_REQUIRED',
      `expected server.tls (cert and key files) to listen on ${server.host}, found none: the self-generated development certificate is only served on loopback (127.0.0.1, ::1, localhost) unless server.allowDevCertificate is true`,
    );
  }
  return developmentTls();
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  return ipaddr.isValid(host) && ipaddr.process(host).range() === 'loopback';
}

/** An unknown or empty cipher list is refused at start, naming the setting, not at the first handshake. */
function checkedCiphers(tls: ServingTls, ciphers: string | undefined): ServingTls {
  try {
    createSecureContext({ ciphers: tls.options.ciphers });
  } catch (err) {
    throw new ProvenantError(
      'CONFIG_INVALID',
      `expected server.tls.ciphers to be an OpenSSL cipher list naming at least one cipher, found ${JSON.stringify(ciphers)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return tls;
}

function fileTls(config: TlsConfig): ServingTls {
  const read = (): SecureContextOptions => ({
    cert: readTlsFile(config.cert, 'server certificate'),
    key: readTlsFile(config.key, 'server key'),
    ...(config.clientCA === undefined ? {} : { ca: readTlsFile(config.clientCA, 'client CA') }),
  });
  const files = [config.cert, config.key, ...(config.clientCA === undefined ? [] : [config.clientCA])];
  const clientCertificateRequired = config.clientCA !== undefined;
  return {
    options: {
      ...read(),
      minVersion: config.minVersion,
      ciphers: config.ciphers ?? DEFAULT_CIPHERS,
      honorCipherOrder: true,
      // mTLS: a client certificate is asked for but not required by the handshake, so kubelet probes and
      // Prometheus (which present none) reach /healthz, /readyz and /metrics; the app refuses /v1/* to a
      // client with neither a certificate the client CA signed nor another accepted credential (auth.ts, one check for every route).
      requestCert: clientCertificateRequired,
      rejectUnauthorized: false,
    },
    description: `certificate ${config.cert}${clientCertificateRequired ? `, client certificates required for /v1/* (CA ${config.clientCA})` : ''}`,
    files,
    reload: read,
    clientCertificateRequired,
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
    options: { ...options, minVersion: 'TLSv1.2', ciphers: DEFAULT_CIPHERS, honorCipherOrder: true },
    description: `self-generated development certificate for localhost (trust it with --cacert ${certPath})`,
    files: [],
    reload: () => options,
    clientCertificateRequired: false,
  };
}
