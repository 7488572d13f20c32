/**
 * The real cosign CLI (v3) for tests: key pairs, and signatures made offline (no Fulcio, no Rekor:
 * `--tlog-upload=false --use-signing-config=false`) on images in loopback registries
 * (`--allow-insecure-registry` for plain HTTP). v3 writes Sigstore bundles as OCI referrers by default;
 * `--new-bundle-format=false` writes the legacy `sha256-<hex>.sig` tag.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { toolPath } from './tools.ts';

const execFileAsync = promisify(execFile);

/** cosign encrypts private keys; tests use one throwaway password. */
const COSIGN_PASSWORD = 'provenant-test';
const env = (): NodeJS.ProcessEnv => ({ ...process.env, COSIGN_PASSWORD });
const OFFLINE = ['--tlog-upload=false', '--use-signing-config=false', '--allow-insecure-registry', '-y'];

export interface CosignKey {
  /** Path of cosign's encrypted private key file. */
  readonly keyPath: string;
  /** PEM public key, as a trust root's `key`. */
  readonly publicKey: string;
}

export type KeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'rsa' | 'ed25519';

async function cosign(args: readonly string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(toolPath('cosign'), args, { env: env(), cwd, timeout: 60_000 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`cosign ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: error });
  }
}

/** `cosign generate-key-pair` (ECDSA P-256) for the default; other kinds via `cosign import-key-pair`. */
export async function cosignKeyPair(
  dir: string,
  name: string,
  kind: KeyKind = 'ecdsa-p256',
): Promise<CosignKey> {
  const prefix = path.join(dir, name);
  if (kind === 'ecdsa-p256') {
    await cosign(['generate-key-pair', '--output-key-prefix', prefix], dir);
  } else {
    const pem = path.join(dir, `${name}.pkcs8.pem`);
    await writeFile(pem, privateKeyPem(kind), { mode: 0o600 });
    await cosign(['import-key-pair', '--key', pem, '--output-key-prefix', prefix, '-y'], dir);
  }
  return { keyPath: `${prefix}.key`, publicKey: await readFile(`${prefix}.pub`, 'utf8') };
}

function privateKeyPem(kind: Exclude<KeyKind, 'ecdsa-p256'>): string {
  const key =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
      : kind === 'ed25519'
        ? generateKeyPairSync('ed25519').privateKey
        : generateKeyPairSync('ec', { namedCurve: kind === 'ecdsa-p384' ? 'P-384' : 'P-521' }).privateKey;
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export type SignatureFormat = 'legacy' | 'bundle';

/** `cosign sign --key` on `image` (`host/repo@sha256:…`), offline. */
export async function cosignSign(
  image: string,
  key: CosignKey,
  format: SignatureFormat = 'legacy',
): Promise<void> {
  const formatFlags = format === 'legacy' ? ['--new-bundle-format=false'] : [];
  await cosign(['sign', '--key', key.keyPath, ...formatFlags, ...OFFLINE, image]);
}

/**
 * A validly signed payload for `payloadImage` attached as a signature of `target`: `cosign generate`
 * writes the simple-signing payload, `cosign sign-blob` signs it, `cosign attach signature` stores it in
 * the target's `.sig` tag.
 */
export async function cosignAttachForeignPayload(
  dir: string,
  payloadImage: string,
  target: string,
  key: CosignKey,
): Promise<void> {
  const payload = path.join(dir, 'foreign-payload.json');
  const signature = path.join(dir, 'foreign-payload.sig');
  await writeFile(payload, await cosign(['generate', payloadImage]));
  await cosign([
    'sign-blob',
    '--key',
    key.keyPath,
    '--new-bundle-format=false',
    '--output-signature',
    signature,
    ...OFFLINE.filter((f) => f !== '--allow-insecure-registry'),
    payload,
  ]);
  await cosign([
    'attach',
    'signature',
    '--payload',
    payload,
    '--signature',
    signature,
    '--allow-insecure-registry',
    target,
  ]);
}

/** `cosign attest --key` with a predicate file of `type` (e.g. `slsaprovenance`, or a URI), offline. */
export async function cosignAttest(
  image: string,
  key: CosignKey,
  predicatePath: string,
  type: string,
  format: SignatureFormat = 'legacy',
): Promise<void> {
  const formatFlags = format === 'legacy' ? ['--new-bundle-format=false'] : [];
  await cosign([
    'attest',
    '--key',
    key.keyPath,
    '--type',
    type,
    '--predicate',
    predicatePath,
    ...formatFlags,
    ...OFFLINE,
    image,
  ]);
}
