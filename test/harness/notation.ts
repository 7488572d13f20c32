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
import { toolPath } from './tools.ts';

const run = promisify(execFile);

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
 * the leaf valid until `leafNotAfter` (default: a day), entered as notation key `name`.
 */
export async function notationChainSigner(
  dir: string,
  name: string,
  opts: { leafNotAfter?: Date } = {},
): Promise<NotationSigner & { readonly leafNotAfter: Date }> {
  const ca = path.join(dir, `ca-${name}`);
  await mkdir(path.join(ca, 'certs'), { recursive: true });
  await Promise.all([
    writeFile(path.join(ca, 'ca.cnf'), CA_CONFIG),
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
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'root.key',
    '-out',
    'root.crt',
    '-subj',
    `/CN=${name} root`,
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
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
  const leafNotAfter = opts.leafNotAfter ?? new Date(Date.now() + 86_400_000);
  await caSign('leaf.csr', 'int', 'leaf.crt', '-extensions', 'v3_leaf', '-enddate', asn1Time(leafNotAfter));
  const [leaf, intermediate, root] = await Promise.all(
    ['leaf.crt', 'int.crt', 'root.crt'].map((f) => readFile(path.join(ca, f), 'utf8')),
  );
  await writeFile(path.join(ca, 'chain.crt'), `${leaf}${intermediate}${root}`);
  const configHome = path.join(dir, `notation-${name}`);
  await mkdir(path.join(configHome, 'notation'), { recursive: true });
  const keys = { keys: [{ name, keyPath: path.join(ca, 'leaf.key'), certPath: path.join(ca, 'chain.crt') }] };
  await writeFile(path.join(configHome, 'notation', 'signingkeys.json'), JSON.stringify(keys));
  return { name, configHome, trustedPem: root as string, leafNotAfter };
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
export async function notationVerifies(
  dir: string,
  reference: string,
  policy: NotationVerifyPolicy,
): Promise<boolean> {
  const configHome = path.join(dir, `verify-${Math.random().toString(36).slice(2)}`);
  const store = path.join(configHome, 'notation', 'truststore', 'x509', 'ca', 'roots');
  await mkdir(store, { recursive: true });
  await Promise.all(policy.trusted.map((pem, i) => writeFile(path.join(store, `root-${i}.crt`), pem)));
  const tsaStore = path.join(configHome, 'notation', 'truststore', 'x509', 'tsa', 'tsa');
  await mkdir(tsaStore, { recursive: true });
  await Promise.all((policy.tsa ?? []).map((pem, i) => writeFile(path.join(tsaStore, `tsa-${i}.crt`), pem)));
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
  await writeFile(path.join(configHome, 'notation', 'trustpolicy.json'), JSON.stringify(trustPolicy));
  try {
    await notation(configHome, ['verify', '--insecure-registry', reference]);
    return true;
  } catch {
    return false;
  }
}
