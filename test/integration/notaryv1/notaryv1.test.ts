/**
 * The notaryv1 validator against the real thing: images pushed to a loopback docker-registry, signed
 * with the real `notary` client (root, targets and delegation keys) into a real notary-server, and
 * verified end to end, including the attacks Notary's TUF chain exists to stop.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseConfig, type RuleConfig } from '../../../provider/src/config/index.ts';
import { Runtime } from '../../../provider/src/service/index.ts';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { ProvenantError } from '../../../provider/src/types/errors.ts';
import {
  NotaryV1Validator,
  type NotaryV1Options,
} from '../../../provider/src/validators/notaryv1/notaryv1.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import {
  NotaryCli,
  startNotaryServer,
  startReplayProxy,
  type NotaryServer,
  type ReplayProxy,
} from '../../harness/notary.ts';
import { freePort, makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
/** notary-server signs timestamps valid for 14 days; snapshot and targets for years. */
const PAST_TIMESTAMP_EXPIRY_MS = 30 * DAY_MS;

const rule = (options: RuleConfig['with'] = {}): RuleConfig => ({
  pattern: '*',
  validator: 'notary',
  with: options,
});

describe('notaryv1 validator against a real notary-server', () => {
  let registry: RegistryServer;
  let notary: NotaryServer;
  let proxy: ReplayProxy;
  let alice: NotaryCli;
  let mallory: NotaryCli;
  let aliceKey: string;
  const validators: NotaryV1Validator[] = [];

  function validator(
    opts: { host?: string; roots?: { name: string; key: string }[] } & NotaryV1Options = {},
  ): NotaryV1Validator {
    const v = new NotaryV1Validator(
      {
        name: 'notary',
        type: 'notaryv1',
        host: opts.host ?? notary.host,
        cert: notary.caPem,
        trustRoots: opts.roots ?? [{ name: 'default', key: aliceKey }],
      },
      { maxRetries: 0, ...opts },
    );
    validators.push(v);
    return v;
  }

  async function verify(v: NotaryV1Validator, image: string, with_?: RuleConfig['with']) {
    return v.validate({
      image: parseReference(image),
      rule: rule(with_),
      signal: AbortSignal.timeout(10_000),
    });
  }

  async function rejection(
    v: NotaryV1Validator,
    image: string,
    with_?: RuleConfig['with'],
  ): Promise<ProvenantError> {
    const error: unknown = await verify(v, image, with_).then(
      (ok) => new Error(`expected ${image} to be rejected, got ${JSON.stringify(ok)}`),
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ProvenantError);
    const e = error as ProvenantError;
    expect(e.message).toContain(image);
    expect(e.image).toBe(image);
    return e;
  }

  /** Pushes a new image as `repo:tag` and signs exactly its manifest digest with `cli`. */
  async function pushAndSign(
    cli: NotaryCli,
    repo: string,
    tag: string,
    role?: string,
  ): Promise<PushedManifest> {
    const pushed = await pushRandomImage(registry.url, repo, tag);
    await cli.sign(`${registry.host}/${repo}`, tag, pushed.digest, pushed.manifest.length, role);
    return pushed;
  }

  beforeAll(async () => {
    [registry, notary] = await Promise.all([startDistributionRegistry(), startNotaryServer()]);
    proxy = await startReplayProxy(notary);
    [alice, mallory] = await Promise.all([NotaryCli.create(notary), NotaryCli.create(notary)]);
    await alice.init(`${registry.host}/team/app`);
    aliceKey = await alice.rootPublicKeyPem(`${registry.host}/team/app`);
  });
  afterAll(async () => {
    await Promise.all(validators.map((v) => v.close()));
    await Promise.all([proxy?.close(), notary?.stop(), registry?.stop(), alice?.remove(), mallory?.remove()]);
  });

  describe('tags signed in targets', () => {
    let v1: PushedManifest;
    beforeAll(async () => {
      v1 = await pushAndSign(alice, 'team/app', 'v1');
    });

    it('pins a signed tag to the digest the registry serves, naming the trust root', async () => {
      const result = await verify(validator(), `${registry.host}/team/app:v1`);
      expect(result).toEqual({ digest: v1.digest, signers: ['default'] });
    });

    it('admits a digest reference only when a trusted target has that digest', async () => {
      const v = validator();
      expect((await verify(v, `${registry.host}/team/app@${v1.digest}`)).digest).toBe(v1.digest);
      const other = await pushRandomImage(registry.url, 'team/app', 'unsigned-digest');
      const e = await rejection(v, `${registry.host}/team/app@${other.digest}`);
      expect(e.code).toBe('NOTARY_DIGEST_NOT_SIGNED');
    });

    it('rejects a tag+digest reference whose digest is not the one signed for the tag', async () => {
      const other = await pushRandomImage(registry.url, 'team/app', 'v1-other');
      const e = await rejection(validator(), `${registry.host}/team/app:v1@${other.digest}`);
      expect(e.code).toBe('NOTARY_DIGEST_NOT_SIGNED');
      expect(e.message).toContain(v1.digest);
    });

    it("keeps Notary's own tag+digest check and adds the registry's: a tag moved after signing is refused", async () => {
      const signed = await pushAndSign(alice, 'team/app', 'moved');
      await pushRandomImage(registry.url, 'team/app', 'moved'); // the tag moves, Notary still signs `signed`
      const runtime = new Runtime(
        parseConfig(
          `
validators:
  - { name: deny, type: static }
  - name: dct
    type: notaryv1
    host: ${notary.host}
    cert: ${JSON.stringify(notary.caPem)}
    trustRoots: [{ name: default, key: ${JSON.stringify(aliceKey)} }]
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/team/*", validator: dct }
registries:
  - { host: "${registry.host}", insecure: true }
`,
          'notary tag+digest test',
          process.cwd(),
        ),
        'notary tag+digest test',
      );
      try {
        const code = async (key: string): Promise<string> => {
          const outcome = await runtime.verifier.verify(key);
          return outcome.ok ? `admitted ${outcome.verdict.digest}` : outcome.error.code;
        };
        expect(await code(`${registry.host}/team/app:moved@${signed.digest}`)).toBe(
          'VERIFY_TAG_DIGEST_MISMATCH',
        );
        expect(await code(`${registry.host}/team/app:v1@${v1.digest}`)).toBe(`admitted ${v1.digest}`);
        const other = await pushRandomImage(registry.url, 'team/app', 'v1-unsigned-digest');
        expect(await code(`${registry.host}/team/app:v1@${other.digest}`)).toBe('NOTARY_DIGEST_NOT_SIGNED');
      } finally {
        await runtime.close();
      }
    });

    it('rejects an unsigned tag of a signed repository', async () => {
      await pushRandomImage(registry.url, 'team/app', 'unsigned');
      const e = await rejection(validator(), `${registry.host}/team/app:unsigned`);
      expect(e.code).toBe('NOTARY_TAG_NOT_SIGNED');
      expect(e.message).toContain("no tag 'unsigned' found in targets");
    });

    it('rejects an image whose repository has no trust data at all', async () => {
      await pushRandomImage(registry.url, 'team/never-signed', 'v1');
      const e = await rejection(validator(), `${registry.host}/team/never-signed:v1`);
      expect(e.code).toBe('NOTARY_NO_TRUST_DATA');
      expect(e.transient).toBe(false);
    });

    it('rejects trust data once its timestamp has expired', async () => {
      const later = validator({ now: () => new Date(Date.now() + PAST_TIMESTAMP_EXPIRY_MS) });
      const e = await rejection(later, `${registry.host}/team/app:v1`);
      expect(e.code).toBe('NOTARY_EXPIRED');
      expect(e.message).toMatch(/expected timestamp to be valid at .*, found it expired at/);
    });

    it('rejects trust data whose root certificate has expired', async () => {
      // notary makes root certificates valid for 10 years.
      const muchLater = validator({ now: () => new Date(Date.now() + 11 * 365 * DAY_MS) });
      const e = await rejection(muchLater, `${registry.host}/team/app:v1`);
      expect(e.code).toBe('NOTARY_EXPIRED');
      expect(e.message).toContain('expected a valid root certificate for trust root "default"');
    });
  });

  describe('root pinning', () => {
    it('rejects trust data whose root is not signed by the pinned key', async () => {
      const gun = `${registry.host}/team/mallory`;
      await mallory.init(gun);
      await pushAndSign(mallory, 'team/mallory', 'v1');
      const e = await rejection(validator(), `${gun}:v1`);
      expect(e.code).toBe('NOTARY_ROOT_NOT_TRUSTED');
      expect(e.message).toContain('trust root "default"');
      // The same data verifies for whoever pins mallory's root: the rejection is about the pin.
      const malloryKey = await mallory.rootPublicKeyPem(gun);
      const pinned = validator({ roots: [{ name: 'mallory', key: malloryKey }] });
      expect((await verify(pinned, `${gun}:v1`, { trustRoot: 'mallory' })).signers).toEqual(['mallory']);
    });

    it('requires every trust root to have signed root.json when the rule says "*"', async () => {
      const gun = `${registry.host}/team/mallory`;
      const both = validator({
        roots: [
          { name: 'alice', key: aliceKey },
          { name: 'mallory', key: await mallory.rootPublicKeyPem(gun) },
        ],
      });
      const e = await rejection(both, `${gun}:v1`, { trustRoot: '*' });
      expect(e.code).toBe('NOTARY_ROOT_NOT_TRUSTED');
      expect(e.message).toContain('trust root "alice"');
    });

    it("rejects another repository's trust data signed with the same root key", async () => {
      // notary reuses a trust dir's root key for every repository; the root certificate names the GUN.
      const copy = `${registry.host}/team/app-copy`;
      proxy.alias(copy, `${registry.host}/team/app`);
      const e = await rejection(validator({ host: proxy.host }), `${copy}:v1`);
      expect(e.code).toBe('NOTARY_ROOT_NOT_TRUSTED');
      expect(e.message).toContain(`to be issued for ${copy}, found CN "${registry.host}/team/app"`);
    });

    it('verifies a repository whose root key is RSA (rsa-x509 root, RSA-PSS signatures)', async () => {
      const carol = await NotaryCli.create(notary);
      try {
        const gun = `${registry.host}/team/rsa`;
        await carol.init(gun, await carol.makeRsaRootKey());
        const pushed = await pushAndSign(carol, 'team/rsa', 'v1');
        const key = await carol.rootPublicKeyPem(gun);
        expect(key).toContain('BEGIN PUBLIC KEY');
        const v = validator({ roots: [{ name: 'default', key }] });
        expect((await verify(v, `${gun}:v1`)).digest).toBe(pushed.digest);
      } finally {
        await carol.remove();
      }
    });
  });

  describe('delegations', () => {
    const repo = 'team/delegated';
    let released: PushedManifest;
    let other: PushedManifest;
    let both: PushedManifest;
    const image = (tagOrDigest: string): string =>
      `${registry.host}/${repo}${tagOrDigest.startsWith('sha256:') ? '@' : ':'}${tagOrDigest}`;

    beforeAll(async () => {
      const gun = `${registry.host}/${repo}`;
      await alice.init(gun);
      await alice.addDelegation(gun, 'targets/releases');
      await alice.addDelegation(gun, 'targets/other');
      released = await pushAndSign(alice, repo, 'released', 'targets/releases');
      other = await pushAndSign(alice, repo, 'other-only', 'targets/other');
      both = await pushAndSign(alice, repo, 'both', 'targets/releases');
      await alice.sign(gun, 'both', both.digest, both.manifest.length, 'targets/other');
    });

    it('pins a tag signed by a required delegation (the targets/ prefix is optional)', async () => {
      const v = validator();
      expect((await verify(v, image('released'), { delegations: ['releases'] })).digest).toBe(
        released.digest,
      );
      expect((await verify(v, image('released'), { delegations: ['targets/releases'] })).digest).toBe(
        released.digest,
      );
    });

    it('reads targets/releases when the rule names no delegation and the repository has it', async () => {
      expect((await verify(validator(), image('released'))).digest).toBe(released.digest);
    });

    it('rejects a tag signed only by a delegation the rule does not require', async () => {
      const e = await rejection(validator(), image('other-only'), { delegations: ['releases'] });
      expect(e.code).toBe('NOTARY_DELEGATION_NOT_SIGNED');
      expect(e.message).toContain('signed only by targets/other');
    });

    it('requires every listed delegation to sign the tag, and accepts when all of them did', async () => {
      const v = validator();
      const e = await rejection(v, image('released'), { delegations: ['releases', 'other'] });
      expect(e.code).toBe('NOTARY_DELEGATION_NOT_SIGNED');
      expect(e.message).toContain('not signed by targets/other');
      expect((await verify(v, image('both'), { delegations: ['releases', 'other'] })).digest).toBe(
        both.digest,
      );
    });

    it('rejects a rule requiring a delegation the repository does not have', async () => {
      const e = await rejection(validator(), image('released'), { delegations: ['qa'] });
      expect(e.code).toBe('NOTARY_DELEGATION_NOT_FOUND');
      expect(e.message).toContain('targets/qa');
    });

    it('admits a digest only if the required delegation signed a target with it', async () => {
      const v = validator();
      expect((await verify(v, image(released.digest), { delegations: ['releases'] })).digest).toBe(
        released.digest,
      );
      const e = await rejection(v, image(other.digest), { delegations: ['releases'] });
      expect(e.code).toBe('NOTARY_DIGEST_NOT_SIGNED');
    });
  });

  describe('rollback', () => {
    it('rejects older trust data replayed after this replica saw newer data', async () => {
      const repo = 'team/rollback';
      const gun = `${registry.host}/${repo}`;
      await alice.init(gun);
      const first = await pushAndSign(alice, repo, 'v1');
      await proxy.freeze(gun);
      await pushAndSign(alice, repo, 'v2');
      await alice.unsign(gun, 'v1');

      const v = validator({ host: proxy.host });
      // Through the honest proxy: v1 is no longer signed, v2 is.
      expect((await rejection(v, `${gun}:v1`)).code).toBe('NOTARY_TAG_NOT_SIGNED');
      proxy.replay(true);
      try {
        // The replayed timestamp and snapshot still carry valid signatures and sign v1 again.
        const e = await rejection(v, `${gun}:v1`);
        expect(e.code).toBe('NOTARY_ROLLBACK');
        expect(e.message).toMatch(
          /expected timestamp version \d+ or later \(already seen\), found version \d+/,
        );
        // A replica that never saw the newer data cannot tell; this is why versions are remembered.
        const fresh = validator({ host: proxy.host });
        expect((await verify(fresh, `${gun}:v1`)).digest).toBe(first.digest);
      } finally {
        proxy.replay(false);
      }
    });
  });

  it('reports an unreachable Notary server as a transient failure', async () => {
    const port = await freePort();
    const e = await rejection(validator({ host: `127.0.0.1:${port}` }), `${registry.host}/team/app:v1`);
    expect(e.code).toBe('NOTARY_UNREACHABLE');
    expect(e.transient).toBe(true);
  });
  it('answers /v1/verify and /v1/mutate from a provenant process configured with a notaryv1 validator', async () => {
    const signed = await pushAndSign(alice, 'team/app', 'served');
    await pushRandomImage(registry.url, 'team/app', 'served-unsigned');
    const dir = await makeTempDir('notary-provenant');
    const configPath = path.join(dir, 'provenant.yaml');
    const indent = (pem: string): string => pem.trim().replace(/\n/g, '\n          ');
    await writeFile(
      configPath,
      `
validators:
  - name: default
    type: static
  - name: dct
    type: notaryv1
    host: ${notary.host}
    cert: |
          ${indent(notary.caPem)}
    trustRoots:
      - name: alice
        key: |
          ${indent(aliceKey)}
policy:
  - pattern: "*:*"
  - pattern: "${registry.host}/team/*"
    validator: dct
    with: { trustRoot: alice }
server: { host: 127.0.0.1, port: 0 }
`,
    );
    const provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
    const dispatcher = devCertAgent(provenant);
    try {
      const good = `${registry.host}/team/app:served`;
      const bad = `${registry.host}/team/app:served-unsigned`;
      const call = async (
        route: string,
      ): Promise<{ items: { key: string; value: unknown; error: string }[] }> => {
        const res = await request(`${provenant.url}${route}`, {
          method: 'POST',
          dispatcher,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
            kind: 'ProviderRequest',
            request: { keys: [good, bad] },
          }),
        });
        expect(res.statusCode, provenant.output()).toBe(200);
        return (
          (await res.body.json()) as { response: { items: { key: string; value: unknown; error: string }[] } }
        ).response;
      };
      const verified = await call('/v1/verify');
      expect(verified.items[0]).toEqual({
        key: good,
        value: expect.objectContaining({
          digest: signed.digest,
          validator: 'dct',
          signers: ['alice'],
        }) as unknown,
        error: '',
      });
      expect(verified.items[1]?.error).toMatch(
        new RegExp(`^NOTARY_TAG_NOT_SIGNED: .*${bad.replace(/[.]/g, '\\.')}`),
      );
      const mutated = await call('/v1/mutate');
      expect(mutated.items[0]).toEqual({ key: good, value: `${good}@${signed.digest}`, error: '' });
    } finally {
      await dispatcher.close();
      await provenant.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
