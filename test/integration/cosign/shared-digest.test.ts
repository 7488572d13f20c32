/**
 * Signatures belong to `repository@digest`: tags of one image (Gatekeeper's audit sends many) share one
 * fetch and one verification of them — never across rules, trust roots or trusted roots, never after a
 * failure. Real cosign signatures in a loopback docker-registry, counted at the registry by the proxy.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../../provider/src/config/index.ts';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { RegistryClient } from '../../../provider/src/registry/index.ts';
import { SigstoreTrust } from '../../../provider/src/trust/sigstore/index.ts';
import { ProvenantError } from '../../../provider/src/types/errors.ts';
import { CosignValidator } from '../../../provider/src/validators/index.ts';
import { pushTags } from '../../bench/fixtures.ts';
import { cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { startCountingProxy, type CountingProxy } from '../../harness/counting-proxy.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

type CosignConfig = Extract<Config['validators'][number], { type: 'cosign' }>;
type RuleOptions = NonNullable<Config['policy'][number]['with']>;

const TAGS = 20;
const OFFLINE = { verifyInTransparencyLog: false } as const;

describe('cosign validator: tags of one digest share its signatures', () => {
  let dir: string;
  let registry: RegistryServer;
  let proxy: CountingProxy;
  let client: RegistryClient;
  let trusted: CosignKey;
  let stranger: CosignKey;
  let image: PushedManifest;
  const repo = 'shared/app';

  /** The `signed` validator as config loading builds it: roots `trusted` and `other` (the stranger). */
  function validator(ttl?: { admitted: number; denied: number }, signedBy = trusted): CosignValidator {
    const config = parseConfig(
      [
        'validators:',
        '  - name: signed',
        '    type: cosign',
        '    trustRoots:',
        `      - { name: default, key: ${JSON.stringify(signedBy.publicKey)} }`,
        `      - { name: other, key: ${JSON.stringify(stranger.publicKey)} }`,
        'policy: [{ pattern: "*:*", validator: signed }]',
      ].join('\n'),
      'test.yaml',
      dir,
    );
    return new CosignValidator(config.validators[0] as CosignConfig, {
      registry: client,
      sigstore: new SigstoreTrust(),
      verdictTtlSeconds: ttl,
    });
  }

  const tag = (i: number): string => `${proxy.host}/${repo}:t${i}`;

  function check(v: CosignValidator, reference: string, options: RuleOptions = OFFLINE) {
    return v.validate({
      image: parseReference(reference),
      rule: { pattern: '*:*', validator: 'signed', with: options },
      signal: AbortSignal.timeout(20_000),
    });
  }

  /** The error a validation that must fail fails with. */
  async function denial(result: Promise<unknown>): Promise<ProvenantError> {
    const err = await result.then(
      () => new Error('expected a denial, the image was admitted'),
      (e: unknown) => e,
    );
    if (!(err instanceof ProvenantError)) throw err;
    return err;
  }

  /** Signature requests (everything but the tag resolves) the registry saw since the last call. */
  function signatureRequests(): number {
    return proxy.take().log.filter((r) => !/\/manifests\/t\d+$/.test(r.path)).length;
  }

  beforeAll(async () => {
    [dir, registry] = await Promise.all([makeTempDir('shared-digest'), startDistributionRegistry()]);
    proxy = await startCountingProxy(registry.url);
    [trusted, stranger] = await Promise.all([cosignKeyPair(dir, 'trusted'), cosignKeyPair(dir, 'stranger')]);
    image = await pushRandomImage(registry.url, repo, 't0');
    await cosignSign(`${proxy.host}/${repo}@${image.digest}`, trusted);
    await pushTags(
      registry.url,
      repo,
      image,
      Array.from({ length: TAGS - 1 }, (_, i) => `t${i + 1}`),
    );
    client = new RegistryClient({
      registries: [{ host: proxy.host, insecure: true }],
      requestTimeoutMs: 10_000,
      maxRetries: 0,
      maxManifestBytes: 4 << 20,
    });
    // The referrers API probe (remembered per registry) is not part of what is shared.
    await check(validator(), `${proxy.host}/${repo}@${image.digest}`);
    proxy.take();
  }, 120_000);

  beforeEach(() => void proxy.take());

  afterAll(async () => {
    await client?.close();
    await proxy?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('verifies 20 tags asked at once with one fetch of the signatures (2 requests, not 40)', async () => {
    const v = validator({ admitted: 60, denied: 5 });
    const results = await Promise.all(Array.from({ length: TAGS }, (_, i) => check(v, tag(i))));
    expect(new Set(results.map((r) => r.digest))).toEqual(new Set([image.digest]));
    // the .sig manifest and the referrers tag; the payload blob is cosign's, predicted (signatures.ts)
    expect(signatureRequests()).toBe(2);
  });

  it('answers later tags and the digest reference from the remembered result while the verdict TTL lasts', async () => {
    const v = validator({ admitted: 60, denied: 5 });
    for (let i = 0; i < TAGS; i++) await check(v, tag(i));
    await check(v, `${proxy.host}/${repo}@${image.digest}`);
    expect(signatureRequests()).toBe(2);
  });

  it('remembers nothing once settled when the verdict cache keeps nothing (no TTL given)', async () => {
    const v = validator();
    await check(v, tag(0));
    await check(v, tag(1));
    expect(signatureRequests()).toBe(4);
  });

  it('never answers one rule with a result another rule earned: the key includes the rule options', async () => {
    const v = validator({ admitted: 60, denied: 60 });
    expect((await check(v, tag(0))).signers).toEqual(['default']);
    // Same validator, same digest, a rule that trusts only the stranger's key: denied, not shared.
    const denied = await denial(check(v, tag(1), { ...OFFLINE, trustRoot: 'other' }));
    expect(denied.code).toBe('COSIGN_SIGNATURE_INVALID');
    expect(denied.message).toContain(`${repo}:t1`);
  });

  it('never shares between validators with other trust roots (a reloaded config)', async () => {
    await check(validator({ admitted: 60, denied: 60 }), tag(0));
    const rotated = validator({ admitted: 60, denied: 60 }, stranger);
    await expect(check(rotated, tag(1))).rejects.toMatchObject({ code: 'COSIGN_SIGNATURE_INVALID' });
  });

  it('names the tag it was asked for in a shared denial, fetched once for both', async () => {
    const v = validator({ admitted: 60, denied: 60 });
    const other = { ...OFFLINE, trustRoot: 'other' };
    const [a, b] = await Promise.all([denial(check(v, tag(2), other)), denial(check(v, tag(3), other))]);
    expect(a.message).toContain(`${repo}:t2 (`);
    expect(b.message).toContain(`${repo}:t3 (`);
    expect(b.code).toBe(a.code);
    expect(signatureRequests()).toBe(2);
  });
});
