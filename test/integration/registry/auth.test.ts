/**
 * Every way a registry can ask who we are, against real servers on loopback: anonymous, basic (htpasswd)
 * and bearer tokens from distribution's own token server, with each registry's private CA.
 */
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryConfig } from '../../../provider/src/config/index.ts';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { craneCopy, craneDigest, pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { copyImage } from '../../harness/oci-push.ts';
import { issueCert, makeCa, type CertFiles } from '../../harness/pki.ts';
import { codedFailure, testRegistryClient, testSignal } from '../../harness/registry-client.ts';
import { makeTempDir } from '../../harness/process.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { startTokenServer, type TokenServer } from '../../harness/token-server.ts';

const alice = { username: 'alice', password: 'correct horse battery' };

describe('registry authentication against real servers', () => {
  let dir: string;
  let ca: CertFiles;
  let open: RegistryServer;
  let basic: RegistryServer;
  let tokens: TokenServer;
  let tokenRegistry: RegistryServer;
  let pushed: PushedManifest;

  beforeAll(async () => {
    dir = await makeTempDir('auth-test');
    ca = await makeCa(dir, 'registry-ca');
    const serving = await issueCert(dir, ca, 'registry', 'server');
    const tls = { cert: serving.certPem, key: serving.keyPem };
    tokens = await startTokenServer(ca, [alice]);
    [open, basic, tokenRegistry] = await Promise.all([
      startDistributionRegistry(),
      startDistributionRegistry({ htpasswd: alice, tls }),
      startDistributionRegistry({ token: tokens.auth, tls }),
    ]);
    // One image, byte for byte the same in all three registries.
    pushed = await pushRandomImage(open.url, 'alice/app', 'v1');
    // crane for the basic registry; the harness's own push for the token one (crane refuses realms
    // on private addresses, and loopback is one).
    await craneCopy(pushed.reference, `${basic.host}/alice/app:v1`, { auth: alice, ca: ca.cert });
    await copyImage(open.url, 'alice/app', 'v1', {
      registryUrl: tokenRegistry.url,
      repository: 'alice/app',
      auth: alice,
      ca: ca.certPem,
    });
  });
  afterAll(async () => {
    await Promise.all([open?.stop(), basic?.stop(), tokenRegistry?.stop(), tokens?.stop()]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /**
   * The token server is another origin (another loopback port): the egress policy needs a registries:
   * entry naming it, and it gets only that entry's credentials, never the registry's.
   */
  const tokenServerEntry = (auth = alice): RegistryConfig => ({
    host: new URL(tokens.auth.realm).host,
    insecure: false,
    ca: ca.cert,
    auth,
  });
  const configs = (): Record<string, RegistryConfig[]> => ({
    anonymous: [{ host: open.host, insecure: true }],
    basic: [{ host: basic.host, insecure: false, ca: ca.cert, auth: alice }],
    token: [{ host: tokenRegistry.host, insecure: false, ca: ca.cert, auth: alice }, tokenServerEntry()],
  });
  const hostOf = (kind: string): string =>
    ({ anonymous: open.host, basic: basic.host, token: tokenRegistry.host })[kind] ?? '';

  it.each(['anonymous', 'basic', 'token'])(
    '%s access resolves the digest the registry reports',
    async (kind) => {
      const c = testRegistryClient(configs()[kind] ?? []);
      const ref = parseReference(`${hostOf(kind)}/alice/app:v1`);
      try {
        const digest = await c.resolveDigest(ref, testSignal());
        expect(digest).toBe(pushed.digest);
        // crane cannot follow a loopback token realm; the push itself checked the registry's digest.
        if (kind !== 'token')
          expect(await craneDigest(`${hostOf(kind)}/alice/app:v1`, { insecure: true, auth: alice })).toBe(
            digest,
          );
        // Manifests by digest and blobs go through the same auth (a cached token for the scope).
        const manifest = await c.fetchManifest(ref, digest, testSignal());
        const config = manifest.config;
        expect(config).toBeDefined();
        const blob = await c.fetchBlob(ref, config!, testSignal());
        expect(blob.length).toBe(config!.size);
      } finally {
        await c.close();
      }
    },
  );

  it('reports a wrong password to the token server as REGISTRY_UNAUTHORIZED naming the registry', async () => {
    const c = testRegistryClient([
      { host: tokenRegistry.host, insecure: false, ca: ca.cert, auth: alice },
      tokenServerEntry({ ...alice, password: 'wrong' }),
    ]);
    const error = await codedFailure(
      c.resolveDigest(parseReference(`${tokenRegistry.host}/alice/app:v1`), testSignal()),
    );
    await c.close();
    expect(error.code).toBe('REGISTRY_UNAUTHORIZED');
    expect(error.message).toContain(`registry ${tokenRegistry.host} refused access`);
    expect(error.message).toContain('token server');
    expect(error.transient).toBe(false);
  });

  it('reports a token without pull access to the repository as REGISTRY_UNAUTHORIZED', async () => {
    // The token server grants alice only alice/*; for bob/app it issues a token with no access.
    const c = testRegistryClient(configs()['token'] ?? []);
    const error = await codedFailure(
      c.resolveDigest(parseReference(`${tokenRegistry.host}/bob/app:v1`), testSignal()),
    );
    await c.close();
    expect(error.code).toBe('REGISTRY_UNAUTHORIZED');
    expect(error.message).toContain('bob/app');
  });

  it('reports a wrong basic password as REGISTRY_UNAUTHORIZED naming the registry', async () => {
    const c = testRegistryClient([
      { host: basic.host, insecure: false, ca: ca.cert, auth: { ...alice, password: 'nope' } },
    ]);
    const error = await codedFailure(
      c.resolveDigest(parseReference(`${basic.host}/alice/app:v1`), testSignal()),
    );
    await c.close();
    expect(error.code).toBe('REGISTRY_UNAUTHORIZED');
    expect(error.message).toContain(`registry ${basic.host} refused access to ${basic.host}/alice/app:v1`);
  });

  it("refuses a registry whose certificate does not chain to the registry's configured CA", async () => {
    const otherDir = path.join(dir, 'other');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(otherDir);
    const otherCa = await makeCa(otherDir, 'other-ca');
    const c = testRegistryClient([{ host: basic.host, insecure: false, ca: otherCa.cert, auth: alice }]);
    const error = await codedFailure(
      c.resolveDigest(parseReference(`${basic.host}/alice/app:v1`), testSignal()),
    );
    await c.close();
    expect(error.code).toBe('REGISTRY_UNREACHABLE');
    // The TLS failure stays server-side (the cause): a pod's denial must not describe the network.
    expect(error.message).toBe(
      `registry ${basic.host} could not be connected to for ${basic.host}/alice/app:v1`,
    );
    expect(
      String((error.cause as Error).message) + String((error.cause as NodeJS.ErrnoException).code),
    ).toMatch(/certificate|CERT|SIGNATURE/);
  });
});
