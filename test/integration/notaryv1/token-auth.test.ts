/**
 * notary-server with token authentication (its docker/distribution token access controller): the
 * validator answers the Bearer challenge with a token from the realm, as Docker's client does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { rm } from 'node:fs/promises';
import { createValidator } from '../../../provider/src/validators/index.ts';
import { RegistryClient } from '../../../provider/src/registry/index.ts';
import { issueCert, makeCa } from '../../harness/pki.ts';
import { makeTempDir } from '../../harness/process.ts';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { ProvenantError } from '../../../provider/src/types/errors.ts';
import { NotaryV1Validator } from '../../../provider/src/validators/notaryv1/notaryv1.ts';
import { pushRandomImage } from '../../harness/images.ts';
import {
  NotaryCli,
  startNotaryServer,
  startTokenServer,
  type NotaryServer,
  type TokenServer,
} from '../../harness/notary.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const signer = { username: 'signer', password: 'signer-secret' };

describe('notaryv1 validator against a notary-server with token auth', () => {
  let registry: RegistryServer;
  let tokens: TokenServer;
  let notary: NotaryServer;
  let cli: NotaryCli;
  let gun: string;
  let digest: string;
  const validators: NotaryV1Validator[] = [];

  function validator(key: string): NotaryV1Validator {
    const v = new NotaryV1Validator(
      {
        name: 'dct',
        type: 'notaryv1',
        host: notary.host,
        cert: notary.caPem,
        trustRoots: [{ name: 'default', key }],
      },
      // The token server is on another loopback port: the egress policy needs a registries: entry naming it.
      { maxRetries: 0, registries: [{ host: new URL(tokens.auth.realm).host, insecure: true }] },
    );
    validators.push(v);
    return v;
  }

  beforeAll(async () => {
    [registry, tokens] = await Promise.all([startDistributionRegistry(), startTokenServer(signer)]);
    notary = await startNotaryServer({ tokenAuth: tokens.auth });
    cli = await NotaryCli.create(notary, signer);
    gun = `${registry.host}/team/guarded`;
    const pushed = await pushRandomImage(registry.url, 'team/guarded', 'v1');
    digest = pushed.digest;
    await cli.init(gun);
    await cli.sign(gun, 'v1', pushed.digest, pushed.manifest.length);
  });
  afterAll(async () => {
    await Promise.all(validators.map((v) => v.close()));
    await Promise.all([notary?.stop(), tokens?.close(), registry?.stop(), cli?.remove()]);
  });

  it('signs through the token server with the signer credentials (the harness works)', () => {
    expect(tokens.requests.some((r) => r.authenticated && r.scope.includes('push'))).toBe(true);
  });

  it('fetches a pull token from the realm and verifies the signed tag', async () => {
    const before = tokens.requests.length;
    const v = validator(await cli.rootPublicKeyPem(gun));
    const result = await v.validate({
      image: parseReference(`${gun}:v1`),
      rule: { pattern: '*', validator: 'dct' },
      signal: AbortSignal.timeout(10_000),
    });
    expect(result.digest).toBe(digest);
    // One anonymous token for the GUN's pull scope, reused for every role.
    expect(tokens.requests.slice(before)).toEqual([
      { scope: `repository:${gun}:pull`, authenticated: false },
    ]);
  });

  it('reports a token server that refuses as NOTARY_UNAUTHORIZED, naming the image', async () => {
    tokens.refuse = true;
    try {
      const v = validator(await cli.rootPublicKeyPem(gun));
      const err: unknown = await v
        .validate({
          image: parseReference(`${gun}:v1`),
          rule: { pattern: '*', validator: 'dct' },
          signal: AbortSignal.timeout(10_000),
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProvenantError);
      expect((err as ProvenantError).code).toBe('NOTARY_UNAUTHORIZED');
      expect((err as ProvenantError).message).toContain(`${gun}:v1`);
    } finally {
      tokens.refuse = false;
    }
  });
});

describe('notaryv1 validator with credentials for a token server that requires them', () => {
  let dir: string;
  let registry: RegistryServer;
  let tokens: TokenServer;
  let notary: NotaryServer;
  let cli: NotaryCli;
  let gun: string;
  let digest: string;
  let rootKey: string;
  const client = new RegistryClient({
    registries: [],
    requestTimeoutMs: 2000,
    maxRetries: 0,
    maxManifestBytes: 1 << 20,
  });

  beforeAll(async () => {
    dir = await makeTempDir('notary-creds');
    // One CA for the Notary server and its (HTTPS) token server, as the validator's `cert`.
    const ca = await makeCa(dir, 'notary-ca');
    const tokenTls = await issueCert(dir, ca, 'token-server', 'server');
    [registry, tokens] = await Promise.all([
      startDistributionRegistry(),
      startTokenServer(signer, { tls: tokenTls, pullNeedsAuth: true }),
    ]);
    notary = await startNotaryServer({ tokenAuth: tokens.auth, ca });
    cli = await NotaryCli.create(notary, signer);
    gun = `${registry.host}/team/private`;
    const pushed = await pushRandomImage(registry.url, 'team/private', 'v1');
    digest = pushed.digest;
    await cli.init(gun);
    await cli.sign(gun, 'v1', pushed.digest, pushed.manifest.length);
    rootKey = await cli.rootPublicKeyPem(gun);
  });
  afterAll(async () => {
    await client.close();
    await Promise.all([notary?.stop(), tokens?.close(), registry?.stop(), cli?.remove()]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Credentials on the token server's own registries: entry, or on the Notary host's. */
  const build = (
    auth?: { username: string; password: string },
    on: 'token server' | 'notary' = 'token server',
  ) => {
    const tokenHost = new URL(tokens.auth.realm).host;
    return createValidator(
      {
        name: 'dct',
        type: 'notaryv1',
        host: notary.host,
        cert: notary.caPem,
        trustRoots: [{ name: 'default', key: rootKey }],
      },
      {
        registry: client,
        network: { requestTimeoutMs: 3000, maxRetries: 0 },
        registries:
          on === 'token server'
            ? [{ host: tokenHost, insecure: false, ...(auth === undefined ? {} : { auth }) }]
            : [
                { host: tokenHost, insecure: false },
                { host: notary.host, insecure: false, ...(auth === undefined ? {} : { auth }) },
              ],
      },
    );
  };
  const validate = (v: ReturnType<typeof build>) =>
    v
      .validate({
        image: parseReference(`${gun}:v1`),
        rule: { pattern: '*', validator: 'dct' },
        signal: AbortSignal.timeout(10_000),
      })
      .catch((e: unknown) => e);

  it("never sends the Notary host's credentials to a token server on another origin", async () => {
    const v = build(signer, 'notary');
    const before = tokens.requests.length;
    const result = await validate(v);
    await v.close?.();
    expect(result).toBeInstanceOf(ProvenantError);
    expect((result as ProvenantError).code).toBe('NOTARY_UNAUTHORIZED');
    expect(tokens.requests.slice(before)).toEqual([
      { scope: `repository:${gun}:pull`, authenticated: false },
    ]);
  });

  it("sends the token server its own registries: entry's credentials and verifies", async () => {
    const v = build(signer);
    const before = tokens.requests.length;
    const result = await validate(v);
    await v.close?.();
    expect(result).toMatchObject({ digest });
    expect(tokens.requests.slice(before)).toEqual([{ scope: `repository:${gun}:pull`, authenticated: true }]);
  });

  it('reports missing credentials as NOTARY_UNAUTHORIZED naming the image', async () => {
    const v = build();
    const result = await validate(v);
    await v.close?.();
    expect(result).toBeInstanceOf(ProvenantError);
    expect((result as ProvenantError).code).toBe('NOTARY_UNAUTHORIZED');
    expect((result as ProvenantError).message).toContain(`${gun}:v1`);
  });
});
