/**
 * Notary Project signing and verifying with the real notation CLI (v1.3.2), each signer and verifier in
 * its own config dir (XDG_CONFIG_HOME). Keys come from `notation cert generate-test`, or from an openssl
 * CA chain (root → intermediate → leaf with the code-signing EKU) entered in signingkeys.json, the
 * plugin-free local-key flow `notation cert generate-test` itself uses.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { makeCa } from './pki.ts';
import { LOOPBACK_HOST, startProcess, type ServerProcess } from './process.ts';
import { toolPath } from './tools.ts';

const run = promisify(execFile);
const LEAF_BACKDATE_MS = 60_000;

export interface NotationSigner {
  readonly name: string;
  /** XDG_CONFIG_HOME of this signer's notation config. */
  readonly configHome: string;
  /** The certificate a verifier trusts: the self-signed test certificate, or the chain's root. */
  readonly trustedPem: string;
}

export type SignatureFormat = 'jws' | 'cose';

function notation(configHome: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return run(toolPath('notation'), [...args], { env: { ...process.env, XDG_CONFIG_HOME: configHome } });
}

/** A self-signed RSA test certificate and key from `notation cert generate-test`. */
export async function notationTestSigner(dir: string, name: string): Promise<NotationSigner> {
  const configHome = path.join(dir, `notation-${name}`);
  await notation(configHome, ['cert', 'generate-test', name]);
  const trustedPem = await readFile(path.join(configHome, 'notation', 'localkeys', `${name}.crt`), 'utf8');
  return { name, configHome, trustedPem };
}

const CA_CONFIG = `[ca]
default_ca = ca_default
[ca_default]
database = ./index.txt
new_certs_dir = ./certs
serial = ./serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
`;

/** `YYYYMMDDHHMMSSZ`, the form `openssl ca -enddate` takes. */
function asn1Time(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/**
 * An openssl CA chain root → intermediate → leaf (P-256, keyUsage digitalSignature, EKU codeSigning),
 * entered as notation key `name` (the leaf: issueLeaf).
 */
export async function notationChainSigner(
  dir: string,
  name: string,
  opts: {
    /** Default: a day from now. */
    leafNotAfter?: Date;
    /** Where the leaf says its revocation is published (AIA OCSP responder, CRL distribution point). */
    ocspUrl?: string;
    crlUrl?: string;
  } = {},
): Promise<ChainSigner> {
  const ca = path.join(dir, `ca-${name}`);
  await mkdir(path.join(ca, 'certs'), { recursive: true });
  const leafExtensions = [
    ...(opts.ocspUrl === undefined ? [] : [`authorityInfoAccess = OCSP;URI:${opts.ocspUrl}`]),
    ...(opts.crlUrl === undefined ? [] : [`crlDistributionPoints = URI:${opts.crlUrl}`]),
  ];
  await Promise.all([
    writeFile(path.join(ca, 'ca.cnf'), `${CA_CONFIG}${leafExtensions.map((l) => `${l}\n`).join('')}`),
    writeFile(path.join(ca, 'index.txt'), ''),
    writeFile(path.join(ca, 'serial'), '01\n'),
  ]);
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: ca });
  const caSign = (csr: string, issuer: string, out: string, ...extra: string[]): Promise<unknown> =>
    openssl(
      'ca',
      '-batch',
      '-config',
      'ca.cnf',
      '-notext',
      '-cert',
      `${issuer}.crt`,
      '-keyfile',
      `${issuer}.key`,
      '-in',
      csr,
      '-out',
      out,
      ...extra,
    );
  await makeCa(ca, 'root', { subject: `/CN=${name} root`, key: 'rsa2048' });
  await openssl(
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'int.key',
    '-out',
    'int.csr',
    '-subj',
    `/CN=${name} intermediate`,
  );
  await caSign('int.csr', 'root', 'int.crt', '-extensions', 'v3_ca', '-days', '2');
  await openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'leaf.key',
    '-out',
    'leaf.csr',
    '-subj',
    `/CN=${name} signer`,
  );
  const [root] = await Promise.all([readFile(path.join(ca, 'root.crt'), 'utf8')]);
  const configHome = path.join(dir, `notation-${name}`);
  await mkdir(path.join(configHome, 'notation'), { recursive: true });
  const keys = { keys: [{ name, keyPath: path.join(ca, 'leaf.key'), certPath: path.join(ca, 'chain.crt') }] };
  await writeFile(path.join(configHome, 'notation', 'signingkeys.json'), JSON.stringify(keys));
  const signer = { name, configHome, trustedPem: root, caDir: ca };
  await issueLeaf(signer, opts.leafNotAfter ?? new Date(Date.now() + 86_400_000));
  return signer;
}

