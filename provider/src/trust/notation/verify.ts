/**
 * One Notary Project signature against a trust policy, as `notation verify` checks it
 * (notaryproject/specifications `trust-store-trust-policy.md` "Signature Verification"): one step per
 * validation of the specification, in its order — integrity, authenticity, authentic timestamp, expiry,
 * revocation — each enforced, logged or skipped as the verification level says; plus the payload's
 * target artifact, which must be the image (notation-go compares it after the checks, at every level).
 */
import type { X509Certificate } from 'node:crypto';
import type { ErrorCode } from '../../types/errors.ts';
import { checkCodeSigningChain, invalidAt, InvalidChain, revocationSources, trustedMatch } from './chain.ts';
import { MalformedEnvelope, verifyEnvelope, type VerifiedEnvelope } from './envelope.ts';
import { checkRevocation, type RevocationFetch } from './revocation.ts';
import { InvalidTimestamp, verifyTimestamp, type VerifiedTimestamp } from './timestamp.ts';
import type { Action, Validation } from './levels.ts';

export { LEVEL_ACTIONS, type Action, type Validation, type VerificationLevel } from './levels.ts';

export interface TrustedCertificate {
  /** The trust root's name. */
  readonly name: string;
  readonly cert: X509Certificate;
  /** The trust store type: `ca` vouches for notary.x509, `signingAuthority` for its own scheme. */
  readonly type: 'ca' | 'signingAuthority';
}

export interface PolicyOptions {
  /** The image's descriptor: the payload's targetArtifact must equal it. */
  readonly target: { readonly mediaType: string; readonly digest: string; readonly size: number };
  /** The trust store: certificates of `ca` type (Connaisseur's `trustRoots[].cert`). */
  readonly trusted: readonly TrustedCertificate[];
  readonly actions: Readonly<Record<Validation, Action>>;
  readonly now: Date;
  /** Trusted TSA certificates (`tsCert` of the selected roots); none: timestamps are not used. */
  readonly tsaRoots: readonly X509Certificate[];
  /** Connaisseur's `with.verifyTimestamp`: check the timestamp always, or only once the chain expired. */
  readonly verifyTimestamp: 'always' | 'afterCertExpiry';
  /** A trust policy's trustedIdentities: whether the signing certificate is one of them (default: any). */
  readonly identityTrusted?: ((leaf: X509Certificate) => boolean) | undefined;
  /** Fetches OCSP answers and CRLs (egress policy and time budget applied by the caller). */
  readonly fetchRevocation: RevocationFetch;
}

export interface Failure {
  readonly validation: Validation | 'target';
  readonly code: ErrorCode;
  readonly detail: string;
}

export type SignatureOutcome =
  | {
      readonly ok: true;
      /** The trust roots the chain leads to (empty when authenticity failed and was only logged). */
      readonly roots: readonly string[];
      /** Failures of logged validations: the signature passed only because they are not enforced. */
      readonly logged: readonly Failure[];
    }
  | { readonly ok: false; readonly failure: Failure };

/** Signals an enforced failure out of the step functions below. */
class Rejected extends Error {
  constructor(readonly failure: Failure) {
    super(failure.detail);
  }
}

