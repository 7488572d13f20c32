/**
 * One signature against one trust root, in cosign's order (`pkg/cosign/verify.go`):
 * 1. the signature over the payload (legacy) or the DSSE PAE (bundle) under the root's key, or under a
 *    certificate that chains to the trusted Fulcio CAs at a verified time (keyless);
 * 2. for keyless: the certificate's identity (SAN) and OIDC issuer against the root's `keyless` block;
 * 3. the signed payload names the admitted digest;
 * 4. with `verifyInTransparencyLog`: a Rekor entry whose SET (or inclusion proof) verifies offline
 *    against the trusted root's log keys and whose body matches this signature.
 * The result is a verdict, never an exception: one bad signature must not hide a good one.
 */
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { dsse } from '@sigstore/core';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import {
  toSignedEntity,
  Verifier,
  type SignedEntity,
  type Signer,
  type TrustMaterial,
} from '@sigstore/verify';
import type { CosignPublicKey, IdentityPattern } from '../../trust/cosign/index.ts';
import { trustMaterial } from '../../trust/sigstore/trusted-root.ts';
import { legacyToBundle } from './legacy-bundle.ts';
import {
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  parseSimpleSigning,
  parseStatement,
  type SignedClaim,
} from './payload.ts';
import type { BundleSignature, CosignSignature, LegacySignature } from './signatures.ts';

export interface KeylessIdentity {
  readonly issuer?: string | undefined;
  readonly issuerRegex?: IdentityPattern | undefined;
  readonly subject?: string | undefined;
  readonly subjectRegex?: IdentityPattern | undefined;
}

export type RootMaterial =
  | { readonly name: string; readonly kind: 'key'; readonly key: CosignPublicKey }
  | { readonly name: string; readonly kind: 'keyless'; readonly identity: KeylessIdentity };

export interface CheckOptions {
  readonly digest: string;
  readonly verifyTlog: boolean;
  readonly verifySct: boolean;
  /** Fulcio CAs, Rekor / CT log keys and TSAs; only consulted for keyless roots or the tlog check. */
  readonly trustedRoot: () => TrustedRoot;
}

/** Why a signature did not count for a root, from "nothing to do with it" to "almost valid". */
export type Failure =
  'malformed' | 'signature' | 'certificate' | 'identity' | 'digest' | 'tlog-missing' | 'tlog-invalid';

export type Check =
  | {
      readonly ok: true;
      /** For attestations: the verified statement's predicate. */ readonly predicate?: unknown;
    }
  | {
      readonly ok: false;
      readonly failure: Failure;
      readonly detail: string;
      /** For digest failures: what the signature was made for. */
      readonly claim?: SignedClaim | undefined;
    };

/** How close each failure came to being valid: the most advanced one explains a rejection best. */
export const FAILURE_RANK: Readonly<Record<Failure, number>> = {
  malformed: 0,
  signature: 1,
  certificate: 2,
  identity: 3,
  digest: 4,
  'tlog-missing': 5,
  'tlog-invalid': 5,
};

export function checkSignature(sig: CosignSignature, root: RootMaterial, opts: CheckOptions): Check {
  try {
    return sig.kind === 'legacy' ? checkLegacy(sig, root, opts) : checkBundle(sig, root, opts);
  } catch (err) {
    return fail('malformed', `unusable signature data: ${(err as Error).message}`);
  }
}

function checkLegacy(sig: LegacySignature, root: RootMaterial, opts: CheckOptions): Check {
  const signature = Buffer.from(sig.signature, 'base64');
  if (root.kind === 'key') {
    if (!root.key.verify(sig.payload, signature))
      return fail('signature', `the signature does not verify under the key of trust root "${root.name}"`);
  } else {
    if (sig.certificate === undefined)
      return fail('certificate', 'the signature carries no certificate (keyless trust roots need one)');
    const keyless = verifyKeyless(legacyToBundle(sig, undefined), sig.payload, root, opts);
    if (!keyless.ok) return keyless;
  }
  const claim = parseSimpleSigning(sig.payload);
  if (claim === undefined)
    return fail(
      'malformed',
      'the payload is not a cosign simple-signing payload ("cosign container image signature")',
    );
  const digestCheck = checkDigest(claim, opts.digest);
  if (!digestCheck.ok) return digestCheck;
  if (root.kind === 'key' && opts.verifyTlog) {
    if (sig.rekorBundle === undefined)
      return fail(
        'tlog-missing',
        'the signature has no Rekor bundle (dev.sigstore.cosign/bundle) to prove it was logged',
      );
    return verifyKeyTlog(legacyToBundle(sig, root.name), sig.payload, root, opts);
  }
  return { ok: true };
}

