/**
 * cosign attestations: in-toto statements in DSSE envelopes (in-toto attestation spec v1,
 * DSSE protocol "PAE"), stored by `cosign attest` in the legacy `sha256-<hex>.att` tag (one
 * `application/vnd.dsse.envelope.v1+json` layer per attestation) or, with cosign v3, as Sigstore bundles
 * in referrers. An attestation counts when a trust root signed it, its subject is the admitted digest,
 * its predicate type is the required one and, if a policy is given, the policy allows its predicate.
 */
import { envelopeFromJSON } from '@sigstore/bundle';
import { dsse } from '@sigstore/core';
import type { ImageReference } from '../../reference/index.ts';
import type { RegistryClient } from '../../registry/index.ts';
import { IN_TOTO_PAYLOAD_TYPE, parseStatement } from './payload.ts';
import {
  fetchBundles,
  fetchJsonBlob,
  MAX_LEGACY_SIGNATURES,
  merged,
  unlessBroken,
  type BundleSignature,
  type Fetched,
} from './signatures.ts';
import { checkBundle, type Check, type CheckOptions, type RootMaterial } from './verify.ts';

export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';

export interface LegacyAttestation {
  readonly kind: 'legacy-attestation';
  readonly source: string;
  /** The DSSE envelope JSON (the layer blob). */
  readonly envelope: Buffer;
  readonly rekorBundle: string | undefined;
}

export type Attestation = LegacyAttestation | BundleSignature;

/** Decides on a verified predicate; a compiled Rego policy in practice (predicate-policy.ts). */
export interface PredicatePolicy {
  allows(statement: { predicateType: string; predicate: unknown }): boolean;
}

export interface AttestationRequirement {
  readonly predicateType: string;
  readonly policy?: PredicatePolicy | undefined;
}

export function attestationTag(digest: string): string {
  return `${digest.replace(':', '-')}.att`;
}

export async function fetchAttestations(
  registry: RegistryClient,
  image: ImageReference,
  digest: string,
  signal: AbortSignal,
): Promise<Fetched<Attestation>> {
  return merged<Attestation>(
    await Promise.all([
      fetchLegacyAttestations(registry, image, digest, signal),
      fetchBundles(registry, image, digest, signal),
    ]),
  );
}

/** Each layer on its own: one broken blob must not hide a valid attestation (signatures.ts). */
async function fetchLegacyAttestations(
  registry: RegistryClient,
  image: ImageReference,
  digest: string,
  signal: AbortSignal,
): Promise<Fetched<LegacyAttestation>> {
  const tag = attestationTag(digest);
  const manifest = await registry.findManifest(image, tag, signal);
  if (manifest === undefined) return { items: [], tampered: [] };
  const layers = manifest.layers
    .map((layer, index) => ({ layer, index }))
    .filter(({ layer }) => layer.mediaType === DSSE_MEDIA_TYPE)
    .slice(0, MAX_LEGACY_SIGNATURES);
  const found = await Promise.all(
    layers.map(({ layer, index }) =>
      unlessBroken(async () => [
        {
          kind: 'legacy-attestation' as const,
          source: `${tag} layer ${index}`,
          envelope: await fetchJsonBlob(registry, image, layer, signal, 'DSSE envelope'),
          rekorBundle: layer.annotations['dev.sigstore.cosign/bundle'] || undefined,
        },
      ]),
    ),
  );
  return merged(found);
}

export type AttestationCheck =
  Check | { readonly ok: false; readonly failure: 'policy'; readonly detail: string };

/** One attestation against one root and the requirement; never throws. */
export function checkAttestation(
  attestation: Attestation,
  root: RootMaterial,
  opts: CheckOptions,
  requirement: AttestationRequirement,
): AttestationCheck {
  let check: Check;
  try {
    check =
      attestation.kind === 'bundle'
        ? checkBundle(attestation, root, opts, requirement.predicateType)
        : checkLegacy(attestation, root, opts, requirement.predicateType);
  } catch (err) {
    return { ok: false, failure: 'malformed', detail: `unusable attestation: ${(err as Error).message}` };
  }
  if (!check.ok || requirement.policy === undefined) return check;
  const statement = { predicateType: requirement.predicateType, predicate: check.predicate };
  return requirement.policy.allows(statement)
    ? check
    : {
        ok: false,
        failure: 'policy',
        detail: `the policy denies its ${requirement.predicateType} predicate`,
      };
}

function checkLegacy(
  att: LegacyAttestation,
  root: RootMaterial,
  opts: CheckOptions,
  predicateType: string,
): Check {
  if (root.kind !== 'key') {
    return {
      ok: false,
      failure: 'certificate',
      detail: 'keyless legacy .att attestations are not supported; use cosign v3 bundles',
    };
  }
  const envelope = envelopeFromJSON(JSON.parse(att.envelope.toString('utf8')));
  const pae = dsse.preAuthEncoding(envelope.payloadType, envelope.payload);
  if (!envelope.signatures.some((s) => root.key.verify(pae, s.sig)))
    return {
      ok: false,
      failure: 'signature',
      detail: `the DSSE signature does not verify under the key of trust root "${root.name}"`,
    };
  const claim =
    envelope.payloadType === IN_TOTO_PAYLOAD_TYPE
      ? parseStatement(envelope.payload, predicateType)
      : undefined;
  if (claim === undefined)
    return {
      ok: false,
      failure: 'malformed',
      detail: `not an in-toto statement with predicate ${predicateType}`,
    };
  if (!claim.digests.includes(opts.digest))
    return {
      ok: false,
      failure: 'digest',
      detail: `the statement's subject is ${claim.digests.join(', ') || 'empty'}`,
      claim,
    };
  if (opts.verifyTlog) {
    return att.rekorBundle === undefined
      ? { ok: false, failure: 'tlog-missing', detail: 'the attestation has no Rekor bundle' }
      : {
          ok: false,
          failure: 'tlog-invalid',
          detail: 'log entries of legacy .att attestations are not verified; use cosign v3 bundles',
        };
  }
  return { ok: true, predicate: claim.predicate };
}
