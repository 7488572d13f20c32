/**
 * A legacy `.sig` layer restated as a Sigstore bundle v0.1, so that @sigstore/verify checks its
 * certificate chain, SCT, Rekor SET and log body the same way it checks cosign v3 bundles. The mapping
 * follows cosign's own (`pkg/cosign/bundle`): the `dev.sigstore.cosign/bundle` annotation is Rekor's
 * `{SignedEntryTimestamp, Payload: {body, integratedTime, logIndex, logID}}`; the signed artifact is the
 * payload blob (a hashedrekord over its SHA-256).
 */
import { createHash } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { asObject, parseObject } from './payload.ts';
import type { LegacySignature } from './signatures.ts';

const BUNDLE_V01_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle+json;version=0.1';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g;

export class LegacyBundleError extends Error {
  override readonly name = 'LegacyBundleError';
}

/** `hint` names the public key for key-based roots; certificates carry their own key. */
export function legacyToBundle(sig: LegacySignature, hint: string | undefined): Bundle {
  const certificates = sig.certificate === undefined ? [] : pemToDer(sig.certificate);
  const leaf = certificates[0];
  if (hint === undefined && leaf === undefined)
    throw new LegacyBundleError('the signature carries no certificate');
  return bundleFromJSON({
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial: {
      // Only the leaf: intermediates and roots must come from the trusted root, never the signature.
      ...(hint === undefined
        ? { x509CertificateChain: { certificates: [{ rawBytes: leaf?.toString('base64') }] } }
        : { publicKey: { hint } }),
      tlogEntries: sig.rekorBundle === undefined ? [] : [rekorEntry(sig.rekorBundle)],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: {
        algorithm: 'SHA2_256',
        digest: createHash('sha256').update(sig.payload).digest('base64'),
      },
      signature: sig.signature,
    },
  });
}

function rekorEntry(annotation: string): unknown {
  const rekor = parseObject(annotation);
  const payload = asObject(rekor?.['Payload']);
  const set = rekor?.['SignedEntryTimestamp'];
  const body = payload?.['body'];
  const logId = payload?.['logID'];
  const integratedTime = payload?.['integratedTime'];
  const logIndex = payload?.['logIndex'];
  if (
    typeof set !== 'string' ||
    typeof body !== 'string' ||
    typeof logId !== 'string' ||
    !/^[a-f0-9]+$/.test(logId) ||
    typeof integratedTime !== 'number' ||
    typeof logIndex !== 'number'
  ) {
    throw new LegacyBundleError(
      'the Rekor bundle annotation is not {SignedEntryTimestamp, Payload: {body, integratedTime, logIndex, logID}}',
    );
  }
  const entry = parseObject(Buffer.from(body, 'base64'));
  if (typeof entry?.['kind'] !== 'string' || typeof entry['apiVersion'] !== 'string')
    throw new LegacyBundleError('the Rekor entry body has no kind and apiVersion');
  return {
    logIndex: String(logIndex),
    logId: { keyId: Buffer.from(logId, 'hex').toString('base64') },
    kindVersion: { kind: entry['kind'], version: entry['apiVersion'] },
    integratedTime: String(integratedTime),
    inclusionPromise: { signedEntryTimestamp: set },
    canonicalizedBody: body,
  };
}

function pemToDer(pem: string): Buffer[] {
  return [...pem.matchAll(PEM_CERTIFICATE)].map((m) =>
    Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'),
  );
}
