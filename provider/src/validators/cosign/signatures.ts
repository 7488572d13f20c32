/**
 * Where cosign keeps signatures, read through the registry client (validators never do HTTP):
 * - legacy: the tag `sha256-<hex>.sig` in the image's repository, an image manifest whose layers are
 *   simple-signing payloads (`application/vnd.dev.cosign.simplesigning.v1+json`) with the signature,
 *   certificate, chain and Rekor bundle in layer annotations (cosign `pkg/oci/static`, `pkg/types`);
 * - cosign v3: Sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.3+json`) in manifests that
 *   name the image as their `subject`, found with the OCI referrers API or its tag-schema fallback.
 */
import { createHash } from 'node:crypto';
import type { ImageReference } from '../../reference/index.ts';
import { checkJsonDocument, type Descriptor, type RegistryClient } from '../../registry/index.ts';
import { ProvenantError, type ErrorCode } from '../../types/errors.ts';
import { asObject, parseObject } from './payload.ts';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** cosign's layer annotations (`pkg/oci/static/options.go`, `pkg/cosign/bundle`). */
export const ANNOTATION = {
  signature: 'dev.cosignproject.cosign/signature',
  certificate: 'dev.sigstore.cosign/certificate',
  chain: 'dev.sigstore.cosign/chain',
  rekorBundle: 'dev.sigstore.cosign/bundle',
} as const;

/**
 * Bounds on attacker-controlled fan-out: a `.sig` manifest or a referrers list could name thousands of
 * entries; each costs a blob fetch on the admission path.
 */
export const MAX_LEGACY_SIGNATURES = 32;
export const MAX_BUNDLE_REFERRERS = 16;

export interface LegacySignature {
  readonly kind: 'legacy';
  /** Where it came from, for messages: `<tag> layer <i>`. */
  readonly source: string;
  readonly payload: Buffer;
  /** Base64 text of the signature annotation (cosign stores it base64). */
  readonly signature: string;
  readonly certificate: string | undefined;
  readonly chain: string | undefined;
  readonly rekorBundle: string | undefined;
}

export interface BundleSignature {
  readonly kind: 'bundle';
  readonly source: string;
  /** The bundle blob, not yet parsed. */
  readonly bytes: Buffer;
}

export type CosignSignature = LegacySignature | BundleSignature;

/** The legacy signature tag of a digest: `sha256:abc…` → `sha256-abc….sig`. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/**
 * What makes two stored signatures the same one: the signature bytes (legacy annotation, or the one
 * DSSE / message signature of a bundle), not where or how they are stored, so a layer copied in the
 * `.sig` manifest or a bundle pushed twice or re-serialised is one signature (policy.ts counts them).
 */
export function signatureId(sig: CosignSignature): string {
  const bytes =
    sig.kind === 'legacy' ? Buffer.from(sig.signature, 'base64') : bundleSignatureBytes(sig.bytes);
  return createHash('sha256').update(bytes).digest('hex');
}

function bundleSignatureBytes(bundle: Buffer): Buffer {
  const json = parseObject(bundle);
  const dsse = asObject(json?.['dsseEnvelope'])?.['signatures'];
  const signature = Array.isArray(dsse)
    ? asObject(dsse[0])?.['sig']
    : asObject(json?.['messageSignature'])?.['signature'];
  // An unreadable bundle never verifies; its own bytes keep it distinct from the others.
  return typeof signature === 'string' ? Buffer.from(signature, 'base64') : bundle;
}

/**
 * What was found, and what was tampered with: objects whose bytes do not hash to the digest that
 * names them. They are skipped so they cannot hide a valid signature next to them, but they are
 * reported when nothing valid is found (cosign.ts), never mistaken for "no signatures".
 */
export interface Fetched<T> {
  readonly items: readonly T[];
  readonly tampered: readonly ProvenantError[];
}

/** Every signature cosign may have stored for `digest`, legacy and bundles fetched concurrently. */
export async function fetchSignatures(
  registry: RegistryClient,
  image: ImageReference,
  digest: string,
  signal: AbortSignal,
): Promise<Fetched<CosignSignature>> {
  return merged<CosignSignature>(
    await Promise.all([
      fetchLegacy(registry, image, digest, signal),
      fetchBundles(registry, image, digest, signal),
    ]),
  );
}

async function fetchLegacy(
  registry: RegistryClient,
  image: ImageReference,
  digest: string,
  signal: AbortSignal,
): Promise<Fetched<LegacySignature>> {
  const tag = signatureTag(digest);
  const manifest = await registry.findManifest(image, tag, signal);
  if (manifest === undefined) return { items: [], tampered: [] };
  const layers = manifest.layers
    .map((layer, index) => ({ layer, index }))
    .filter(({ layer }) => layer.annotations[ANNOTATION.signature] !== undefined)
    .slice(0, MAX_LEGACY_SIGNATURES);
  const found = await Promise.all(
    layers.map(({ layer, index }) =>
      unlessBroken(async () => [
        {
          kind: 'legacy' as const,
          source: `${tag} layer ${index}`,
          payload: await legacyPayload(registry, image, digest, layer, signal),
          signature: layer.annotations[ANNOTATION.signature] as string,
          certificate: nonEmpty(layer.annotations[ANNOTATION.certificate]),
          chain: nonEmpty(layer.annotations[ANNOTATION.chain]),
          rekorBundle: nonEmpty(layer.annotations[ANNOTATION.rekorBundle]),
        },
      ]),
    ),
  );
  return merged(found);
}