/**
 * (Re-)issues the signer's leaf certificate, valid until `notAfter`, and its chain file leaf →
 * intermediate → root (what notation signs with).
 */
export async function issueLeaf(signer: ChainSigner, notAfter: Date): Promise<void> {
  // Valid from a minute ago: a timestamp's accuracy window starting just before issuance still fits.
  const notBefore = new Date(Date.now() - LEAF_BACKDATE_MS);
  await caCommand(
    signer,
    '-notext',
    '-in',
    'leaf.csr',
    '-out',
    'leaf.crt',
    '-extensions',
    'v3_leaf',
    '-startdate',
    asn1Time(notBefore),
    '-enddate',
    asn1Time(notAfter),
  );
  const [leaf, intermediate, root] = await Promise.all(
    ['leaf.crt', 'int.crt', 'root.crt'].map((f) => readFile(path.join(signer.caDir, f), 'utf8')),
  );
  await writeFile(path.join(signer.caDir, 'chain.crt'), `${leaf}${intermediate}${root}`);
}

export interface ChainSigner extends NotationSigner {
  /** The openssl CA directory: the intermediate (int.crt, int.key) issued the leaf (leaf.crt). */
  readonly caDir: string;
}

function caCommand(signer: ChainSigner, ...args: string[]): Promise<unknown> {
  return run(
    'openssl',
    ['ca', '-batch', '-config', 'ca.cnf', '-cert', 'int.crt', '-keyfile', 'int.key', ...args],
    {
      cwd: signer.caDir,
    },
  );
}

/** Marks the leaf revoked in the intermediate CA's database (what `openssl ocsp` and the CRL report). */
export async function revokeLeaf(signer: ChainSigner): Promise<void> {
  await caCommand(signer, '-revoke', 'leaf.crt', '-crl_reason', 'keyCompromise');
}

/** The real `openssl ocsp` responder for the intermediate CA, signing with the intermediate's key. */
export function startOcspResponder(signer: ChainSigner, port: number): Promise<ServerProcess> {
  return startProcess({
    name: 'openssl ocsp',
    command: 'openssl',
    args: [
      'ocsp',
      '-index',
      'index.txt',
      '-port',
      String(port),
      '-rsigner',
      'int.crt',
      '-rkey',
      'int.key',
      '-CA',
      'int.crt',
      '-nmin',
      '10',
      // The CA signs its own answers; an embedded certificate would have to be a delegated responder's.
      '-resp_no_certs',
      // Child processes, each serving one connection at a time: a kept-alive connection holds only one.
      '-multi',
      '4',
    ],
    cwd: signer.caDir,
    processGroup: true,
    ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
  });
}

