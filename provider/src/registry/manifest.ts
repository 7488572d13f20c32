/**
 * OCI image-spec v1.1 / Docker v2 schema 2 manifests and indexes, parsed defensively: the body was
 * already size-limited and digest-checked by the client; here only its shape is checked.
 */
import { ProvenantError } from '../types/errors.ts';

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

/** Parses a manifest body; `contentType` is the fallback when the body omits `mediaType`. */
export function parseManifest(
  body: Buffer,
  digest: string,
  contentType: string | undefined,
  image: string,
): Manifest {
  const bad = (found: string): ProvenantError =>
    new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `the manifest ${digest} of ${image} is not a valid OCI or Docker manifest: expected a JSON object with layers or manifests, found ${found}`,
      { image },
    );
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad('text that is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('a JSON non-object');
  const obj = json as Record<string, unknown>;
  const mediaType =
    typeof obj['mediaType'] === 'string' ? obj['mediaType'] : (contentType?.split(';')[0]?.trim() ?? '');
  const list = (key: string): Descriptor[] => {
    const value = obj[key];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw bad(`"${key}" that is not an array`);
    return value.map((d, i) => parseDescriptor(d, `${key}[${i}]`, bad));
  };
  const single = (key: string): Descriptor | undefined =>
    obj[key] === undefined || obj[key] === null ? undefined : parseDescriptor(obj[key], key, bad);
  const layers = list('layers');
  const manifests = list('manifests');
  if (layers.length > 0 && manifests.length > 0) throw bad('both "layers" and "manifests"');
  return {
    digest,
    mediaType,
    body,
    artifactType: typeof obj['artifactType'] === 'string' ? obj['artifactType'] : undefined,
    config: single('config'),
    layers,
    manifests,
    subject: single('subject'),
    annotations: parseAnnotations(obj['annotations']),
  };
}

function parseDescriptor(value: unknown, at: string, bad: (found: string) => ProvenantError): Descriptor {
  if (typeof value !== 'object' || value === null) throw bad(`${at} that is not a descriptor`);
  const d = value as Record<string, unknown>;
  const digest = d['digest'];
  const size = d['size'];
  if (typeof digest !== 'string' || !DIGEST_PATTERN.test(digest))
    throw bad(`${at}.digest ${JSON.stringify(digest ?? null)}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw bad(`${at}.size ${JSON.stringify(size ?? null)}`);
  const platform = d['platform'];
  return {
    mediaType: typeof d['mediaType'] === 'string' ? d['mediaType'] : '',
    digest,
    size,
    artifactType: typeof d['artifactType'] === 'string' ? d['artifactType'] : undefined,
    annotations: parseAnnotations(d['annotations']),
    platform:
      typeof platform === 'object' && platform !== null
        ? (platform)
        : undefined,
  };
}

function parseAnnotations(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}