export async function verifySignature(
  mediaType: string,
  envelopeBytes: Buffer,
  opts: PolicyOptions,
): Promise<SignatureOutcome> {
  const logged: Failure[] = [];
  const step = async (
    validation: Validation,
    check: () => Omit<Failure, 'validation'> | undefined | Promise<Omit<Failure, 'validation'> | undefined>,
  ): Promise<void> => {
    const action = opts.actions[validation];
    if (action === 'skip') return;
    const found = await check();
    if (found === undefined) return;
    const failure = { validation, ...found };
    if (action === 'enforce') throw new Rejected(failure);
    logged.push(failure);
  };
  try {
    const envelope = await integrity(mediaType, envelopeBytes);
    let roots: string[] = [];
    await step('authenticity', () => {
      roots = authenticRoots(envelope, opts.trusted);
      if (roots.length === 0) return untrusted(envelope, opts.trusted);
      const leaf = envelope.chain[0] as X509Certificate;
      if (opts.identityTrusted === undefined || opts.identityTrusted(leaf)) return undefined;
      roots = [];
      return {
        code: 'NOTATION_IDENTITY_UNTRUSTED',
        detail: `expected a signing certificate of the trust policy's trustedIdentities, found subject "${leaf.subject.replaceAll('\n', ', ')}"`,
      };
    });
    await step('authenticTimestamp', () => authenticTimestamp(envelope, opts));
    await step('expiry', () => expiry(envelope, opts.now));
    await step('revocation', () => revocation(envelope, roots, opts));
    target(envelope, opts.target);
    return { ok: true, roots, logged };
  } catch (err) {
    if (err instanceof Rejected) return { ok: false, failure: err.failure };
    throw err;
  }
}

/** Integrity: a well-formed envelope whose signature verifies under a chain the specification allows. */
async function integrity(mediaType: string, bytes: Buffer): Promise<VerifiedEnvelope> {
  let envelope: VerifiedEnvelope;
  try {
    envelope = await verifyEnvelope(mediaType, bytes);
  } catch (err) {
    const code =
      err instanceof MalformedEnvelope ? 'NOTATION_ENVELOPE_MALFORMED' : 'NOTATION_SIGNATURE_INVALID';
    throw new Rejected({ validation: 'integrity', code, detail: (err as Error).message });
  }
  try {
    checkCodeSigningChain(envelope.chain);
  } catch (err) {
    if (!(err instanceof InvalidChain)) throw err;
    throw new Rejected({
      validation: 'integrity',
      code: 'NOTATION_CERTIFICATE_INVALID',
      detail: err.message,
    });
  }
  return envelope;
}

/**
 * Authenticity: a certificate of the chain is in the trust store. Connaisseur's roots are a `ca` store,
 * which vouches for `notary.x509` signatures only (a signing authority needs a `signingAuthority` store).
 */
function authenticRoots(envelope: VerifiedEnvelope, trusted: readonly TrustedCertificate[]): string[] {
  const type = envelope.signingScheme === 'notary.x509' ? 'ca' : 'signingAuthority';
  const names = trusted
    .filter((t) => t.type === type && trustedMatch(envelope.chain, [t.cert]) !== undefined)
    .map((t) => t.name);
  return [...new Set(names)];
}

function untrusted(
  envelope: VerifiedEnvelope,
  trusted: readonly TrustedCertificate[],
): Omit<Failure, 'validation'> {
  const names = trusted.map((t) => t.name).join(', ');
  return {
    code: 'NOTATION_CERTIFICATE_UNTRUSTED',
    detail: trusted.some(
      (t) => t.type === (envelope.signingScheme === 'notary.x509' ? 'ca' : 'signingAuthority'),
    )
      ? `expected the certificate chain to include a certificate of trust root(s) ${names}, found a chain of ${envelope.chain.map((c) => `"${c.subject.replaceAll('\n', ', ')}"`).join(' → ')}`
      : `expected a trust store of the type signing scheme ${envelope.signingScheme} needs (${names} are not), found none`,
  };
}

/**
 * Authentic timestamp (trust-store-trust-policy.md "Authentic timestamp"): for `notary.x509`, a
 * timestamp by a trusted TSA, and the chain valid at its time; without one (or without trusted TSA
 * certificates), the chain valid now. `afterCertExpiry` looks at the timestamp only once the chain has
 * expired. For `notary.x509.signingAuthority`, the chain valid at the authentic signing time.
 */
