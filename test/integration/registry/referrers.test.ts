/**
 * Referrers discovered both ways: the OCI referrers API (olareg, distribution-spec v1.1) and the
 * referrers tag schema (`sha256-<hex>`) on distribution 2.8, which has no such API. Plus mirrors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../../../provider/src/registry/index.ts';
import { startCountingProxy } from '../../harness/counting-proxy.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { testRegistryClient, testSignal } from '../../harness/registry-client.ts';
import { pushBlob, pushManifest, sha256Digest, type PushTarget } from '../../harness/oci-push.ts';
import {
  startDistributionRegistry,
  startReferrersRegistry,
  type RegistryServer,
} from '../../harness/registry.ts';

const SIGNATURE_TYPE = 'application/vnd.example.signature.v1+json';
const SBOM_TYPE = 'application/vnd.example.sbom.v1+json';
const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

interface Artifact {
  digest: string;
  payload: Buffer;
  descriptor: { mediaType: string; digest: string; size: number; artifactType: string };
}

/** Pushes an artifact manifest (empty config, one payload layer) whose subject is `subject`. */
async function pushArtifact(
  target: PushTarget,
  subject: PushedManifest,
  artifactType: string,
): Promise<Artifact> {
  const payload = Buffer.from(JSON.stringify({ artifactType, nonce: Math.random() }));
  const layer = await pushBlob(target, payload);
  const config = await pushBlob(target, Buffer.from('{}'));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: EMPTY_CONFIG, ...config },
      layers: [{ mediaType: 'application/octet-stream', ...layer }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.length },
    }),
  );
  const digest = await pushManifest(target, sha256Digest(manifest), manifest, OCI_MANIFEST);
  return {
    digest,
    payload,
    descriptor: { mediaType: OCI_MANIFEST, digest, size: manifest.length, artifactType },
  };
}

/**
 * What clients do on a registry without the referrers API (distribution-spec "Referrers Tag Schema"):
 * keep an index of the subject's referrers under the tag `sha256-<hex>`.
 */
async function pushFallbackIndex(target: PushTarget, subject: string, artifacts: Artifact[]): Promise<void> {
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: artifacts.map((a) => a.descriptor) }),
  );
  await pushManifest(target, subject.replace(':', '-'), index, OCI_INDEX);
}

