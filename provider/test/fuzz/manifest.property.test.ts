/**
 * Manifests, indexes and referrers responses (OCI image-spec v1.1, distribution-spec v1.1 referrers
 * API), as any registry may serve them: any body is a manifest or a REGISTRY_BAD_RESPONSE (bodies
 * parsed in a worker may also time out: REGISTRY_TIMEOUT), never another exception; a well-formed
 * manifest or referrers index parses to exactly its descriptors.
 */
import fc from 'fast-check';
import { afterAll, describe, expect } from 'vitest';

import {
  closeParseWorkers,
  OCI_INDEX,
  OCI_MANIFEST,
  parseManifest,
  type Manifest,
} from '../../src/registry/index.ts';
import { INLINE_PARSE_MAX_BYTES } from '../../src/registry/json-worker.ts';
import {
  asyncOutcome,
  DEEP_NESTING,
  expectCoded,
  hostileJsonText,
  hostileString,
  mutatedJsonText,
  nestedJsonText,
  property,
  rawBytes,
  sampleOf,
} from './harness.ts';

const DIGEST = `sha256:${'0'.repeat(64)}`;
const IMAGE = 'registry.test/app:v1';
const PARSE_DEADLINE_MS = 30_000;

const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
const annotations = fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 }), { maxKeys: 4 });
const descriptor = fc.record(
  {
    mediaType: fc.constantFrom(OCI_MANIFEST, 'application/vnd.dev.cosign.simplesigning.v1+json', 'x/y'),
    digest: hex64.map((h) => `sha256:${h}`),
    size: fc.nat(),
    artifactType: fc.constantFrom('application/vnd.dev.sigstore.bundle.v0.3+json', 'application/spdx+json'),
    annotations,
  },
  { requiredKeys: ['mediaType', 'digest', 'size'] },
);
const imageManifest = fc.record({
  schemaVersion: fc.constant(2),
  mediaType: fc.constant(OCI_MANIFEST),
  config: descriptor,
  layers: fc.array(descriptor, { maxLength: 6 }),
  subject: fc.option(descriptor, { nil: undefined }),
  annotations: fc.option(annotations, { nil: undefined }),
});
/** A referrers API response: an index of the manifests whose subject is the image. */
const referrersIndex = fc.record({
  schemaVersion: fc.constant(2),
  mediaType: fc.constant(OCI_INDEX),
  manifests: fc.array(descriptor, { maxLength: 8 }),
});

const SAMPLE_MANIFEST = sampleOf(imageManifest);
const SAMPLE_INDEX = sampleOf(referrersIndex.filter((i) => i.manifests.length > 1));
const contentType = fc.option(
  fc.oneof(fc.constantFrom(OCI_MANIFEST, OCI_INDEX, `${OCI_INDEX}; charset=utf-8`, ';', ''), hostileString),
  { nil: undefined },
);

/** Bodies of every kind: raw bytes, hostile JSON, well-formed documents with one field made wrong. */
const hostileBody = fc.oneof(
  rawBytes,
  hostileJsonText.map((text) => Buffer.from(text)),
  mutatedJsonText(SAMPLE_MANIFEST).map((text) => Buffer.from(text)),
  mutatedJsonText(SAMPLE_INDEX).map((text) => Buffer.from(text)),
);

function parse(body: Buffer, type?: string): Promise<Manifest> {
  return parseManifest(body, DIGEST, type, IMAGE, AbortSignal.timeout(PARSE_DEADLINE_MS));
}

/** The descriptor as parseManifest reports it: unknown fields dropped, absent ones defaulted. */
function expectedDescriptor(d: Record<string, unknown>): unknown {
  return {
    mediaType: d['mediaType'],
    digest: d['digest'],
    size: d['size'],
    artifactType: d['artifactType'],
    annotations: d['annotations'] ?? {},
    platform: undefined,
  };
}