async function authenticTimestamp(
  envelope: VerifiedEnvelope,
  opts: PolicyOptions,
): Promise<Omit<Failure, 'validation'> | undefined> {
  if (envelope.signingScheme !== 'notary.x509')
    return validAt(envelope, envelope.signingTime, envelope.signingTime);
  const token = envelope.timestampToken;
  const validNow = invalidAt(envelope.chain, opts.now) === undefined;
  const useTimestamp =
    token !== undefined && opts.tsaRoots.length > 0 && (opts.verifyTimestamp === 'always' || !validNow);
  if (!useTimestamp) return validAt(envelope, opts.now, opts.now);
  let stamp: VerifiedTimestamp;
  try {
    stamp = await verifyTimestamp(token, envelope.signature, opts.tsaRoots);
  } catch (err) {
    if (!(err instanceof InvalidTimestamp)) throw err;
    return {
      code: 'NOTATION_TIMESTAMP_INVALID',
      detail: `expected a timestamp by a trusted TSA (tsCert), found that ${err.message}`,
    };
  }
  return validAt(envelope, stamp.earliest, stamp.latest);
}

/** The whole chain valid from `from` to `to` (a timestamp's accuracy window, or one instant). */
function validAt(envelope: VerifiedEnvelope, from: Date, to: Date): Omit<Failure, 'validation'> | undefined {
  const invalid = invalidAt(envelope.chain, from) ?? invalidAt(envelope.chain, to);
  if (invalid === undefined) return undefined;
  const when =
    from.getTime() === to.getTime()
      ? from.toISOString()
      : `${from.toISOString()}–${to.toISOString()} (timestamp)`;
  return {
    code: 'NOTATION_CERTIFICATE_EXPIRED',
    detail: `expected every certificate of the chain to be valid at ${when}${envelope.timestampToken === undefined ? ' (the signature has no timestamp)' : ''}, found "${invalid.subject.replaceAll('\n', ', ')}" valid from ${invalid.validFrom} to ${invalid.validTo}`,
  };
}

function expiry(envelope: VerifiedEnvelope, now: Date): Omit<Failure, 'validation'> | undefined {
  if (envelope.expiry === undefined || envelope.expiry >= now) return undefined;
  return {
    code: 'NOTATION_EXPIRED',
    detail: `expected the signature to be unexpired at ${now.toISOString()}, found expiry ${envelope.expiry.toISOString()}`,
  };
}

/**
 * Revocation: OCSP, then CRLs, of each certificate of the chain but the root (revocation.ts). Only a
 * chain that leads to a trust root is looked up: an untrusted chain's URLs are its signer's to choose.
 */
async function revocation(
  envelope: VerifiedEnvelope,
  roots: readonly string[],
  opts: PolicyOptions,
): Promise<Omit<Failure, 'validation'> | undefined> {
  if (roots.length === 0) {
    const named = envelope.chain.slice(0, -1).find((c) => revocationSources(c));
    return named === undefined
      ? undefined
      : {
          code: 'NOTATION_REVOCATION_UNKNOWN',
          detail: `expected the revocation status of "${named.subject.replaceAll('\n', ', ')}", found that an untrusted chain's responders are not contacted`,
        };
  }
  const result = await checkRevocation(envelope.chain, opts.fetchRevocation, opts.now);
  if (result.status === 'good') return undefined;
  return result.status === 'revoked'
    ? { code: 'NOTATION_REVOKED', detail: `expected an unrevoked signing chain, found ${result.detail}` }
    : { code: 'NOTATION_REVOCATION_UNKNOWN', detail: `expected a revocation answer, found ${result.detail}` };
}

/** The signed payload must describe the image itself: digest, media type and size. */
function target(envelope: VerifiedEnvelope, image: PolicyOptions['target']): void {
  const t = envelope.targetArtifact;
  if (t.digest === image.digest && t.mediaType === image.mediaType && t.size === image.size) return;
  throw new Rejected({
    validation: 'target',
    code: 'NOTATION_DIGEST_MISMATCH',
    detail: `expected the signed target ${image.digest} (${image.mediaType}, ${image.size} bytes), found ${t.digest} (${t.mediaType}, ${t.size} bytes)`,
  });
}