/**
 * A legacy signature's payload. cosign writes a key or keyless signature's simple-signing payload the
 * same way for every image (`pkg/signature/payload.go`, `sigPayload.MarshalJSON`): the digest and the
 * repository as signed, no annotations unless `-a` was given. When the layer's digest is the hash of
 * that document for this image, those are the bytes the registry would serve (a blob is its digest),
 * so the blob GET, the third sequential round trip, is skipped; anything else is fetched as before.
 * Every check on the payload (the signature over these bytes, the digest they name) still runs.
 */
async function legacyPayload(
  registry: RegistryClient,
  image: ImageReference,
  digest: string,
  layer: Descriptor,
  signal: AbortSignal,
): Promise<Buffer> {
  for (const reference of signedReferences(image)) {
    const bytes = Buffer.from(simpleSigningPayload(reference, digest));
    if (
      layer.size === bytes.length &&
      `sha256:${createHash('sha256').update(bytes).digest('hex')}` === layer.digest
    )
      return bytes;
  }
  return fetchJsonBlob(registry, image, layer, signal, 'simple-signing payload');
}

/** cosign's payload for a repository and digest, byte for byte as it writes it. */
export function simpleSigningPayload(dockerReference: string, digest: string): string {
  return JSON.stringify({
    critical: {
      identity: { 'docker-reference': dockerReference },
      image: { 'docker-manifest-digest': digest },
      type: 'cosign container image signature',
    },
    optional: null,
  });
}

/** The names cosign records for an image's repository: as written, and Docker Hub's API host for docker.io. */
function signedReferences(image: ImageReference): string[] {
  const name = `${image.registry}/${image.repository}`;
  return image.registry === 'docker.io' ? [name, `index.docker.io/${image.repository}`] : [name];
}

export async function fetchBundles(
  registry: RegistryClient,
  image: ImageReference,
  digest: string,
  signal: AbortSignal,
): Promise<Fetched<BundleSignature>> {
  const referrers = await registry.listReferrers(image, digest, signal, {
    artifactType: BUNDLE_ARTIFACT_TYPE,
  });
  const found = await Promise.all(
    referrers
      .slice(0, MAX_BUNDLE_REFERRERS)
      .map((d) => unlessBroken(() => fetchBundle(registry, image, digest, d, signal))),
  );
  return merged(found);
}

/**
 * One broken signature (a blob that does not match its digest, a referrer that is not a manifest) must
 * not hide the valid ones next to it: it is skipped, and a digest mismatch is kept as tampering.
 * Transient failures still fail the whole request, so an outage is never mistaken for "unsigned".
 */
export async function unlessBroken<T>(fetch: () => Promise<readonly T[]>): Promise<Fetched<T>> {
  try {
    return { items: await fetch(), tampered: [] };
  } catch (err) {
    if (!(err instanceof ProvenantError && BROKEN_CONTENT.has(err.code))) throw err;
    return { items: [], tampered: err.code === 'REGISTRY_DIGEST_MISMATCH' ? [err] : [] };
  }
}

export function merged<T>(parts: readonly Fetched<T>[]): Fetched<T> {
  return { items: parts.flatMap((p) => p.items), tampered: parts.flatMap((p) => p.tampered) };
}

/** Failures that are a property of one stored object; access and availability errors are not. */
const BROKEN_CONTENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'REGISTRY_BLOB_UNKNOWN',
  'REGISTRY_MANIFEST_UNKNOWN',
  'REGISTRY_DIGEST_MISMATCH',
  'REGISTRY_BAD_RESPONSE',
  'REGISTRY_RESPONSE_TOO_LARGE',
]);

async function fetchBundle(
  registry: RegistryClient,
  image: ImageReference,
  digest: string,
  referrer: Descriptor,
  signal: AbortSignal,
): Promise<BundleSignature[]> {
  const manifest = await registry.fetchManifest(image, referrer.digest, signal);
  // A referrers list (or a fallback tag anyone can push) may name manifests about other images.
  if (manifest.subject !== undefined && manifest.subject.digest !== digest) return [];
  const layer = manifest.layers.find((l) => l.mediaType === BUNDLE_ARTIFACT_TYPE);
  if (layer === undefined) return [];
  return [
    {
      kind: 'bundle',
      source: `referrer ${referrer.digest}`,
      bytes: await fetchJsonBlob(registry, image, layer, signal, 'Sigstore bundle'),
    },
  ];
}

/**
 * A blob that is parsed as JSON on the event loop later: checked first, off the loop, to be JSON that
 * parses quickly (see registry/json-worker.ts); one that is not counts as broken content.
 */
export async function fetchJsonBlob(
  registry: RegistryClient,
  image: ImageReference,
  layer: Descriptor,
  signal: AbortSignal,
  what: string,
): Promise<Buffer> {
  return checkJsonDocument(await registry.fetchBlob(image, layer, signal), what, image.original, signal);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