// Regressions a past run found: error messages quoted the offending value with JSON.stringify, which
// overflows the stack on deeply nested JSON (a RangeError instead of REGISTRY_BAD_RESPONSE).
const DEEP_DIGEST = Buffer.from(`{"layers":[{"digest":${nestedJsonText(5000)},"size":1}]}`);
const DEEP_SIZE = Buffer.from(
  `{"manifests":[{"digest":"${DIGEST}","size":${nestedJsonText(DEEP_NESTING, 'object')}}]}`,
);

// A regression a long run found: an annotation named "__proto__" was assigned, not defined, and so
// silently dropped from the parsed manifest.
const PROTO_ANNOTATIONS = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
const PROTO_MANIFEST = { ...SAMPLE_MANIFEST, annotations: PROTO_ANNOTATIONS } as typeof SAMPLE_MANIFEST;
const PROTO_INDEX = {
  ...SAMPLE_INDEX,
  manifests: SAMPLE_INDEX.manifests.map((d) => ({ ...d, annotations: PROTO_ANNOTATIONS })),
} as typeof SAMPLE_INDEX;

describe('manifests, indexes and referrers responses (parseManifest)', () => {
  afterAll(closeParseWorkers);

  property(
    'any body up to the inline limit is a manifest or a REGISTRY_BAD_RESPONSE',
    'parseManifest',
    fc.tuple(hostileBody, contentType),
    async ([body, type]) => {
      const result = await asyncOutcome(() => parse(body, type));
      if (!result.ok) expectCoded(result.error, ['REGISTRY_BAD_RESPONSE']);
      else expect(result.value.layers.length === 0 || result.value.manifests.length === 0).toBe(true);
    },
    {
      runs: 600,
      examples: [
        [DEEP_DIGEST, undefined],
        [DEEP_SIZE, OCI_INDEX],
      ],
    },
  );

  property(
    'a body above the inline limit, parsed in a worker, is a manifest, a REGISTRY_BAD_RESPONSE or a REGISTRY_TIMEOUT',
    'parseManifest (worker)',
    fc
      .tuple(hostileBody, fc.integer({ min: INLINE_PARSE_MAX_BYTES, max: 4 * INLINE_PARSE_MAX_BYTES }))
      .map(([body, size]) => Buffer.concat([body, Buffer.alloc(Math.max(0, size - body.length), 0x20)])),
    async (body) => {
      const result = await asyncOutcome(() => parse(body));
      if (!result.ok) expectCoded(result.error, ['REGISTRY_BAD_RESPONSE', 'REGISTRY_TIMEOUT']);
    },
    { runs: 40, examples: [Buffer.concat([DEEP_DIGEST, Buffer.alloc(INLINE_PARSE_MAX_BYTES, 0x20)])] },
  );

  property(
    'an image manifest parses to exactly its config, layers, subject and string annotations',
    'parseManifest (image manifest round trip)',
    imageManifest,
    async (m) => {
      const parsed = await parse(Buffer.from(JSON.stringify(m)));
      expect(parsed.mediaType).toBe(OCI_MANIFEST);
      expect(parsed.config).toEqual(expectedDescriptor(m.config));
      expect(parsed.layers).toEqual(m.layers.map(expectedDescriptor));
      expect(parsed.subject).toEqual(m.subject === undefined ? undefined : expectedDescriptor(m.subject));
      expect(parsed.annotations).toEqual(m.annotations ?? {});
      expect(parsed.manifests).toEqual([]);
    },
    { runs: 500, examples: [PROTO_MANIFEST] },
  );

  property(
    'a referrers index parses to exactly its manifests, whatever its Content-Type says',
    'parseManifest (referrers index round trip)',
    fc.tuple(referrersIndex, contentType),
    async ([index, type]) => {
      const parsed = await parse(Buffer.from(JSON.stringify(index)), type);
      expect(parsed.mediaType).toBe(OCI_INDEX);
      expect(parsed.manifests).toEqual(index.manifests.map(expectedDescriptor));
      expect(parsed.layers).toEqual([]);
    },
    { runs: 500, examples: [[PROTO_INDEX, undefined]] },
  );
});
