/**
 * The notation validator against signatures the real notation CLI (v1.3.2) makes, on olareg (referrers
 * API) and docker-registry (referrers tag fallback), through the same Runtime `provenant serve` builds.
 * Every case is also given to the real `notation verify` with the equivalent trustpolicy.json: both must
 * reach the same verdict (the table at the end).
 */
import { X509Certificate } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../provider/src/config/index.ts';
import { request } from 'undici';
import { buildServer } from '../../../provider/src/http/index.ts';
import { checkRevocation } from '../../../provider/src/trust/notation/revocation.ts';
import { createLogger, Metrics } from '../../../provider/src/observability/index.ts';
import { Runtime, type Outcome } from '../../../provider/src/service/index.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import {
  notationChainSigner,
  notationSign,
  notationTestSigner,
  notationVerifies,
  notationVerifiesWithPolicy,
  issueLeaf,
  revokeLeaf,
  startCrlServer,
  startOcspResponder,
  type ChainSigner,
  type NotationSigner,
  type NotationVerifyPolicy,
} from '../../harness/notation.ts';
import { pushBlob, pushManifest, sha256Digest } from '../../harness/oci-push.ts';
import { freePort, LOOPBACK_HOST, makeTempDir } from '../../harness/process.ts';
import { startTimestampAuthority, type TimestampAuthority } from '../../harness/tsa.ts';
import {
  startDistributionRegistry,
  startReferrersRegistry,
  type RegistryServer,
} from '../../harness/registry.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** How long the short-lived leaf certificate stays valid after it is made. */
const SHORT_VALIDITY_MS = 6_000;
const EXPIRY_POLL_MS = 200;

/** A trustpolicy.json for the `policy-file` validator: its stores name that validator's trust roots. */
function trustPolicyFor(host: string): unknown {
  const policy = (name: string, verification: object, stores: string[], identities: string[]): object => ({
    name,
    registryScopes: [`${host}/${name}/app`],
    signatureVerification: verification,
    trustStores: stores,
    trustedIdentities: identities,
  });
  return {
    version: '1.0',
    trustPolicies: [
      policy(
        'tp-identity',
        { level: 'strict' },
        ['ca:test'],
        ['x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=test'],
      ),
      policy(
        'tp-stranger-identity',
        { level: 'strict' },
        ['ca:test'],
        ['x509.subject: C=US, ST=WA, O=Notary, CN=someone else'],
      ),
      { name: 'tp-skip', registryScopes: [`${host}/tp-skip/app`], signatureVerification: { level: 'skip' } },
      policy('tp-override', { level: 'strict', override: { authenticity: 'log' } }, ['ca:stranger'], ['*']),
    ],
  };
}

interface Row {
  readonly case: string;
  readonly provenant: string;
  readonly notation: 'verified' | 'rejected';
}

