/**
 * The cosign validator (and the verifier around every validator) against an attacker who can write to
 * the registry but holds no key: real cosign signatures in a real docker-registry, edited the way such
 * an attacker can — raw manifest PUTs, tags moved, and (storage on disk) blobs whose bytes no longer
 * match their digest, as a compromised storage backend or a broken proxy would serve them.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../provider/src/config/index.ts';
import { Runtime, type Outcome } from '../../../provider/src/service/index.ts';
import { cosignAttest, cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { pushBlob, pushManifest } from '../../harness/oci-push.ts';
import { makeTempDir } from '../../harness/process.ts';
import { startDistributionRegistry, tamperStoredBlob, type RegistryServer } from '../../harness/registry.ts';
import { writeFile } from 'node:fs/promises';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';

interface StoredManifest {
  manifests?: unknown[];
  layers: { digest: string; size: number; mediaType: string; annotations?: Record<string, string> }[];
  [field: string]: unknown;
}

describe('cosign validator against an attacker with registry write access and no key', () => {
  let registry: RegistryServer;
  let dir: string;
  let storage: string;
  let alice: CosignKey;
  let bob: CosignKey;
  let runtime: Runtime;

  const pinned = (image: PushedManifest, repository: string): string =>
    `${registry.host}/${repository}@${image.digest}`;

  async function verify(reference: string): Promise<Outcome> {
    return runtime.verifier.verify(reference);
  }

  async function codeOf(reference: string): Promise<string> {
    const outcome = await verify(reference);
    return outcome.ok ? `admitted ${outcome.verdict.digest}` : outcome.error.code;
  }

  async function messageOf(reference: string): Promise<string> {
    const outcome = await verify(reference);
    return outcome.ok ? 'admitted' : outcome.error.message;
  }

  async function getManifest(repository: string, tag: string): Promise<StoredManifest> {
    const res = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
      headers: { accept: `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json` },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as StoredManifest;
  }

  /** A raw manifest PUT under the tag: anyone with push access can do it, no key involved. */
  async function putManifest(repository: string, tag: string, manifest: StoredManifest): Promise<void> {
    const target = { registryUrl: registry.url, repository };
    await pushManifest(target, tag, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
  }

  /** A blob in the repository whose stored bytes were then replaced: served under a digest they miss. */
  async function tamperedBlob(repository: string): Promise<{ digest: string; size: number }> {
    const original = Buffer.from(`{"critical":"original ${Math.random()}"}`);
    const blob = await pushBlob({ registryUrl: registry.url, repository }, original);
    await tamperStoredBlob(
      storage,
      blob.digest,
      Buffer.from(original.toString().replace('original', 'tampered')),
    );
    return blob;
  }

  const sigTag = (digest: string): string => `${digest.replace(':', '-')}.sig`;
  const attTag = (digest: string): string => `${digest.replace(':', '-')}.att`;

  beforeAll(async () => {
    dir = await makeTempDir('cosign-adversarial');
    storage = path.join(dir, 'storage');
    registry = await startDistributionRegistry({ storageDir: storage });
    [alice, bob] = await Promise.all([cosignKeyPair(dir, 'alice'), cosignKeyPair(dir, 'bob')]);
    const offline = 'verifyInTransparencyLog: false';
    const yaml = `
validators:
  - { name: deny, type: static, approve: false }
  - { name: allow, type: static, approve: true }
  - name: team
    type: cosign
    trustRoots:
      - { name: alice, key: ${JSON.stringify(alice.publicKey)} }
      - { name: bob, key: ${JSON.stringify(bob.publicKey)} }
  - name: attested
    type: cosign
    trustRoots: [{ name: alice, key: ${JSON.stringify(alice.publicKey)} }]
    attestation: { predicateType: "${SLSA_V02}" }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/static/*", validator: allow }
  - { pattern: "${registry.host}/alice/*", validator: team, with: { trustRoot: alice, ${offline} } }
  - { pattern: "${registry.host}/two/*", validator: team, with: { trustRoot: "*", threshold: 2, ${offline} } }
  - { pattern: "${registry.host}/attested/*", validator: attested, with: { trustRoot: alice, ${offline} } }
registries:
  - { host: "${registry.host}", insecure: true }
`;
    runtime = new Runtime(parseConfig(yaml, 'adversarial test', dir), 'adversarial test');
    await runtime.ready();
  });

  afterAll(async () => {
    await runtime?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  describe('threshold 2 with trustRoot "*" (issue 10 item 3)', () => {
    it("is not met by one signer's .sig layer copied into the manifest by a raw PUT", async () => {
      const image = await pushRandomImage(registry.url, 'two/copied', 'v1');
      await cosignSign(pinned(image, 'two/copied'), alice);
      const manifest = await getManifest('two/copied', sigTag(image.digest));
      expect(manifest.layers).toHaveLength(1);
      await putManifest('two/copied', sigTag(image.digest), {
        ...manifest,
        layers: [manifest.layers[0]!, manifest.layers[0]!],
      });
      expect((await getManifest('two/copied', sigTag(image.digest))).layers).toHaveLength(2);
      expect(await codeOf(pinned(image, 'two/copied'))).toBe('COSIGN_THRESHOLD_NOT_MET');
      expect(await messageOf(pinned(image, 'two/copied'))).toContain(
        'expected at least 2 from distinct signers, found 1',
      );
    });

    it('is not met by one signer signing twice (a legacy .sig layer and a v3 bundle)', async () => {
      // cosign skips a second legacy signature by the same key (its dupe detector); two formats do not.
      const image = await pushRandomImage(registry.url, 'two/twice', 'v1');
      await cosignSign(pinned(image, 'two/twice'), alice, 'legacy');
      await cosignSign(pinned(image, 'two/twice'), alice, 'bundle');
      expect((await getManifest('two/twice', sigTag(image.digest))).layers).toHaveLength(1);
      expect((await getManifest('two/twice', image.digest.replace(':', '-'))).manifests).toHaveLength(1);
      expect(await codeOf(pinned(image, 'two/twice'))).toBe('COSIGN_THRESHOLD_NOT_MET');
    });

    it('is met by two distinct signers', async () => {
      const image = await pushRandomImage(registry.url, 'two/both', 'v1');
      await cosignSign(pinned(image, 'two/both'), alice);
      await cosignSign(pinned(image, 'two/both'), bob);
      const outcome = await verify(pinned(image, 'two/both'));
      expect(outcome.ok && outcome.verdict.signers).toEqual(['alice', 'bob']);
    });
  });

  describe('a key naming a tag and a digest (issue 10 item 2)', () => {
    it("refuses another digest of the repository under a rule for any tag (static), admits the tag's own", async () => {
      const v1 = await pushRandomImage(registry.url, 'static/app', 'v1');
      const other = await pushRandomImage(registry.url, 'static/app', 'other');
      expect(await codeOf(`${registry.host}/static/app:v1@${other.digest}`)).toBe(
        'VERIFY_TAG_DIGEST_MISMATCH',
      );
      expect(await codeOf(`${registry.host}/static/app:v1@${v1.digest}`)).toBe(`admitted ${v1.digest}`);
    });

    it('refuses a signed digest the tag does not point at (cosign)', async () => {
      const v1 = await pushRandomImage(registry.url, 'alice/app', 'v1');
      const v2 = await pushRandomImage(registry.url, 'alice/app', 'v2');
      await cosignSign(pinned(v1, 'alice/app'), alice);
      await cosignSign(pinned(v2, 'alice/app'), alice);
      const key = `${registry.host}/alice/app:v1@${v2.digest}`;
      expect(await codeOf(key)).toBe('VERIFY_TAG_DIGEST_MISMATCH');
      expect(await messageOf(key)).toContain(`found ${v1.digest}`);
      expect(await codeOf(`${registry.host}/alice/app:v2@${v2.digest}`)).toBe(`admitted ${v2.digest}`);
    });
  });

  describe('signature objects whose bytes do not match their digest (issue 10 item 5)', () => {
    it('reports REGISTRY_DIGEST_MISMATCH, not COSIGN_NO_SIGNATURES, when the only signature payload was tampered with', async () => {
      const image = await pushRandomImage(registry.url, 'alice/tampered', 'v1');
      // Signed under another name for the registry, so the payload is not the one Provenant rebuilds
      // for this reference (signatures.ts legacyPayload) and has to be fetched.
      await cosignSign(pinned(image, 'alice/tampered').replace(/^127\.0\.0\.1:/, 'localhost:'), alice);
      const layer = (await getManifest('alice/tampered', sigTag(image.digest))).layers[0]!;
      const stored = await fetch(`${registry.url}/v2/alice/tampered/blobs/${layer.digest}`);
      const payload = Buffer.from(await stored.arrayBuffer());
      await tamperStoredBlob(
        storage,
        layer.digest,
        Buffer.from(payload.toString().replace(/"type"/, '"tYpe"')),
      );
      expect(await codeOf(pinned(image, 'alice/tampered'))).toBe('REGISTRY_DIGEST_MISMATCH');
      expect(await messageOf(pinned(image, 'alice/tampered'))).toContain(pinned(image, 'alice/tampered'));
    });

    it("never reads a payload it can rebuild: a tampered copy of cosign's own payload does not hide its valid signature", async () => {
      const image = await pushRandomImage(registry.url, 'alice/rebuilt', 'v1');
      await cosignSign(pinned(image, 'alice/rebuilt'), alice);
      const layer = (await getManifest('alice/rebuilt', sigTag(image.digest))).layers[0]!;
      const stored = await fetch(`${registry.url}/v2/alice/rebuilt/blobs/${layer.digest}`);
      const payload = Buffer.from(await stored.arrayBuffer());
      await tamperStoredBlob(
        storage,
        layer.digest,
        Buffer.from(payload.toString().replace(/"type"/, '"tYpe"')),
      );
      expect(await codeOf(pinned(image, 'alice/rebuilt'))).toBe(`admitted ${image.digest}`);
    });

    it('reports a bundle referrer whose manifest was tampered with as REGISTRY_DIGEST_MISMATCH', async () => {
      const image = await pushRandomImage(registry.url, 'alice/referrer', 'v1');
      await cosignSign(pinned(image, 'alice/referrer'), alice, 'bundle');
      const index = await getManifest('alice/referrer', image.digest.replace(':', '-'));
      const [referrer] = (index.manifests ?? []) as { digest: string }[];
      expect(referrer).toBeDefined();
      const stored = await fetch(`${registry.url}/v2/alice/referrer/manifests/${referrer!.digest}`, {
        headers: { accept: OCI_MANIFEST },
      });
      const bytes = Buffer.from(await stored.arrayBuffer());
      await tamperStoredBlob(storage, referrer!.digest, Buffer.from(`${bytes.toString()} `));
      expect(await codeOf(pinned(image, 'alice/referrer'))).toBe('REGISTRY_DIGEST_MISMATCH');
    });

    it('still admits a valid signature next to a tampered one', async () => {
      const image = await pushRandomImage(registry.url, 'alice/mixed', 'v1');
      await cosignSign(pinned(image, 'alice/mixed'), alice);
      const manifest = await getManifest('alice/mixed', sigTag(image.digest));
      const valid = manifest.layers[0]!;
      const broken = { ...valid, ...(await tamperedBlob('alice/mixed')) };
      await putManifest('alice/mixed', sigTag(image.digest), { ...manifest, layers: [broken, valid] });
      expect(await codeOf(pinned(image, 'alice/mixed'))).toBe(`admitted ${image.digest}`);
    });
  });

  describe('attestations', () => {
    async function attestedImage(repository: string): Promise<PushedManifest> {
      const image = await pushRandomImage(registry.url, repository, 'v1');
      await cosignSign(pinned(image, repository), alice);
      const predicate = path.join(dir, 'predicate.json');
      await writeFile(predicate, JSON.stringify({ builder: { id: 'https://ci.acme.test/builder' } }));
      await cosignAttest(pinned(image, repository), alice, predicate, 'slsaprovenance');
      return image;
    }

    it('one broken attestation blob does not hide a valid one', async () => {
      const image = await attestedImage('attested/mixed');
      const manifest = await getManifest('attested/mixed', attTag(image.digest));
      const valid = manifest.layers[0]!;
      const broken = { ...valid, ...(await tamperedBlob('attested/mixed')) };
      await putManifest('attested/mixed', attTag(image.digest), { ...manifest, layers: [broken, valid] });
      expect(await codeOf(pinned(image, 'attested/mixed'))).toBe(`admitted ${image.digest}`);
    });

    it('reports a tampered attestation as REGISTRY_DIGEST_MISMATCH, not COSIGN_ATTESTATION_MISSING', async () => {
      const image = await attestedImage('attested/tampered');
      const manifest = await getManifest('attested/tampered', attTag(image.digest));
      const broken = { ...manifest.layers[0]!, ...(await tamperedBlob('attested/tampered')) };
      await putManifest('attested/tampered', attTag(image.digest), { ...manifest, layers: [broken] });
      expect(await codeOf(pinned(image, 'attested/tampered'))).toBe('REGISTRY_DIGEST_MISMATCH');
    });
  });
});
