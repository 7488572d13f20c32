/**
 * OCI image-spec v1.1 / Docker v2 schema 2 manifests and indexes, parsed defensively: the body was
 * already size-limited and digest-checked by the client; here only its shape is checked (off the event
 * loop when the body is large: json-worker.ts).
 */
import { ProvenantError } from '../types/errors.ts';
import { preview } from '../types/preview.ts';
import { INLINE_PARSE_MAX_BYTES, parseJson, parseOffThread, UnusableJson } from './json-worker.ts';

/** A content descriptor (OCI image-spec "Descriptor"). */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string | undefined;
  readonly annotations: Readonly<Record<string, string>>;
  /** Only in index entries: the platform the manifest is for. */
  readonly platform?: { readonly os?: string; readonly architecture?: string } | undefined;
}

export interface Manifest {
  /** `sha256:` of the exact bytes served (computed, not trusted from headers). */
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
  readonly artifactType?: string | undefined;
  readonly config?: Descriptor | undefined;
  /** Image manifests: their layers (signatures, bundles, attestations live here); empty for an index. */
  readonly layers: readonly Descriptor[];
  /** Indexes: their manifests; empty for an image manifest. */
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor | undefined;
  readonly annotations: Readonly<Record<string, string>>;
}

export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;

/**
 * Descriptors and annotations one manifest may carry, and the characters of text (media types,
 * annotations) kept from it. Real manifests carry tens of entries and kilobytes (an image has at most
 * 127 layers; cosign reads at most 32 signatures, a few KiB of annotations each); the bounds keep a
 * parsed manifest cheap to copy out of the parse worker (a few ms) and to walk.
 */
export const MAX_MANIFEST_ENTRIES = 2048;
export const MAX_MANIFEST_TEXT_CHARS = 1024 * 1024;
/** JSON values a large manifest may hold (a descriptor is about ten), counted before it is parsed. */
export const MAX_MANIFEST_JSON_VALUES = 32 * MAX_MANIFEST_ENTRIES;

/** A manifest as parsed, before the digest and bytes it came with are attached. */
export type ManifestFields = Omit<Manifest, 'digest' | 'body'>;

/**
 * Parses a manifest body; `contentType` is the fallback when the body omits `mediaType`. Bodies above
 * INLINE_PARSE_MAX_BYTES are parsed in a worker thread, so a hostile one never stalls the event loop;
 * they are moved there and back, so use the manifest's `body`, not `body`, afterwards.
 */
export async function parseManifest(
  body: Buffer,
  digest: string,
  contentType: string | undefined,
  image: string,
  signal: AbortSignal,
): Promise<Manifest> {
  let fields: ManifestFields;
  let bytes = body;
  try {
    if (body.length <= INLINE_PARSE_MAX_BYTES) fields = shapeManifest(body.toString('utf8'), contentType);
    else {
      const parsed = await parseOffThread('manifest', body, contentType, image, signal);
      fields = parsed.value as ManifestFields;
      bytes = parsed.bytes;
    }
  } catch (err) {
    if (!(err instanceof UnusableJson)) throw err;
    throw new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `the manifest ${digest} of ${image} is not a valid OCI or Docker manifest: expected a JSON object with layers or manifests, found ${err.found}`,
      { image },
    );
  }
  return { digest, body: bytes, ...fields };
}

/** The shape check itself (pure; runs in a parse worker for large bodies). Throws UnusableJson. */
export function shapeManifest(text: string, contentType: string | undefined): ManifestFields {
  const json = parseJson(text);
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new UnusableJson('a JSON non-object');
  const obj = json as Record<string, unknown>;
  const mediaType =
    typeof obj['mediaType'] === 'string' ? obj['mediaType'] : (contentType?.split(';')[0]?.trim() ?? '');
  let entries = 0;
  let chars = 0;
  const keep = (annotations: Readonly<Record<string, string>>, ...texts: (string | undefined)[]): void => {
    const kept = Object.entries(annotations);
    entries += kept.length;
    for (const text of [...texts, ...kept.flat()]) chars += text?.length ?? 0;
    if (entries > MAX_MANIFEST_ENTRIES)
      throw new UnusableJson(`more than ${MAX_MANIFEST_ENTRIES} descriptors and annotations`);
    if (chars > MAX_MANIFEST_TEXT_CHARS)
      throw new UnusableJson(
        `more than ${MAX_MANIFEST_TEXT_CHARS} characters of media types and annotations`,
      );
  };
  const descriptor = (value: unknown, at: string): Descriptor => {
    const d = parseDescriptor(value, at);
    entries += 1;
    keep(d.annotations, d.mediaType, d.artifactType, d.platform?.os, d.platform?.architecture);
    return d;
  };
  const list = (key: string): Descriptor[] => {
    const value = obj[key];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw new UnusableJson(`"${key}" that is not an array`);
    return value.map((d, i) => descriptor(d, `${key}[${i}]`));
  };
  const single = (key: string): Descriptor | undefined =>
    obj[key] === undefined || obj[key] === null ? undefined : descriptor(obj[key], key);
  const layers = list('layers');
  const manifests = list('manifests');
  if (layers.length > 0 && manifests.length > 0) throw new UnusableJson('both "layers" and "manifests"');
  const annotations = parseAnnotations(obj['annotations']);
  const artifactType = typeof obj['artifactType'] === 'string' ? obj['artifactType'] : undefined;
  keep(annotations, mediaType, artifactType);
  return {
    mediaType,
    artifactType,
    config: single('config'),
    layers,
    manifests,
    subject: single('subject'),
    annotations,
  };
}

function parseDescriptor(value: unknown, at: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw new UnusableJson(`${at} that is not a descriptor`);
  const d = value as Record<string, unknown>;
  const digest = d['digest'];
  const size = d['size'];
  if (typeof digest !== 'string' || !DIGEST_PATTERN.test(digest))
    throw new UnusableJson(`${at}.digest ${preview(digest ?? null)}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw new UnusableJson(`${at}.size ${preview(size ?? null)}`);
  return {
    mediaType: typeof d['mediaType'] === 'string' ? d['mediaType'] : '',
    digest,
    size,
    artifactType: typeof d['artifactType'] === 'string' ? d['artifactType'] : undefined,
    annotations: parseAnnotations(d['annotations']),
    platform: parsePlatform(d['platform']),
  };
}

/** Only the platform fields a reader uses, as strings: never an attacker's object graph. */
function parsePlatform(value: unknown): Descriptor['platform'] {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  return {
    ...(typeof p['os'] === 'string' ? { os: p['os'] } : {}),
    ...(typeof p['architecture'] === 'string' ? { architecture: p['architecture'] } : {}),
  };
}

function parseAnnotations(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  // fromEntries defines each key as an own property: assigning `out['__proto__'] = v` would drop it.
  return Object.fromEntries(
    Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
}