describe('referrers, both ways', () => {
  let withApi: RegistryServer;
  let withoutApi: RegistryServer;

  beforeAll(async () => {
    [withApi, withoutApi] = await Promise.all([startReferrersRegistry(), startDistributionRegistry()]);
  });
  afterAll(async () => {
    await Promise.all([withApi?.stop(), withoutApi?.stop()]);
  });

  it('lists referrers through the referrers API, filtered by artifact type', async () => {
    const target = { registryUrl: withApi.url, repository: 'team/app' };
    const image = await pushRandomImage(withApi.url, 'team/app', 'v1');
    const sig = await pushArtifact(target, image, SIGNATURE_TYPE);
    const sbom = await pushArtifact(target, image, SBOM_TYPE);
    const c = testRegistryClient([{ host: withApi.host, insecure: true }]);
    const ref = parseReference(image.reference);
    try {
      const all = await c.listReferrers(ref, image.digest, testSignal());
      expect(all.map((d) => d.digest).sort()).toEqual([sig.digest, sbom.digest].sort());
      const sigs = await c.listReferrers(ref, image.digest, testSignal(), { artifactType: SIGNATURE_TYPE });
      expect(sigs.map((d) => d.digest)).toEqual([sig.digest]);
      expect(sigs[0]?.artifactType).toBe(SIGNATURE_TYPE);
      // No fallback tag exists here, so these came from the API.
      expect(await c.findManifest(ref, image.digest.replace(':', '-'), testSignal())).toBeUndefined();
      // And the artifact's content is reachable and digest-checked.
      const manifest = await c.fetchManifest(ref, sig.digest, testSignal());
      expect(manifest.subject?.digest).toBe(image.digest);
      const layer = manifest.layers[0];
      expect(layer).toBeDefined();
      expect(await c.fetchBlob(ref, layer!, testSignal())).toEqual(sig.payload);
    } finally {
      await c.close();
    }
  });

  it('answers an empty list for an image nobody refers to (olareg says "manifests": null)', async () => {
    const image = await pushRandomImage(withApi.url, 'team/lonely', 'v1');
    const c = testRegistryClient([{ host: withApi.host, insecure: true }]);
    try {
      expect(await c.listReferrers(parseReference(image.reference), image.digest, testSignal())).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it('falls back to the sha256-<hex> tag on a registry without the referrers API', async () => {
    const target = { registryUrl: withoutApi.url, repository: 'team/app' };
    const image = await pushRandomImage(withoutApi.url, 'team/app', 'v1');
    const sig = await pushArtifact(target, image, SIGNATURE_TYPE);
    const sbom = await pushArtifact(target, image, SBOM_TYPE);
    const c = testRegistryClient([{ host: withoutApi.host, insecure: true }]);
    const ref = parseReference(image.reference);
    try {
      // Before any client maintained the tag: nothing, and no error.
      expect(await c.listReferrers(ref, image.digest, testSignal())).toEqual([]);
      await pushFallbackIndex(target, image.digest, [sig, sbom]);
      const sigs = await c.listReferrers(ref, image.digest, testSignal(), { artifactType: SIGNATURE_TYPE });
      expect(sigs.map((d) => d.digest)).toEqual([sig.digest]);
      const all = await c.listReferrers(ref, image.digest, testSignal());
      expect(all).toHaveLength(2);
    } finally {
      await c.close();
    }
  });

  it('asks a registry without the referrers API once, then goes straight to the sha256-<hex> tag', async () => {
    const proxy = await startCountingProxy(withoutApi.url);
    const c = testRegistryClient([{ host: proxy.host, insecure: true }]);
    try {
      const first = await pushRandomImage(proxy.url, 'team/probe', 'v1');
      const second = await pushRandomImage(proxy.url, 'team/probe', 'v2');
      const sig = await pushArtifact(
        { registryUrl: proxy.url, repository: 'team/probe' },
        second,
        SIGNATURE_TYPE,
      );
      await pushFallbackIndex({ registryUrl: proxy.url, repository: 'team/probe' }, second.digest, [sig]);
      proxy.take();
      expect(await c.listReferrers(parseReference(first.reference), first.digest, testSignal())).toEqual([]);
      expect(proxy.take().byKind).toEqual({ 'GET referrers 404': 1, 'GET manifest 404': 1 });
      const found = await c.listReferrers(parseReference(second.reference), second.digest, testSignal());
      expect(found.map((d) => d.digest)).toEqual([sig.digest]);
      expect(proxy.take().byKind).toEqual({ 'GET manifest 200': 1 });
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  it("probes a registry once for the referrers API when a pod's images are asked about together", async () => {
    const proxy = await startCountingProxy(withoutApi.url);
    const c = testRegistryClient([{ host: proxy.host, insecure: true }]);
    try {
      const images = await Promise.all(
        Array.from({ length: 5 }, (_, i) => pushRandomImage(proxy.url, `team/pod${i}`, 'v1')),
      );
      proxy.take();
      const lists = await Promise.all(
        images.map((image) => c.listReferrers(parseReference(image.reference), image.digest, testSignal())),
      );
      expect(lists).toEqual([[], [], [], [], []]);
      expect(proxy.take().byKind).toEqual({ 'GET referrers 404': 1, 'GET manifest 404': 5 });
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  it('keeps asking the referrers API of a registry that serves it', async () => {
    const proxy = await startCountingProxy(withApi.url);
    const c = testRegistryClient([{ host: proxy.host, insecure: true }]);
    try {
      const image = await pushRandomImage(proxy.url, 'team/api', 'v1');
      proxy.take();
      for (let i = 0; i < 2; i++)
        await c.listReferrers(parseReference(image.reference), image.digest, testSignal());
      expect(proxy.take().byKind).toEqual({ 'GET referrers 200': 2 });
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  it('verifies docker.io/x against its mirror (mirror.local/prefix/x), keeping the name asked for', async () => {
    const image = await pushRandomImage(withoutApi.url, 'dockerhub/library/nginx', '1.27');
    const c = testRegistryClient([
      { host: 'docker.io', insecure: false, mirror: `${withoutApi.host}/dockerhub` },
      { host: withoutApi.host, insecure: true },
    ]);
    try {
      const ref = parseReference('nginx:1.27');
      expect(ref.registry).toBe('docker.io');
      expect(await c.resolveDigest(ref, testSignal())).toBe(image.digest);
      const manifest = await c.fetchManifest(ref, image.digest, testSignal());
      expect(manifest.digest).toBe(image.digest);
    } finally {
      await c.close();
    }
  });
});
