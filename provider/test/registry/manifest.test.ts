import { describe, expect, it } from 'vitest';
import { OCI_INDEX, OCI_MANIFEST, parseManifest } from '../../src/registry/index.ts';

const d = (n: string): string => `sha256:${n.repeat(64)}`;
const parse = (v: unknown, contentType?: string) =>
  parseManifest(
    Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)),
    d('0'),
    contentType,
    'r.io/app:v1',
    AbortSignal.timeout(5000),
  );

describe('parseManifest', () => {
  it('reads an image manifest with subject, artifactType and annotations', async () => {
    const m = await parse({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: d('1'), size: 2 },
      layers: [{ mediaType: 'x', digest: d('2'), size: 10, annotations: { a: 'b', n: 1 } }],
      subject: { mediaType: OCI_MANIFEST, digest: d('3'), size: 100 },
    });
    expect(m.mediaType).toBe(OCI_MANIFEST);
    expect(m.artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(m.layers[0]?.annotations).toEqual({ a: 'b' });
    expect(m.subject?.digest).toBe(d('3'));
    expect(m.manifests).toEqual([]);
  });

  it('reads an index, taking the media type from Content-Type when the body has none', async () => {
    const m = await parse(
      { schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: d('4'), size: 5 }] },
      `${OCI_INDEX}; charset=utf-8`,
    );
    expect(m.mediaType).toBe(OCI_INDEX);
    expect(m.manifests.map((x) => x.digest)).toEqual([d('4')]);
  });

  it('treats "manifests": null (olareg, for no referrers) as empty', async () => {
    expect((await parse({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: null })).manifests).toEqual([]);
  });

  it.each([
    ['not JSON', 'nope', 'not JSON'],
    ['a bad digest', { layers: [{ digest: 'md5:abc', size: 1 }] }, 'layers[0].digest'],
    ['a negative size', { layers: [{ digest: d('1'), size: -1 }] }, 'layers[0].size'],
    [
      'layers and manifests',
      { layers: [{ digest: d('1'), size: 1 }], manifests: [{ digest: d('1'), size: 1 }] },
      'both',
    ],
  ])('refuses %s with REGISTRY_BAD_RESPONSE naming the image', async (_label, body, found) => {
    await expect(parse(body)).rejects.toThrow(found);
    await expect(parse(body)).rejects.toThrow('r.io/app:v1');
  });
});
