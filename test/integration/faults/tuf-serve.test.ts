/**
 * TUF mirror faults seen from a running `provenant serve` (sigstore.tufMirror, tufRoot, tufCacheDir):
 * keyless cosign signatures of a private Sigstore whose trusted root comes from a TUF repository on
 * loopback, judged while four clients keep asking. Refreshes run at start, hourly and at each config
 * reload; the tests reload the config (as a ConfigMap update would) to make `serve` refresh while the
 * mirror is down, serves hostile metadata (another key, a target that does not match its signed hash,
 * expired metadata signed by the right key, each pointing at an attacker's Sigstore), or comes back.
 * Expected: no refresh that fails ever changes a verdict (the last good root is kept, across the reload),
 * no answer is an HTTP error or a wrong verdict, the attacker's signature is never admitted, and a
 * `serve` that never verified a root from the mirror denies the private signatures (stricter, not looser).
 */
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  serveTufRepository,
  tufRepository,
  type Repo,
} from '../../../provider/test/helpers/tuf-repository.ts';
import { pushRandomImage } from '../../harness/images.ts';
import {
  issueSigningCert,
  loggedSignature,
  makePrivateSigstore,
  pushLegacySignatures,
  type PrivateSigstore,
  type SigningIdentity,
} from '../../harness/private-sigstore.ts';
import { waitFor } from '../../harness/kube.ts';
import { makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { startTraffic, tally, type Traffic } from '../../harness/traffic.ts';
import { judge, verify, type Case } from '../../harness/world.ts';

const ISSUER = 'https://oidc.private.test';
const REFRESHED = 'sigstore trusted root refreshed through TUF';
const REFRESH_FAILED = 'sigstore TUF refresh failed, keeping the last good trusted root';
/** A refresh after a reload: the config poll (1 s), the reload, the TUF client's fetches, on a loaded machine. */
const REFRESH_WITHIN_MS = 30_000;

describe('TUF mirror faults under traffic, through provenant serve', () => {
  let dir: string;
  let registry: RegistryServer;
  let provenant: RunningProvenant;
  let dispatcher: Agent;
  let traffic: Traffic;
  let cases: Case[];
  let configPath: string;
  let reloads = 0;
  /** The mirror, and the repository it serves now (tests swap it). */
  let mirror: { repo: Repo; readonly server: Server; readonly port: number };
  let good: { target: Buffer; signer: Repo['signer'] };
  let evilTarget: Buffer;
  let version = 1;

  /** An image of `repository` whose cosign signature `signer` made and `sigstore`'s log recorded. */
  async function signed(repository: string, sigstore: PrivateSigstore, signer: SigningIdentity) {
    const image = await pushRandomImage(registry.url, repository, 'v1');
    const sig = loggedSignature(sigstore, signer, `${registry.host}/${repository}`, image.digest);
    await pushLegacySignatures(registry.url, repository, image.digest, [sig]);
    return image.digest;
  }

  function configYaml(cacheDir: string): string {
    return `# reload ${reloads}
validators:
  - { name: deny, type: static, approve: false }
  - name: keyless
    type: cosign
    trustRoots:
      - { name: alice, keyless: { issuer: "${ISSUER}", subjectRegex: "^alice@acme\\\\.test$" } }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/keyless/*", validator: keyless, with: { trustRoot: alice, verifySCT: false } }
registries:
  - { host: "${registry.host}", insecure: true }
sigstore:
  tufMirror: "http://127.0.0.1:${mirror.port}"
  tufRoot: ${path.join(dir, 'root.json')}
  tufCacheDir: ${path.join(dir, cacheDir)}
server: { host: 127.0.0.1, port: 0 }
cache: { ttlSeconds: 0, negativeTtlSeconds: 0 }
`;
  }

  const count = (line: string): number => provenant.output().split(line).length - 1;

  /** Rewrites the config (a ConfigMap update) and waits for the refresh the reload starts to end in `outcome`. */
  async function reloadAndRefresh(outcome: string, cacheDir = 'tuf-cache'): Promise<void> {
    const before = count(outcome);
    reloads++;
    await writeFile(configPath, configYaml(cacheDir));
    await waitFor(`a new "${outcome}" line after reload ${reloads}`, REFRESH_WITHIN_MS, () =>
      Promise.resolve(count(outcome) > before ? true : undefined),
    );
  }

  /** The next version of the repository, signed by its key; `target` as signed, `served` as served. */
  function nextVersion(target: Buffer, served = target, expires?: Date): Repo {
    version++;
    return tufRepository(target, served, { signer: good.signer, version, expires });
  }

  async function mirrorUp(): Promise<void> {
    await new Promise<void>((resolve) => mirror.server.listen(mirror.port, '127.0.0.1', resolve));
  }

  async function mirrorDown(): Promise<void> {
    mirror.server.closeAllConnections();
    await new Promise((resolve) => mirror.server.close(resolve));
  }

  /** Every answer since `mark` is the expected verdict: the mirror is not on the admission path. */
  function expectAllCorrectSince(mark: number): void {
    const answers = traffic.since(mark);
    const notCorrect = answers.filter((a) => a.judgement !== 'correct');
    expect(notCorrect, provenant.output().slice(-3000)).toEqual([]);
    expect(tally(answers).correct).toBeGreaterThan(0);
  }

  beforeAll(async () => {
    [registry, dir] = await Promise.all([startDistributionRegistry(), makeTempDir('faults-tuf-serve')]);
    await Promise.all(['ours', 'theirs'].map((d) => mkdir(path.join(dir, d))));
    const [ours, theirs] = await Promise.all([
      makePrivateSigstore(path.join(dir, 'ours')),
      makePrivateSigstore(path.join(dir, 'theirs')),
    ]);
    const [alice, mallory, forgedAlice] = await Promise.all([
      issueSigningCert(ours, 'alice', 'alice@acme.test', ISSUER),
      issueSigningCert(ours, 'mallory', 'mallory@evil.test', ISSUER),
      // The attacker's CA issues a certificate for alice: admitted only if their root were trusted.
      issueSigningCert(theirs, 'forged-alice', 'alice@acme.test', ISSUER),
    ]);
    const [aliceDigest] = await Promise.all([
      signed('keyless/alice', ours, alice),
      signed('keyless/mallory', ours, mallory),
      signed('keyless/forged', theirs, forgedAlice),
      pushRandomImage(registry.url, 'keyless/unsigned', 'v1'),
    ]);
    const tag = (repo: string): string => `${registry.host}/keyless/${repo}:v1`;
    cases = [
      { key: tag('alice'), validator: 'cosign', expect: { digest: aliceDigest } },
      { key: tag('mallory'), validator: 'cosign', expect: { deny: true } },
      { key: tag('forged'), validator: 'cosign', expect: { deny: true } },
      { key: tag('unsigned'), validator: 'cosign', expect: { deny: true } },
    ];

    const target = readFileSync(ours.trustedRootPath);
    evilTarget = readFileSync(theirs.trustedRootPath);
    const first = tufRepository(target);
    good = { target, signer: first.signer };
    const served = await serveTufRepository({
      get files() {
        return mirror.repo.files;
      },
    });
    mirror = { repo: first, server: served.server, port: Number(new URL(served.url).port) };
    await writeFile(path.join(dir, 'root.json'), first.root);

    configPath = path.join(dir, 'provenant.yaml');
    await writeFile(configPath, configYaml('tuf-cache'));
    provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
    dispatcher = devCertAgent(provenant);
    // Until the first refresh the embedded public-good root is used, and alice is denied: traffic
    // starts once the mirror's root is in.
    await waitFor('the first refresh from the mirror', REFRESH_WITHIN_MS, () =>
      Promise.resolve(count(REFRESHED) > 0 ? true : undefined),
    );
    traffic = startTraffic({ url: () => provenant.url, dispatcher: () => dispatcher, cases });
    await traffic.allCorrectSince(0, cases);
  });

  afterAll(async () => {
    await traffic?.stop();
    await dispatcher?.close();
    await provenant?.stop();
    if (mirror?.server.listening === true) await mirrorDown();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('keeps every verdict while the mirror is down, across a config reload, and refreshes once it is back', async () => {
    const mark = traffic.mark();
    await mirrorDown();
    await reloadAndRefresh(REFRESH_FAILED);
    // Every key verified again by the reloaded config, with no root from the mirror this time.
    await traffic.allCorrectSince(traffic.mark(), cases);
    await mirrorUp();
    mirror.repo = nextVersion(good.target);
    await reloadAndRefresh(REFRESHED);
    await traffic.allCorrectSince(traffic.mark(), cases);
    expectAllCorrectSince(mark);
  });

  it.each([
    ['signed by another key', () => tufRepository(evilTarget)],
    // The signed target is new (the real root reformatted), so the client downloads it: a target it has
    // cached under the signed hash would not be fetched at all.
    [
      'whose target does not match its signed hash',
      () => nextVersion(Buffer.from(JSON.stringify(JSON.parse(good.target.toString()), null, 1)), evilTarget),
    ],
    ['signed by the right key but expired', () => nextVersion(evilTarget, evilTarget, new Date(0))],
  ])(
    "keeps every verdict when the mirror serves an attacker's root %s, and refreshes once it serves the real one",
    async (_title, hostile) => {
      const mark = traffic.mark();
      mirror.repo = hostile();
      await reloadAndRefresh(REFRESH_FAILED);
      await traffic.allCorrectSince(traffic.mark(), cases);
      mirror.repo = nextVersion(good.target);
      await reloadAndRefresh(REFRESHED);
      await traffic.allCorrectSince(traffic.mark(), cases);
      expectAllCorrectSince(mark);
    },
  );

  it('denies the private signatures when it never verified a root from the mirror (a fresh cache), never admitting the attacker', async () => {
    await traffic.stop();
    mirror.repo = nextVersion(evilTarget, evilTarget, new Date(0));
    await reloadAndRefresh(REFRESH_FAILED, 'fresh-cache');
    // Stricter: the embedded public-good root knows neither CA.
    for (const c of cases) {
      const answer = await verify(provenant.url, dispatcher, [c.key]);
      expect(judge(answer, { deny: true }), c.key).toEqual({ judgement: 'correct', why: '' });
    }
    mirror.repo = nextVersion(good.target);
    await reloadAndRefresh(REFRESHED, 'fresh-cache');
    for (const c of cases) {
      const answer = await verify(provenant.url, dispatcher, [c.key]);
      expect(judge(answer, c.expect), c.key).toEqual({ judgement: 'correct', why: '' });
    }
  });
});
