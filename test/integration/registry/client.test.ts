/** The registry client against real registries on loopback: auth, manifest kinds, digests. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryConfig } from '../../../provider/src/config/index.ts';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { RegistryClient } from '../../../provider/src/registry/index.ts';
import { ProvenantError } from '../../../provider/src/types/errors.ts';
import { craneDigest, pushIndex, pushRandomImage } from '../../harness/images.ts';
import {
  startDistributionRegistry,
  startReferrersRegistry,
  type RegistryServer,
} from '../../harness/registry.ts';

const credentials = { username: 'puller', password: 'correct horse' };

function client(registries: RegistryConfig[]): RegistryClient {
  return new RegistryClient({
    registries,
    requestTimeoutMs: 2000,
    maxRetries: 1,
    maxManifestBytes: 4 * 1024 * 1024,
  });
}

const signal = (): AbortSignal => AbortSignal.timeout(5000);

describe('registry client', () => {
  let open: RegistryServer;
  let guarded: RegistryServer;
  let referrers: RegistryServer;

  beforeAll(async () => {
    [open, guarded, referrers] = await Promise.all([
      startDistributionRegistry(),
      startDistributionRegistry({ htpasswd: credentials }),
      startReferrersRegistry(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([open?.stop(), guarded?.stop(), referrers?.stop()]);
  });

  it.each(['oci', 'docker'] as const)(
    'resolves a tag of a %s image to the digest crane reports',
    async (mediaType) => {
      const pushed = await pushRandomImage(open.url, `anon/${mediaType}`, 'v1', { mediaType });
      const c = client([{ host: open.host, insecure: true }]);
      const digest = await c.resolveDigest(parseReference(`${open.host}/anon/${mediaType}:v1`), signal());
      await c.close();
      expect(digest).toBe(pushed.digest);
      expect(await craneDigest(`${open.host}/anon/${mediaType}:v1`, { insecure: true })).toBe(digest);
    },
  );

  it('resolves an image index to the index digest, not a platform image', async () => {
    const index = await pushIndex(referrers.url, 'multi/app', 'v1');
    const c = client([{ host: referrers.host, insecure: true }]);
    const digest = await c.resolveDigest(parseReference(`${referrers.host}/multi/app:v1`), signal());
    await c.close();
    expect(digest).toBe(index.digest);
    expect(index.images.map((i) => i.digest)).not.toContain(digest);
  });

  it('resolves through basic auth with the configured credentials', async () => {
    const pushed = await pushRandomImage(guarded.url, 'private/app', 'v1', { auth: credentials });
    const c = client([{ host: guarded.host, insecure: true, auth: credentials }]);
    expect(await c.resolveDigest(parseReference(`${guarded.host}/private/app:v1`), signal())).toBe(
      pushed.digest,
    );
    await c.close();
  });

  it.each([
    ['wrong credentials', { username: credentials.username, password: 'wrong' }],
    ['no credentials', undefined],
  ])('refuses with REGISTRY_UNAUTHORIZED naming the registry given %s', async (_, auth) => {
    await pushRandomImage(guarded.url, 'private/app', 'v2', { auth: credentials });
    const c = client([{ host: guarded.host, insecure: true, ...(auth === undefined ? {} : { auth }) }]);
    const ref = parseReference(`${guarded.host}/private/app:v2`);
    const error = await c.resolveDigest(ref, signal()).catch((e: unknown) => e);
    await c.close();
    expect(error).toBeInstanceOf(ProvenantError);
    expect((error as ProvenantError).code).toBe('REGISTRY_UNAUTHORIZED');
    expect((error as ProvenantError).message).toContain(
      `registry ${guarded.host} refused access to ${ref.original}`,
    );
  });

  it('reports an unknown tag as REGISTRY_MANIFEST_UNKNOWN, a property of the image', async () => {
    const c = client([{ host: open.host, insecure: true }]);
    const error = await c
      .resolveDigest(parseReference(`${open.host}/anon/none:missing`), signal())
      .catch((e: unknown) => e);
    await c.close();
    expect((error as ProvenantError).code).toBe('REGISTRY_MANIFEST_UNKNOWN');
    expect((error as ProvenantError).transient).toBe(false);
  });

  it('does not speak plain HTTP to a registry that is not marked insecure', async () => {
    const c = client([{ host: open.host, insecure: false }]);
    const error = await c
      .resolveDigest(parseReference(`${open.host}/anon/oci:v1`), signal())
      .catch((e: unknown) => e);
    await c.close();
    // An HTTPS handshake against a plain-HTTP port fails: a transient connection error, never a verdict.
    expect((error as ProvenantError).code).toBe('REGISTRY_UNREACHABLE');
  });

  it('fetches a manifest by digest and checks the bytes against it', async () => {
    const pushed = await pushRandomImage(open.url, 'anon/bydigest', 'v1');
    const c = client([{ host: open.host, insecure: true }]);
    const manifest = await c.fetchManifest(
      parseReference(`${open.host}/anon/bydigest@${pushed.digest}`),
      pushed.digest,
      signal(),
    );
    await c.close();
    expect(manifest.digest).toBe(pushed.digest);
    expect(manifest.body.equals(pushed.manifest)).toBe(true);
  });
});