/** A CRL made by `openssl ca -gencrl` (DER), served over HTTP at any path of `port`. */
export async function startCrlServer(signer: ChainSigner, port: number): Promise<{ stop(): Promise<void> }> {
  await caCommand(signer, '-gencrl', '-crldays', '1', '-out', 'crl.pem');
  await run('openssl', ['crl', '-in', 'crl.pem', '-outform', 'DER', '-out', 'crl.der'], {
    cwd: signer.caDir,
  });
  const crl = await readFile(path.join(signer.caDir, 'crl.der'));
  const server = createServer((_, res) =>
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crl),
  );
  await new Promise<void>((resolve) => server.listen(port, LOOPBACK_HOST, resolve));
  return { stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * `notation sign` of a digest reference on a plain-HTTP loopback registry. Notation stores signatures
 * under the referrers tag unless told to use the referrers API (`--force-referrers-tag=false`).
 */
export async function notationSign(
  signer: NotationSigner,
  reference: string,
  opts: {
    format?: SignatureFormat;
    referrersApi?: boolean;
    /** An RFC 3161 TSA to countersign with, and the file of its root certificate. */
    timestamp?: { url: string; rootFile: string };
  } = {},
): Promise<void> {
  const timestamp =
    opts.timestamp === undefined
      ? []
      : ['--timestamp-url', opts.timestamp.url, '--timestamp-root-cert', opts.timestamp.rootFile];
  await notation(signer.configHome, [
    'sign',
    '--insecure-registry',
    '--key',
    signer.name,
    '--signature-format',
    opts.format ?? 'jws',
    `--force-referrers-tag=${opts.referrersApi === true ? 'false' : 'true'}`,
    ...timestamp,
    reference,
  ]);
}

export interface NotationVerifyPolicy {
  /** PEM certificates of the one `ca` trust store the policy names. */
  readonly trusted: readonly string[];
  readonly level: 'strict' | 'permissive' | 'audit' | 'skip';
  /** PEM certificates of a `tsa` trust store; with them, the policy's verifyTimestamp applies. */
  readonly tsa?: readonly string[];
  readonly verifyTimestamp?: 'always' | 'afterCertExpiry';
}

/**
 * The real `notation verify` in a fresh config dir holding a trust store and a trustpolicy.json
 * equivalent to a Provenant rule (Connaisseur's: scope `*`, identities `*`). True when it verifies.
 */
export function notationVerifies(
  dir: string,
  reference: string,
  policy: NotationVerifyPolicy,
): Promise<boolean> {
  const withTsa = (policy.tsa ?? []).length > 0;
  const trustPolicy = {
    version: '1.0',
    trustPolicies: [
      {
        name: 'provenant-equivalent',
        registryScopes: ['*'],
        signatureVerification: {
          level: policy.level,
          ...(withTsa ? { verifyTimestamp: policy.verifyTimestamp ?? 'always' } : {}),
        },
        trustStores: withTsa ? ['ca:roots', 'tsa:tsa'] : ['ca:roots'],
        trustedIdentities: ['*'],
      },
    ],
  };
  return notationVerifiesWithPolicy(dir, reference, trustPolicy, {
    'ca:roots': policy.trusted,
    ...(withTsa ? { 'tsa:tsa': policy.tsa ?? [] } : {}),
  });
}

/** `notation verify` with a given trustpolicy.json and trust stores (`type:name` → PEM certificates). */
export async function notationVerifiesWithPolicy(
  dir: string,
  reference: string,
  trustPolicy: unknown,
  stores: Readonly<Record<string, readonly string[]>>,
): Promise<boolean> {
  const configHome = path.join(dir, `verify-${Math.random().toString(36).slice(2)}`);
  await mkdir(path.join(configHome, 'notation'), { recursive: true });
  for (const [store, pems] of Object.entries(stores)) {
    const [type = '', name = ''] = store.split(':');
    const storeDir = path.join(configHome, 'notation', 'truststore', 'x509', type, name);
    await mkdir(storeDir, { recursive: true });
    await Promise.all(pems.map((pem, i) => writeFile(path.join(storeDir, `cert-${i}.crt`), pem)));
  }
  await writeFile(path.join(configHome, 'notation', 'trustpolicy.json'), JSON.stringify(trustPolicy));
  try {
    await notation(configHome, ['verify', '--insecure-registry', reference]);
    return true;
  } catch {
    return false;
  }
}