describe('notation validator, signatures made by the notation CLI', () => {
  let olareg: RegistryServer;
  let distribution: RegistryServer;
  let dir: string;
  let test: NotationSigner;
  let stranger: NotationSigner;
  let chain: NotationSigner;
  let shortLived: ChainSigner;
  let stamped: ChainSigner;
  let tsa: TimestampAuthority;
  /** Signers whose leaf names an OCSP responder or a CRL, and the servers that answer for them. */
  let revocation: Record<
    'ocsp-good' | 'ocsp-revoked' | 'crl-revoked' | 'unreachable' | 'unlisted',
    ChainSigner
  >;
  const revocationServers: { stop(): Promise<void> }[] = [];
  let runtime: Runtime;
  const table: Row[] = [];
  let trustPolicy: unknown;

  /** Provenant's outcome and `notation verify`'s, which must agree; recorded in the table. */
  async function bothVerdicts(
    name: string,
    reference: string,
    policy: NotationVerifyPolicy,
  ): Promise<Outcome> {
    const [outcome, verified] = await Promise.all([
      runtime.verifier.verify(reference),
      notationVerifies(dir, reference, policy),
    ]);
    table.push({
      case: name,
      provenant: outcome.ok ? 'admitted' : outcome.error.code,
      notation: verified ? 'verified' : 'rejected',
    });
    expect(outcome.ok, `${name}: Provenant and notation verify disagree`).toBe(verified);
    return outcome;
  }

  async function signed(
    registry: RegistryServer,
    repository: string,
    signer: NotationSigner | undefined,
    format: 'jws' | 'cose' = 'jws',
  ): Promise<{ image: PushedManifest; reference: string }> {
    const image = await pushRandomImage(registry.url, repository, 'v1');
    const reference = `${registry.host}/${repository}@${image.digest}`;
    if (signer !== undefined)
      await notationSign(signer, reference, { format, referrersApi: registry === olareg });
    return { image, reference };
  }

  beforeAll(async () => {
    [olareg, distribution, dir] = await Promise.all([
      startReferrersRegistry(),
      startDistributionRegistry(),
      makeTempDir('notation'),
    ]);
    [test, stranger, chain, shortLived, stamped, tsa] = await Promise.all([
      notationTestSigner(dir, 'test'),
      notationTestSigner(dir, 'stranger'),
      notationChainSigner(dir, 'chain'),
      notationChainSigner(dir, 'short'),
      notationChainSigner(dir, 'stamped'),
      startTimestampAuthority(dir),
    ]);
    const [ocspGoodPort, ocspRevokedPort, crlPort, closedPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const local = (port: number): string => `http://${LOOPBACK_HOST}:${port}`;
    const [ocspGood, ocspRevoked, crlRevoked, unreachable, unlisted] = await Promise.all([
      notationChainSigner(dir, 'ocsp-good', { ocspUrl: local(ocspGoodPort) }),
      notationChainSigner(dir, 'ocsp-revoked', { ocspUrl: local(ocspRevokedPort) }),
      notationChainSigner(dir, 'crl-revoked', { crlUrl: `${local(crlPort)}/int.crl` }),
      notationChainSigner(dir, 'unreachable', { ocspUrl: local(closedPort) }),
      // A responder host no registries: entry names: loopback, so the egress policy refuses it.
      notationChainSigner(dir, 'unlisted', { ocspUrl: `http://localhost:${ocspGoodPort}` }),
    ]);
    revocation = {
      'ocsp-good': ocspGood,
      'ocsp-revoked': ocspRevoked,
      'crl-revoked': crlRevoked,
      unreachable,
      unlisted,
    };
    await Promise.all([revokeLeaf(ocspRevoked), revokeLeaf(crlRevoked)]);
    revocationServers.push(
      ...(await Promise.all([
        startOcspResponder(ocspGood, ocspGoodPort),
        startOcspResponder(ocspRevoked, ocspRevokedPort),
        startCrlServer(crlRevoked, crlPort),
      ])),
    );
    const root = (name: string, signer: NotationSigner): string =>
      `      - { name: ${name}, cert: ${JSON.stringify(signer.trustedPem)} }`;
    const rules = [olareg, distribution].flatMap(({ host }) => [
      `  - { pattern: "${host}/test/*", validator: notation, with: { trustRoot: test } }`,
      `  - { pattern: "${host}/any/*", validator: notation, with: { trustRoot: "*" } }`,
      `  - { pattern: "${host}/chain/*", validator: notation, with: { trustRoot: chain } }`,
      `  - { pattern: "${host}/wrong/*", validator: notation, with: { trustRoot: stranger } }`,
      `  - { pattern: "${host}/audit/*", validator: notation, with: { trustRoot: stranger, verificationLevel: audit } }`,
      `  - { pattern: "${host}/expired/*", validator: notation, with: { trustRoot: short } }`,
      `  - { pattern: "${host}/expired-permissive/*", validator: notation, with: { trustRoot: short, verificationLevel: permissive } }`,
      `  - { pattern: "${host}/stamped/*", validator: notation, with: { trustRoot: stamped } }`,
      `  - { pattern: "${host}/stamped-after/*", validator: notation, with: { trustRoot: stamped, verifyTimestamp: afterCertExpiry } }`,
      `  - { pattern: "${host}/wrong-tsa/*", validator: notation, with: { trustRoot: wrong-tsa } }`,
      ...Object.keys(revocation).map(
        (name) => `  - { pattern: "${host}/${name}/*", validator: notation, with: { trustRoot: ${name} } }`,
      ),
      `  - { pattern: "${host}/unreachable-permissive/*", validator: notation, with: { trustRoot: unreachable, verificationLevel: permissive } }`,
    ]);
    const yaml = `
validators:
  - { name: deny, type: static, approve: false }
  - name: notation
    type: notation
    trustRoots:
${root('test', test)}
${root('stranger', stranger)}
${root('chain', chain)}
${root('short', shortLived)}
      - { name: stamped, cert: ${JSON.stringify(stamped.trustedPem)}, tsCert: ${JSON.stringify(tsa.rootPem)} }
${Object.entries(revocation)
  .map(([name, signer]) => root(name, signer))
  .join('\n')}
      - { name: wrong-tsa, cert: ${JSON.stringify(stamped.trustedPem)}, tsCert: ${JSON.stringify(stranger.trustedPem)} }
  - name: policy-file
    type: notation
    trustPolicy: trustpolicy.json
    trustRoots:
${root('test', test)}
${root('stranger', stranger)}
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${olareg.host}/tp-*", validator: policy-file }
${rules.join('\n')}
registries:
  - { host: "${olareg.host}", insecure: true }
  - { host: "${distribution.host}", insecure: true }
${[ocspGoodPort, ocspRevokedPort, crlPort, closedPort].map((p) => `  - { host: "${LOOPBACK_HOST}:${p}" }`).join('\n')}
`;
    trustPolicy = trustPolicyFor(olareg.host);
    await writeFile(path.join(dir, 'trustpolicy.json'), JSON.stringify(trustPolicy));
    runtime = new Runtime(parseConfig(yaml, 'notation test', dir), 'notation test');
  });

  afterAll(async () => {
    // The cross-check table: every case, Provenant's verdict next to notation verify's.
    if (table.length > 0) console.table(table);
    await runtime?.close();
    await Promise.all([
      olareg?.stop(),
      distribution?.stop(),
      tsa?.stop(),
      ...revocationServers.map((r) => r.stop()),
    ]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  describe.each([
    ['olareg (referrers API)', () => olareg],
    ['docker-registry (referrers tag fallback)', () => distribution],
  ] as const)('on %s', (_, registry) => {
    it.each(['jws', 'cose'] as const)('admits a %s signature and pins the signed digest', async (format) => {
      const { image, reference } = await signed(registry(), `test/${format}`, test, format);
      const tagged = `${registry().host}/test/${format}:v1`;
      const outcome = await bothVerdicts(`${format} on ${registry().host}`, reference, {
        trusted: [test.trustedPem],
        level: 'strict',
      });
      expect(outcome.ok && outcome.verdict.signers).toEqual(['test']);
      const byTag = await runtime.verifier.verify(tagged);
      expect(byTag.ok && byTag.verdict).toMatchObject({
        digest: image.digest,
        pinned: `${tagged}@${image.digest}`,
      });
    });

    it('admits an image signed by a root → intermediate → leaf chain against the root', async () => {
      const { reference } = await signed(registry(), 'chain/app', chain, 'cose');
      const outcome = await bothVerdicts(`chain on ${registry().host}`, reference, {
        trusted: [chain.trustedPem],
        level: 'strict',
      });
      expect(outcome.ok && outcome.verdict.signers).toEqual(['chain']);
    });

    it('rejects an unsigned image with NOTATION_NO_SIGNATURES', async () => {
      const { reference } = await signed(registry(), 'test/unsigned', undefined);
      const outcome = await bothVerdicts(`unsigned on ${registry().host}`, reference, {
        trusted: [test.trustedPem],
        level: 'strict',
      });
      expect(!outcome.ok && outcome.error.code).toBe('NOTATION_NO_SIGNATURES');
    });
  });

  it('rejects a signature whose chain is not in the trust store with NOTATION_CERTIFICATE_UNTRUSTED', async () => {
    const { reference } = await signed(olareg, 'wrong/app', test);
    const outcome = await bothVerdicts('wrong trust store', reference, {
      trusted: [stranger.trustedPem],
      level: 'strict',
    });
    expect(!outcome.ok && outcome.error).toMatchObject({
      code: 'NOTATION_CERTIFICATE_UNTRUSTED',
      message: expect.stringContaining(reference) as unknown,
    });
  });

  it('admits under audit what strict rejects, and the verdict says so', async () => {
    const { reference } = await signed(olareg, 'audit/app', test, 'cose');
    const outcome = await bothVerdicts('wrong trust store, audit', reference, {
      trusted: [stranger.trustedPem],
      level: 'audit',
    });
    expect(outcome.ok && outcome.verdict.signers).toEqual([]);
    expect(outcome.ok && outcome.verdict.notes).toEqual([
      expect.stringMatching(/^audit: admitted despite NOTATION_CERTIFICATE_UNTRUSTED/),
    ]);

    // Through the provider: the item's value lists the note, and the operator's log has it at warn.
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done): void {
        lines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter((l) => l !== ''),
        );
        done();
      },
    });
    const app = await buildServer({ runtime, metrics: new Metrics(), logger: createLogger('info', sink) });
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/verify',
        headers: { 'content-type': 'application/json' },
        payload: { kind: 'ProviderRequest', request: { keys: [reference] } },
      });
      const item = res.json<{ response: { items: { value: { notes?: string[] } }[] } }>().response.items[0];
      expect(item?.value.notes).toEqual([
        expect.stringMatching(/^audit: admitted despite NOTATION_CERTIFICATE_UNTRUSTED/),
      ]);
      const warnings = lines
        .map((l) => JSON.parse(l) as { level: number; msg: string; image?: string })
        .filter((l) => l.level === 40);
      expect(warnings).toContainEqual(
        expect.objectContaining({
          image: reference,
          msg: expect.stringMatching(/^audit: admitted despite NOTATION_CERTIFICATE_UNTRUSTED/) as unknown,
        }),
      );
    } finally {
      await app.close();
    }
  });

  it('admits with trustRoot "*" when any root vouches', async () => {
    const { reference } = await signed(distribution, 'any/app', chain);
    const outcome = await runtime.verifier.verify(reference);
    expect(outcome.ok && outcome.verdict.signers).toEqual(['chain']);
  });

  describe('signatures changed after signing (docker-registry, whose referrers tag anyone can write)', () => {
    /** The envelope of the one signature notation stored for `digest` in the fallback tag. */
    async function storedSignature(
      repository: string,
      digest: string,
    ): Promise<{ manifest: Record<string, unknown>; envelope: Buffer }> {
      const get = async (path: string, accept: string): Promise<Buffer> => {
        const res = await fetch(`${distribution.url}/v2/${repository}/${path}`, { headers: { accept } });
        expect(res.status).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      };
      const json = async (path: string, accept: string): Promise<Record<string, unknown>> =>
        JSON.parse((await get(path, accept)).toString()) as Record<string, unknown>;
      const firstDigest = (list: unknown): string => (list as { digest: string }[])[0]?.digest ?? '';
      const index = await json(`manifests/${digest.replace(':', '-')}`, OCI_INDEX);
      const manifest = await json(`manifests/${firstDigest(index['manifests'])}`, OCI_MANIFEST);
      const envelope = await get(`blobs/${firstDigest(manifest['layers'])}`, '*/*');
      return { manifest, envelope };
    }

    /** Makes `envelope` the only signature of `subject`: a signature manifest and the referrers tag. */
    async function replaceSignatures(
      repository: string,
      template: Record<string, unknown>,
      envelope: Buffer,
      subject: PushedManifest,
    ): Promise<void> {
      const target = { registryUrl: distribution.url, repository };
      const blob = await pushBlob(target, envelope);
      const layers = template['layers'] as { mediaType: string }[];
      const manifest = Buffer.from(
        JSON.stringify({
          ...template,
          layers: [{ mediaType: layers[0]?.mediaType, digest: blob.digest, size: blob.size }],
          subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.manifest.length },
        }),
      );
      const digest = await pushManifest(target, sha256Digest(manifest), manifest, OCI_MANIFEST);
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [
            {
              mediaType: OCI_MANIFEST,
              digest,
              size: manifest.length,
              artifactType: 'application/vnd.cncf.notary.signature',
            },
          ],
        }),
      );
      await pushManifest(target, subject.digest.replace(':', '-'), index, OCI_INDEX);
    }

    it('rejects a tampered JWS envelope with NOTATION_SIGNATURE_INVALID', async () => {
      const { image, reference } = await signed(distribution, 'test/tampered', test);
      const { manifest, envelope } = await storedSignature('test/tampered', image.digest);
      const jws = JSON.parse(envelope.toString()) as { signature: string };
      const signature = Buffer.from(jws.signature, 'base64url');
      signature[0] = (signature[0] ?? 0) ^ 0xff;
      jws.signature = signature.toString('base64url');
      await replaceSignatures('test/tampered', manifest, Buffer.from(JSON.stringify(jws)), image);
      const outcome = await bothVerdicts('tampered envelope', reference, {
        trusted: [test.trustedPem],
        level: 'strict',
      });
      expect(!outcome.ok && outcome.error.code).toBe('NOTATION_SIGNATURE_INVALID');
    });

    it('rejects an envelope that is not a Notary envelope with NOTATION_ENVELOPE_MALFORMED', async () => {
      const { image, reference } = await signed(distribution, 'test/malformed', test, 'cose');
      const { manifest } = await storedSignature('test/malformed', image.digest);
      await replaceSignatures('test/malformed', manifest, Buffer.from('not cbor at all'), image);
      const outcome = await bothVerdicts('malformed envelope', reference, {
        trusted: [test.trustedPem],
        level: 'strict',
      });
      expect(!outcome.ok && outcome.error.code).toBe('NOTATION_ENVELOPE_MALFORMED');
    });

    it('rejects a signature of another digest attached to the image with NOTATION_DIGEST_MISMATCH', async () => {
      const { image: signedImage } = await signed(distribution, 'test/copied', test);
      const other = await pushRandomImage(distribution.url, 'test/copied', 'v2');
      const { manifest, envelope } = await storedSignature('test/copied', signedImage.digest);
      await replaceSignatures('test/copied', manifest, envelope, other);
      const reference = `${distribution.host}/test/copied@${other.digest}`;
      const outcome = await bothVerdicts('signature of another digest', reference, {
        trusted: [test.trustedPem],
        level: 'strict',
      });
      expect(!outcome.ok && outcome.error).toMatchObject({
        code: 'NOTATION_DIGEST_MISMATCH',
        message: expect.stringContaining(signedImage.digest) as unknown,
      });
    });
  });

  describe('once the signing certificate has expired', () => {
    const images: Record<string, string> = {};

    beforeAll(async () => {
      const leafNotAfter = new Date(Date.now() + SHORT_VALIDITY_MS);
      await Promise.all([issueLeaf(shortLived, leafNotAfter), issueLeaf(stamped, leafNotAfter)]);
      const stamp = { url: tsa.url, rootFile: tsa.rootFile };
      const sign = async (
        repository: string,
        signer: NotationSigner,
        timestamped: boolean,
      ): Promise<void> => {
        const image = await pushRandomImage(olareg.url, repository, 'v1');
        const reference = `${olareg.host}/${repository}@${image.digest}`;
        await notationSign(signer, reference, {
          referrersApi: true,
          format: repository.includes('after') ? 'cose' : 'jws',
          ...(timestamped ? { timestamp: stamp } : {}),
        });
        images[repository] = reference;
      };
      await sign('expired/app', shortLived, false);
      await sign('expired-permissive/app', shortLived, false);
      await sign('stamped/app', stamped, true);
      await sign('stamped-after/app', stamped, true);
      await sign('wrong-tsa/app', stamped, true);
      // Wait (polling the clock) until the leaf certificates are past their notAfter.
      const deadline = leafNotAfter.getTime() + 1_000;
      while (Date.now() <= deadline) await new Promise((r) => setTimeout(r, EXPIRY_POLL_MS));
    });

    const reference = (repository: string): string => images[repository] ?? '';

    it('rejects the certificate without a timestamp with NOTATION_CERTIFICATE_EXPIRED', async () => {
      const outcome = await bothVerdicts('expired certificate, no timestamp', reference('expired/app'), {
        trusted: [shortLived.trustedPem],
        level: 'strict',
      });
      expect(!outcome.ok && outcome.error.code).toBe('NOTATION_CERTIFICATE_EXPIRED');
    });

    it('admits it under permissive, and the verdict says so', async () => {
      const outcome = await bothVerdicts(
        'expired certificate, permissive',
        reference('expired-permissive/app'),
        {
          trusted: [shortLived.trustedPem],
          level: 'permissive',
        },
      );
      expect(outcome.ok && outcome.verdict.signers).toEqual(['short']);
      expect(outcome.ok && outcome.verdict.notes).toEqual([
        expect.stringMatching(/^permissive: admitted despite NOTATION_CERTIFICATE_EXPIRED/),
      ]);
    });

    it.each([
      ['stamped/app', 'always'],
      ['stamped-after/app', 'afterCertExpiry'],
    ] as const)(
      'admits %s: a trusted timestamp taken while it was valid (verifyTimestamp %s)',
      async (repository, when) => {
        const outcome = await bothVerdicts(`expired certificate, timestamp, ${when}`, reference(repository), {
          trusted: [stamped.trustedPem],
          level: 'strict',
          tsa: [tsa.rootPem],
          verifyTimestamp: when,
        });
        expect(outcome.ok && outcome.verdict.signers).toEqual(['stamped']);
      },
    );

    it('rejects a timestamp by a TSA that does not chain to tsCert with NOTATION_TIMESTAMP_INVALID', async () => {
      const outcome = await bothVerdicts('expired certificate, untrusted TSA', reference('wrong-tsa/app'), {
        trusted: [stamped.trustedPem],
        level: 'strict',
        tsa: [stranger.trustedPem],
      });
      expect(!outcome.ok && outcome.error.code).toBe('NOTATION_TIMESTAMP_INVALID');
    });
  });

  describe('revocation', () => {
    async function signedBy(name: keyof typeof revocation, repository = `${name}/app`): Promise<string> {
      const image = await pushRandomImage(olareg.url, repository, 'v1');
      const reference = `${olareg.host}/${repository}@${image.digest}`;
      await notationSign(revocation[name], reference, { referrersApi: true });
      return reference;
    }

    it('admits a chain the OCSP responder (openssl ocsp) says is good', async () => {
      const outcome = await bothVerdicts('OCSP good', await signedBy('ocsp-good'), {
        trusted: [revocation['ocsp-good'].trustedPem],
        level: 'strict',
      });
      expect(outcome.ok && outcome.verdict.signers).toEqual(['ocsp-good']);
    });

    it("takes no OCSP answer past its nextUpdate: a replayed 'good' cannot outlive a revocation", async () => {
      const signer = revocation['ocsp-good'];
      const chain = await Promise.all(
        ['leaf.crt', 'int.crt', 'root.crt'].map(
          async (f) => new X509Certificate(await readFile(path.join(signer.caDir, f))),
        ),
      );
      const fetchOcsp = async (url: URL): Promise<Buffer> => {
        const res = await request(url);
        return Buffer.from(await res.body.arrayBuffer());
      };
      // The responder (openssl ocsp -nmin 10) answers with nextUpdate ten minutes ahead.
      expect(await checkRevocation(chain, fetchOcsp, new Date())).toEqual({ status: 'good' });
      const anHourLater = new Date(Date.now() + 60 * 60 * 1000);
      expect(await checkRevocation(chain, fetchOcsp, anHourLater)).toEqual({
        status: 'unknown',
        detail: expect.stringContaining('stale since') as unknown,
      });
    });

    it.each([
      ['ocsp-revoked', 'OCSP'],
      ['crl-revoked', 'CRL'],
    ] as const)('rejects a leaf revoked by its CA (%s) with NOTATION_REVOKED', async (name, via) => {
      const outcome = await bothVerdicts(`revoked, ${via}`, await signedBy(name), {
        trusted: [revocation[name].trustedPem],
        level: 'strict',
      });
      expect(!outcome.ok && outcome.error).toMatchObject({
        code: 'NOTATION_REVOKED',
        message: expect.stringContaining(via) as unknown,
      });
    });

    it('rejects under strict when the responder does not answer, and permissive admits it', async () => {
      const strict = await bothVerdicts('OCSP unreachable, strict', await signedBy('unreachable'), {
        trusted: [revocation.unreachable.trustedPem],
        level: 'strict',
      });
      expect(!strict.ok && strict.error.code).toBe('NOTATION_REVOCATION_UNKNOWN');
      const permissive = await bothVerdicts(
        'OCSP unreachable, permissive',
        await signedBy('unreachable', 'unreachable-permissive/app'),
        { trusted: [revocation.unreachable.trustedPem], level: 'permissive' },
      );
      expect(permissive.ok && permissive.verdict.signers).toEqual(['unreachable']);
      expect(permissive.ok && permissive.verdict.notes).toEqual([
        expect.stringMatching(/^permissive: admitted despite NOTATION_REVOCATION_UNKNOWN/),
      ]);
    });

    it('contacts no responder on a loopback host that no registries: entry names', async () => {
      const outcome = await runtime.verifier.verify(await signedBy('unlisted'));
      expect(!outcome.ok && outcome.error).toMatchObject({
        code: 'NOTATION_REVOCATION_UNKNOWN',
        message: expect.stringContaining('may not be contacted') as unknown,
      });
    });
  });

  describe('with a trustpolicy.json', () => {
    const stores = (): Record<string, string[]> => ({
      'ca:test': [test.trustedPem],
      'ca:stranger': [stranger.trustedPem],
    });

    async function verdicts(
      name: string,
      repository: string,
      signer: NotationSigner | undefined,
    ): Promise<Outcome> {
      const image = await pushRandomImage(olareg.url, repository, 'v1');
      const reference = `${olareg.host}/${repository}@${image.digest}`;
      if (signer !== undefined) await notationSign(signer, reference, { referrersApi: true });
      const [outcome, verified] = await Promise.all([
        runtime.verifier.verify(reference),
        notationVerifiesWithPolicy(dir, reference, trustPolicy, stores()),
      ]);
      table.push({
        case: name,
        provenant: outcome.ok ? 'admitted' : outcome.error.code,
        notation: verified ? 'verified' : 'rejected',
      });
      expect(outcome.ok, `${name}: Provenant and notation verify disagree`).toBe(verified);
      return outcome;
    }

    it('admits a signer listed in trustedIdentities', async () => {
      const outcome = await verdicts('trust policy, identity trusted', 'tp-identity/app', test);
      expect(outcome.ok && outcome.verdict.signers).toEqual(['test']);
    });

    it('rejects a trusted chain whose subject is not in trustedIdentities with NOTATION_IDENTITY_UNTRUSTED', async () => {
      const outcome = await verdicts('trust policy, identity not trusted', 'tp-stranger-identity/app', test);
      expect(!outcome.ok && outcome.error.code).toBe('NOTATION_IDENTITY_UNTRUSTED');
    });

    it('admits an unsigned image under a skip policy without looking', async () => {
      const outcome = await verdicts('trust policy, skip', 'tp-skip/app', undefined);
      expect(outcome.ok && outcome.verdict.signers).toEqual([]);
      expect(outcome.ok && outcome.verdict.notes).toEqual([
        expect.stringMatching(/^skip: trust policy tp-skip/),
      ]);
    });

    it('applies a per-check override: authenticity logged admits another trust store', async () => {
      const outcome = await verdicts('trust policy, override authenticity: log', 'tp-override/app', test);
      expect(outcome.ok && outcome.verdict.signers).toEqual([]);
      expect(outcome.ok && outcome.verdict.notes).toEqual([
        expect.stringMatching(/^strict: admitted despite NOTATION_CERTIFICATE_UNTRUSTED/),
      ]);
    });

    it('rejects an image no policy scope names with NOTATION_NO_TRUST_POLICY', async () => {
      const outcome = await verdicts('trust policy, no scope', 'tp-none/app', test);
      expect(!outcome.ok && outcome.error.code).toBe('NOTATION_NO_TRUST_POLICY');
    });
  });
});
