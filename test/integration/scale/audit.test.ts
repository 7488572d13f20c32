/**
 * Gatekeeper's audit, at scale: it sends every image of a cluster through the provider, the keys of many
 * objects in one ProviderRequest (1,000 here), a few such requests at once. A real `provenant serve`
 * answers 10,000 distinct image keys that way, verifying them against a real docker-registry (behind
 * the counting proxy) with real cosign signatures: every key gets its verdict, no request fails, the
 * registry never sees more connections or requests at once than `network.maxConcurrentRequestsPerRegistry`,
 * no key is fetched twice, and the process's peak memory stays bounded.
 *
 * The keys are cheap to make: a few images, each signed once, pushed under many tags (one manifest PUT
 * a tag), so every key is a distinct cache entry and a cold tag resolve. They are mixed as a cluster's
 * are: cosign-signed, unsigned and signed by an untrusted key (both denied), images a static rule admits
 * (a tag resolve each) and images no rule admits (denied without a registry request).
 */
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inParallel, pushTags } from '../../bench/fixtures.ts';
import { cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { startCountingProxy, type CountingProxy, type RequestCounts } from '../../harness/counting-proxy.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { errorCode, verify, type ProviderAnswer } from '../../harness/world.ts';

/** Gatekeeper's audit batch: its external data requests carry the keys of many objects. */
const KEYS_PER_REQUEST = 1000;
const REQUESTS_IN_FLIGHT = 3;
/** Below the default (16), so the bound the registry sees is the configured one. */
const PER_REGISTRY = 8;
/**
 * Verifying 1,000 cold images takes longer than an admission review may (server.requestDeadlineMs,
 * 2.5 s by default): an audit of cold images needs a Provider `timeout` and deadline to match (README,
 * Performance, Scale). Registry requests get a generous timeout too: the suite runs on a busy machine.
 */
const AUDIT_DEADLINE_MS = 60_000;
const REGISTRY_TIMEOUT_MS = 10_000;
/** Peak RSS (VmHWM) over the whole run, 10,000 verdicts cached, the process running through tsx. */
const PEAK_RSS_MB = 400;

type Verdict = { digest: string } | { deny: string };

/** A set of keys: one image in `repo` under `tags` tags (0: keys without an image). */
interface KeySet {
  readonly repo: string;
  readonly tags: number;
  readonly signer?: CosignKey;
  readonly verdict: (digest: string) => Verdict;
}

describe("Gatekeeper's audit: 10,000 distinct images in requests of 1,000 keys", () => {
  let dir: string;
  let registry: RegistryServer;
  let proxy: CountingProxy;
  let provenant: RunningProvenant;
  let dispatcher: Agent;
  /** Every key and its verdict, interleaved so each request mixes approvals and denials. */
  const expected = new Map<string, Verdict>();
  let answers: ProviderAnswer[] = [];
  let counts: RequestCounts;
  let wallMs = 0;

  beforeAll(async () => {
    dir = await makeTempDir('scale-audit');
    registry = await startDistributionRegistry();
    proxy = await startCountingProxy(registry.url);
    const [trusted, stranger] = await Promise.all([
      cosignKeyPair(dir, 'trusted'),
      cosignKeyPair(dir, 'stranger'),
    ]);
    const sets: KeySet[] = [
      ...[0, 1, 2].map((i) => ({
        repo: `cosign/signed${i}`,
        tags: 250,
        signer: trusted,
        verdict: (digest: string) => ({ digest }),
      })),
      { repo: 'cosign/unsigned', tags: 125, verdict: () => ({ deny: 'COSIGN_NO_SIGNATURES' }) },
      {
        repo: 'cosign/stranger',
        tags: 125,
        signer: stranger,
        verdict: () => ({ deny: 'COSIGN_SIGNATURE_INVALID' }),
      },
      { repo: 'static/admitted', tags: 4000, verdict: (digest) => ({ digest }) },
      { repo: 'elsewhere/app', tags: 5000, verdict: () => ({ deny: 'POLICY_STATIC_DENY' }) },
    ];
    const configPath = path.join(dir, 'provenant.yaml');
    await writeFile(
      configPath,
      [
        'validators:',
        '  - { name: deny, type: static }',
        '  - { name: allow, type: static, approve: true }',
        `  - { name: signed, type: cosign, trustRoots: [{ name: default, key: ${JSON.stringify(trusted.publicKey)} }] }`,
        'policy:',
        '  - { pattern: "*:*", validator: deny }',
        `  - { pattern: "${proxy.host}/cosign/*", validator: signed, with: { verifyInTransparencyLog: false } }`,
        `  - { pattern: "${proxy.host}/static/*", validator: allow }`,
        `server: { host: 127.0.0.1, port: 0, requestDeadlineMs: ${AUDIT_DEADLINE_MS} }`,
        `network: { maxConcurrentRequestsPerRegistry: ${PER_REGISTRY}, requestTimeoutMs: ${REGISTRY_TIMEOUT_MS} }`,
        `registries: [{ host: "${proxy.host}", insecure: true }]`,
        'cache: { ttlSeconds: 600, maxEntries: 20000 }',
        'sigstore: { offline: true }',
        'log: { level: error }',
      ].join('\n'),
    );
    // The process starts while the tags are pushed: a start and the pushes take seconds each here.
    const [keyLists] = await Promise.all([
      inParallel(sets, 2, (set) => makeKeys(set)),
      startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]).then(
        (started) => (provenant = started),
      ),
    ]);
    const total = keyLists.reduce((n, list) => n + list.length, 0);
    for (let i = 0; expected.size < total; i++)
      for (const list of keyLists) if (list[i] !== undefined) expected.set(...list[i]!);
    dispatcher = devCertAgent(provenant);
    proxy.take();

    const keys = [...expected.keys()];
    const batches = Array.from({ length: Math.ceil(keys.length / KEYS_PER_REQUEST) }, (_, i) =>
      keys.slice(i * KEYS_PER_REQUEST, (i + 1) * KEYS_PER_REQUEST),
    );
    const auditStart = performance.now();
    answers = await inParallel(batches, REQUESTS_IN_FLIGHT, (batch) =>
      verify(provenant.url, dispatcher, batch, AUDIT_DEADLINE_MS + 10_000),
    );
    wallMs = performance.now() - auditStart;
    counts = proxy.take();
    console.log(
      `audit: ${counts.log.filter((r) => r.path.endsWith('.sig')).length} .sig fetches; ${keys.length} keys in ${(wallMs / 1000).toFixed(1)} s, ${counts.total} registry requests, ` +
        `at most ${counts.maxConnections} connections and ${counts.maxInFlight} requests open at once, ` +
        `peak RSS ${peakRssMb(provenant.pid)} MB`,
    );

    /** Pushes the set's image and its tags; its keys and their verdicts. */
    async function makeKeys(set: KeySet): Promise<[string, Verdict][]> {
      const tags = Array.from({ length: set.tags }, (_, i) => `t${i}`);
      const keys = (digest: string): [string, Verdict][] =>
        tags.map((tag) => [`${proxy.host}/${set.repo}:${tag}`, set.verdict(digest)]);
      if (set.repo.startsWith('elsewhere/')) return keys(''); // no rule admits them: never fetched
      const image = await pushRandomImage(registry.url, set.repo, 't0');
      if (set.signer !== undefined)
        await cosignSign(`${proxy.host}/${set.repo}@${image.digest}`, set.signer, 'legacy');
      await pushTags(registry.url, set.repo, image, tags.slice(1));
      return keys(image.digest);
    }
  }, 170_000);

  afterAll(async () => {
    await dispatcher?.close();
    await provenant?.stop();
    await proxy?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('answers every request with HTTP 200 and no systemError, every key once', () => {
    expect(answers.map((a) => `${a.status} ${a.systemError}`)).toEqual(answers.map(() => '200 '));
    const answered = answers.flatMap((a) => a.items.map((i) => i.key));
    expect(answered).toHaveLength(expected.size);
    expect(new Set(answered).size).toBe(expected.size);
  });

  it('gives every key its verdict: the signed digest, or the denial it deserves', () => {
    const wrong: string[] = [];
    for (const item of answers.flatMap((a) => a.items)) {
      const got: Verdict =
        item.error === ''
          ? { digest: String((item.value as { digest?: unknown } | null)?.digest) }
          : { deny: errorCode(item.error) };
      if (JSON.stringify(got) !== JSON.stringify(expected.get(item.key)))
        wrong.push(`${item.key}: ${JSON.stringify(item).slice(0, 300)}`);
    }
    expect(wrong.slice(0, 5), `${wrong.length} wrong verdicts`).toEqual([]);
  });

  it(`never has more than network.maxConcurrentRequestsPerRegistry (${PER_REGISTRY}) connections or requests open at the registry`, () => {
    expect(counts.maxInFlight).toBeLessThanOrEqual(PER_REGISTRY);
    expect(counts.maxConnections).toBeLessThanOrEqual(PER_REGISTRY);
    expect(counts.maxInFlight, 'the load pressed against the bound').toBe(PER_REGISTRY);
  });

  it('resolves each tag once and asks nothing about images no rule admits', () => {
    const resolves = new Map<string, number>();
    for (const r of counts.log.filter((r) => /\/manifests\/t\d+$/.test(r.path)))
      resolves.set(r.path, (resolves.get(r.path) ?? 0) + 1);
    const fetched = [...expected.keys()].filter((k) => !k.includes('/elsewhere/'));
    expect(resolves.size).toBe(fetched.length);
    expect([...resolves.values()].every((n) => n === 1)).toBe(true);
    expect(counts.log.filter((r) => r.path.includes('/elsewhere/'))).toEqual([]);
  });

  it("shares a digest's signatures between its tags: .sig fetched at most twice per repository, no payload blob", () => {
    const cosignKeys = [...expected.keys()].filter((k) => k.includes('/cosign/'));
    const perRepository = new Map<string, number>();
    for (const r of counts.log.filter((r) => /\/manifests\/sha256-[0-9a-f]{64}\.sig$/.test(r.path))) {
      const repository = r.path.split('/manifests/')[0]!;
      perRepository.set(repository, (perRepository.get(repository) ?? 0) + 1);
    }
    expect([...perRepository.keys()].sort()).toEqual(
      ['signed0', 'signed1', 'signed2', 'stranger', 'unsigned'].map((r) => `/v2/cosign/${r}`),
    );
    // One fetch per key before (1,000); tags that arrive while their digest is verified, or within the
    // shorter verdict TTL after, share its result (validators/cosign/digest-memo.ts). Each repository
    // here holds one digest: a second fetch is allowed for a joiner whose first caller ran out of time.
    const seen = JSON.stringify(Object.fromEntries(perRepository));
    expect(
      [...perRepository.values()].every((n) => n <= 2),
      seen,
    ).toBe(true);
    expect(cosignKeys.length).toBeGreaterThan(100);
    // cosign's simple-signing payloads are rebuilt from the digest (validators/cosign/signatures.ts).
    expect(counts.log.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
  });

  it(`keeps the peak RSS under ${PEAK_RSS_MB} MB`, () => {
    expect(peakRssMb(provenant.pid)).toBeLessThan(PEAK_RSS_MB);
  });
});

/** VmHWM: the process's peak resident set size (proc(5)), in MB. */
function peakRssMb(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Math.round(Number(kb) / 1024);
}