/** A bundle carrying an in-toto statement of `predicateType` (cosign's signature predicate by default). */
export function checkBundle(
  sig: BundleSignature,
  root: RootMaterial,
  opts: CheckOptions,
  predicateType: string = COSIGN_SIGN_PREDICATE,
): Check {
  const bundle = bundleFromJSON(JSON.parse(sig.bytes.toString('utf8')));
  if (bundle.content.$case !== 'dsseEnvelope')
    return fail(
      'malformed',
      'the bundle holds a message signature, expected a DSSE envelope over an in-toto statement',
    );
  const envelope = bundle.content.dsseEnvelope;
  const material = bundle.verificationMaterial.content.$case;
  if (root.kind === 'key') {
    if (material !== 'publicKey')
      return fail('signature', `the bundle is signed with a certificate, trust root "${root.name}" is a key`);
    // The bundle spec allows exactly one DSSE signature; a second could smuggle in a copied one.
    const [only, ...more] = envelope.signatures;
    if (only === undefined || more.length > 0)
      return fail(
        'malformed',
        `the DSSE envelope holds ${envelope.signatures.length} signatures, expected one`,
      );
    const pae = dsse.preAuthEncoding(envelope.payloadType, envelope.payload);
    if (!root.key.verify(pae, only.sig))
      return fail(
        'signature',
        `the DSSE signature does not verify under the key of trust root "${root.name}"`,
      );
  } else {
    if (material === 'publicKey')
      return fail('certificate', 'the bundle is signed with a key, keyless trust roots need a certificate');
    const keyless = verifyKeyless(bundle, undefined, root, opts);
    if (!keyless.ok) return keyless;
  }
  const claim = inTotoClaim(envelope, predicateType);
  if (claim === undefined)
    return fail(
      'malformed',
      `the bundle's payload is not an in-toto statement with predicate ${predicateType}`,
    );
  const digestCheck = checkDigest(claim, opts.digest);
  if (!digestCheck.ok) return digestCheck;
  if (root.kind === 'key' && opts.verifyTlog) {
    if (bundle.verificationMaterial.tlogEntries.length === 0)
      return fail('tlog-missing', 'the bundle has no transparency log entry');
    const logged = verifyKeyTlog(bundle, undefined, root, opts);
    return logged.ok ? { ok: true, predicate: claim.predicate } : logged;
  }
  return { ok: true, predicate: claim.predicate };
}

/**
 * A keyless Sigstore bundle over an artifact: a message signature over `artifact.bytes`, or a DSSE
 * in-toto statement whose subject names `artifact.digest` (with `predicateType` when given). This is
 * how blobs and attestations are verified; image signatures go through checkSignature.
 */
export function checkArtifactBundle(
  bundle: Bundle,
  artifact: { readonly bytes?: Buffer | undefined; readonly digest: string },
  root: Extract<RootMaterial, { kind: 'keyless' }>,
  opts: Omit<CheckOptions, 'digest'>,
  predicateType?: string,
): Check {
  const options = { ...opts, digest: artifact.digest };
  if (bundle.content.$case === 'messageSignature') {
    if (artifact.bytes === undefined)
      return fail('malformed', 'a message signature needs the artifact itself');
    return verifyKeyless(bundle, artifact.bytes, root, options);
  }
  const keyless = verifyKeyless(bundle, undefined, root, options);
  if (!keyless.ok) return keyless;
  const envelope = bundle.content.dsseEnvelope;
  const claim = inTotoClaim(envelope, predicateType);
  if (claim === undefined)
    return fail(
      'malformed',
      `the DSSE payload is not an in-toto statement${predicateType === undefined ? '' : ` with predicate ${predicateType}`}`,
    );
  return checkDigest(claim, artifact.digest);
}

function checkDigest(claim: SignedClaim, digest: string): Check {
  if (claim.digests.includes(digest)) return { ok: true };
  const found = claim.digests.length === 0 ? 'no digest' : claim.digests.join(', ');
  return { ok: false, failure: 'digest', detail: `the signed payload is for ${found}`, claim };
}

