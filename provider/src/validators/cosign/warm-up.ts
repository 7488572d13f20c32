/**
 * A fresh process's first cosign verification pays for code that runs for the first time: OpenSSL's
 * elliptic-curve setup, key import, and V8 compiling the check path. `provenant serve` runs this before
 * it listens (Verifier.warmUp): a signature made here in memory, with a throwaway key, over cosign's
 * own payload goes through the same check a legacy cosign signature from a registry does — offline,
 * trusting nothing (its key is no trust root's and the result is discarded).
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import { parsePublicKey } from '../../trust/cosign/index.ts';
import { simpleSigningPayload } from './signatures.ts';
import { checkSignature, type RootMaterial } from './verify.ts';

const WARM_UP_REFERENCE = 'registry.invalid/warm-up/image';
const WARM_UP_DIGEST = `sha256:${'0'.repeat(64)}`;

/** Runs one legacy signature check end to end; throws if a valid signature did not verify (a broken check path). */
export function warmUpLegacyCheck(trustedRoot: () => TrustedRoot): void {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const payload = Buffer.from(simpleSigningPayload(WARM_UP_REFERENCE, WARM_UP_DIGEST));
  const root: RootMaterial = {
    name: 'warm-up',
    kind: 'key',
    key: parsePublicKey(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
  const check = checkSignature(
    {
      kind: 'legacy',
      source: 'warm-up',
      payload,
      signature: sign('sha256', payload, privateKey).toString('base64'),
      certificate: undefined,
      chain: undefined,
      rekorBundle: undefined,
    },
    root,
    { digest: WARM_UP_DIGEST, verifyTlog: false, verifySct: false, trustedRoot },
  );
  if (!check.ok) throw new Error(`the cosign warm-up signature did not verify: ${check.detail}`);
}
