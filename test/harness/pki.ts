/**
 * Test certificates made by the real openssl CLI: a CA, and leaf certificates it signs for servers
 * (serverAuth, SANs for 127.0.0.1 and localhost) or clients (clientAuth).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  readonly certPem: string;
  readonly keyPem: string;
}

async function files(dir: string, name: string): Promise<CertFiles> {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  return { cert, key, certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
}

/** The key a self-signed certificate gets: P-256 (the default), or RSA 2048 where a chain mixes both. */
export type KeyKind = 'p256' | 'rsa2048';

const NEW_KEY: Record<KeyKind, readonly string[]> = {
  p256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
  rsa2048: ['-newkey', 'rsa:2048'],
};

/** A CA certificate `<dir>/<name>.crt` (key `<name>.key`), valid two days. */
export function makeCa(
  dir: string,
  name: string,
  opts: { subject?: string; key?: KeyKind } = {},
): Promise<CertFiles> {
  return selfSignedCert(dir, name, {
    ...opts,
    days: 2,
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  });
}

/** A self-signed certificate `<dir>/<name>.crt` (key `<name>.key`), CN = name unless `subject` says. */
export async function selfSignedCert(
  dir: string,
  name: string,
  opts: { days: number; extensions?: readonly string[]; subject?: string; key?: KeyKind },
): Promise<CertFiles> {
  await run('openssl', [
    'req',
    '-x509',
    ...NEW_KEY[opts.key ?? 'p256'],
    '-nodes',
    '-days',
    String(opts.days),
    '-subj',
    opts.subject ?? `/CN=${name}`,
    '-keyout',
    path.join(dir, `${name}.key`),
    '-out',
    path.join(dir, `${name}.crt`),
    ...(opts.extensions ?? []).flatMap((e) => ['-addext', e]),
  ]);
  return files(dir, name);
}

export async function issueCert(
  dir: string,
  ca: CertFiles,
  name: string,
  usage: 'server' | 'client' | 'server-and-client',
): Promise<CertFiles> {
  // server-and-client: Gatekeeper presents its webhook serving certificate to providers as a client.
  const extensions = {
    server: 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    client: 'extendedKeyUsage=clientAuth\n',
    'server-and-client':
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  };
  return issueCertWith(dir, ca, name, { subject: `/CN=${name}`, extensions: extensions[usage], days: 2 });
}

/** A P-256 certificate signed by `ca` with the given subject and openssl extension lines. */
export async function issueCertWith(
  dir: string,
  ca: CertFiles,
  name: string,
  opts: { subject: string; extensions: string; days: number },
): Promise<CertFiles> {
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(ext, opts.extensions);
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    opts.subject,
    '-keyout',
    key,
    '-out',
    csr,
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    String(opts.days),
    '-extfile',
    ext,
    '-out',
    path.join(dir, `${name}.crt`),
  ]);
  return files(dir, name);
}