/** Chain, SCT, log entries and signature with @sigstore/verify; then the identity against the root. */
function verifyKeyless(
  bundle: Bundle,
  artifact: Buffer | undefined,
  root: Extract<RootMaterial, { kind: 'keyless' }>,
  opts: CheckOptions,
): Check {
  const verifier = new Verifier(trustMaterial(opts.trustedRoot()), {
    tlogThreshold: opts.verifyTlog ? 1 : 0,
    ctlogThreshold: opts.verifySct ? 1 : 0,
    // A short-lived certificate is only meaningful at a verified time (log entry or TSA), never "now".
    timestampThreshold: 1,
  });
  let signer: Signer;
  try {
    signer = verifier.verify(toSignedEntity(bundle, artifact));
  } catch (err) {
    return sigstoreFailure(err);
  }
  return checkIdentity(signer, root);
}

function verifyKeyTlog(
  bundle: Bundle,
  artifact: Buffer | undefined,
  root: Extract<RootMaterial, { kind: 'key' }>,
  opts: CheckOptions,
): Check {
  // Whatever hint the bundle carries, the only acceptable key is this root's.
  const material: TrustMaterial = trustMaterial(opts.trustedRoot(), () => ({
    publicKey: root.key.key,
    validFor: () => true,
  }));
  const verifier = new Verifier(material, { tlogThreshold: 1, ctlogThreshold: 0, timestampThreshold: 0 });
  const entity = toSignedEntity(bundle, artifact);
  try {
    verifier.verify({ ...entity, signature: alreadyVerified(entity.signature) });
    return { ok: true };
  } catch (err) {
    return { ...sigstoreFailure(err), failure: 'tlog-invalid' };
  }
}

/**
 * The signature was verified before the log is looked at, with the hash and padding the key calls for
 * (SHA-384 for P-384, PSS, Ed25519ph); sigstore-js verifies with the key type's default only. What is
 * left to it here is the log entry: its SET or inclusion proof, and that its body matches this signature.
 */
function alreadyVerified(content: SignedEntity['signature']): SignedEntity['signature'] {
  return {
    signature: content.signature,
    compareSignature: (signature) => content.compareSignature(signature),
    compareDigest: (digest) => content.compareDigest(digest),
    verifySignature: () => true,
  };
}

function checkIdentity(signer: Signer, root: Extract<RootMaterial, { kind: 'keyless' }>): Check {
  const { subject, subjectRegex, issuer, issuerRegex } = root.identity;
  const san = signer.identity?.subjectAlternativeName;
  const iss = signer.identity?.extensions?.issuer;
  const subjectOk =
    san !== undefined && (subject !== undefined ? san === subject : subjectRegex?.test(san) === true);
  const issuerOk =
    iss !== undefined && (issuer !== undefined ? iss === issuer : issuerRegex?.test(iss) === true);
  if (subjectOk && issuerOk) return { ok: true };
  const expected = `subject ${subject ?? `~/${subjectRegex?.source ?? ''}/`} and issuer ${issuer ?? `~/${issuerRegex?.source ?? ''}/`}`;
  return fail(
    'identity',
    `the certificate of trust root "${root.name}"'s signer is for subject ${san ?? 'none'} from issuer ${iss ?? 'none'}, expected ${expected}`,
  );
}

function sigstoreFailure(err: unknown): Extract<Check, { ok: false }> {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'SIGNATURE_ERROR':
      return fail('signature', `the signature does not verify: ${message}`);
    case 'CERTIFICATE_ERROR':
    case 'PUBLIC_KEY_ERROR':
    case 'TIMESTAMP_ERROR':
      return fail('certificate', `the certificate is not trusted: ${message}`);
    case 'TLOG_ERROR':
      return fail('tlog-missing', `no verified transparency log entry: ${message}`);
    case 'TLOG_BODY_ERROR':
    case 'TLOG_INCLUSION_PROOF_ERROR':
    case 'TLOG_INCLUSION_PROMISE_ERROR':
    case 'TLOG_MISSING_INCLUSION_ERROR':
      return fail('tlog-invalid', `the transparency log entry does not verify: ${message}`);
    default:
      return fail('malformed', `the signature could not be verified: ${message}`);
  }
}

function fail(failure: Failure, detail: string): Extract<Check, { ok: false }> {
  return { ok: false, failure, detail };
}

/** The in-toto statement a DSSE envelope carries (with `predicateType` when given), if it is one. */
function inTotoClaim(
  envelope: { readonly payloadType: string; readonly payload: Buffer },
  predicateType: string | undefined,
): ReturnType<typeof parseStatement> {
  return envelope.payloadType === IN_TOTO_PAYLOAD_TYPE
    ? parseStatement(envelope.payload, predicateType)
    : undefined;
}
