/**
 * Serving TLS: certificates from files (reloaded when they rotate) or, with no `server.tls`, a
 * self-generated development certificate for localhost written to a temp dir so clients can trust it.
 * TLS 1.3 is always available (Gatekeeper ≥ 3.11 requires it); 1.2 is the floor (Kyverno).
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createSecureContext, type SecureContextOptions, type TlsOptions } from 'node:tls';
import ipaddr from 'ipaddr.js';
import type Selfsigned from 'selfsigned';
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

/** The `certificate` label of provenant_tls_certificate_expiry_timestamp_seconds. */
export type ServedCertificate = 'serving' | 'client_ca';

/** When each served certificate file stops being valid, for the expiry gauge. */
export type CertificateExpiries = readonly { certificate: ServedCertificate; notAfterSeconds: number }[];

/** What is served: the secure context's certificates and key, and when they expire. */
export interface TlsMaterial {
  readonly context: SecureContextOptions;
  readonly expiries: CertificateExpiries;
}

export interface ServingTls {
  readonly options: TlsOptions;
  /** When the certificates in `options` expire. */
  readonly expiries: CertificateExpiries;
  /** Where the certificate came from, for the start-up line. */
  readonly description: string;
  /** Files to watch for rotation (empty for the development certificate). */
  readonly files: readonly string[];
  /**
   * Re-reads the files; throws CONFIG_UNREADABLE when they are unreadable, CONFIG_INVALID when one
   * holds no certificate.
   */
  readonly reload: () => TlsMaterial;
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
  const read = (): TlsMaterial => {
    const cert = readTlsFile(config.cert, 'server certificate');
    const key = readTlsFile(config.key, 'server key');
    if (config.clientCA === undefined)
      return { context: { cert, key }, expiries: [expiry('serving', cert, config.cert)] };
    const ca = readTlsFile(config.clientCA, 'client CA');
    return {
      context: { cert, key, ca },
      expiries: [expiry('serving', cert, config.cert), expiry('client_ca', ca, config.clientCA)],
    };
  };
  const files = [config.cert, config.key, ...(config.clientCA === undefined ? [] : [config.clientCA])];
  const clientCertificateRequired = config.clientCA !== undefined;
  const { context, expiries } = read();
  return {
    expiries,
    options: {
      ...context,
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

// RFC 7468 §2: textual encoding, one block per certificate of a chain or bundle.
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * The earliest notAfter (RFC 5280 §4.1.2.5) among the certificates of a PEM file: a chain or a CA
 * bundle stops working, in part, when its first certificate expires. Throws CONFIG_INVALID for a file
 * with no certificate node can parse.
 */
function expiry(certificate: ServedCertificate, pem: string, source: string): CertificateExpiries[number] {
  const notAfter: number[] = [];
  for (const [block] of pem.matchAll(PEM_CERTIFICATE)) {
    try {
      notAfter.push(Date.parse(new X509Certificate(block).validTo) / 1000);
    } catch (err) {
      throw new ProvenantError(
        'CONFIG_INVALID',
        `expected ${source} to hold PEM certificates, found one that does not parse: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  if (notAfter.length === 0 || notAfter.some(Number.isNaN))
    throw new ProvenantError(
      'CONFIG_INVALID',
      `expected ${source} to hold PEM certificates with a notAfter date, found ${notAfter.length === 0 ? 'no "BEGIN CERTIFICATE" block' : 'an unreadable date'}`,
    );
  return { certificate, notAfterSeconds: Math.min(...notAfter) };
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
  // Required here, not imported: node-forge, under selfsigned, is a megabyte a configured server never runs.
  const selfsigned = createRequire(import.meta.url)('selfsigned') as typeof Selfsigned;
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
  const material = {
    context: { cert: pems.cert, key: pems.private },
    expiries: [expiry('serving', pems.cert, certPath)],
  };
  return {
    options: { ...material.context, minVersion: 'TLSv1.2', ciphers: DEFAULT_CIPHERS, honorCipherOrder: true },
    expiries: material.expiries,
    description: `self-generated development certificate for localhost (trust it with --cacert ${certPath})`,
    files: [],
    reload: () => material,
    clientCertificateRequired: false,
  };
}
