/**
 * Registry faults under traffic: a real `provenant serve` judging the world's images (every validator
 * with a harness) while four clients keep asking, and the registry goes down, comes back, restarts
 * mid-request, turns slow, answers 429 and 503 storms (a hostile proxy in front of the real registry),
 * and Notary goes down. Every answer during a fault is the expected verdict or a transient
 * `systemError` (what Gatekeeper retries, never caches): never a wrong verdict, never an HTTP error,
 * never a failed connection to the provider; once the fault is gone, every key is answered correctly.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.ts';
import { freePort, makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { startTraffic, tally, type Answer, type Traffic } from '../../harness/traffic.ts';
import { errorCode, startWorld, type Case, type World } from '../../harness/world.ts';

const REQUEST_TIMEOUT_MS = 1000;
const MAX_RETRIES = 1;
const REQUEST_DEADLINE_MS = 3000;
/** An answer's latency bound during a fault: the deadline, plus a loaded machine's scheduling. */
const ANSWER_BOUND_MS = REQUEST_DEADLINE_MS + 2000;
/** How long a fault lasts: long enough for every key to meet it (the cache lives one second). */
const FAULT_MS = 2500;

describe('registry and Notary faults under traffic', () => {
  let dir: string;
  let world: World;
  let proxy: FaultProxy;
  let provenant: RunningProvenant;
  let dispatcher: Agent;
  let traffic: Traffic;
  let cases: Case[];

  beforeAll(async () => {
    dir = await makeTempDir('faults-registry');
    world = await startWorld({ registryPort: await freePort(), storageDir: path.join(dir, 'storage') });
    proxy = await startFaultProxy(world.registry);
    // Through the proxy: a static and a cosign image (cosign reads its signature through it too).
    const proxied = world.cases
      .filter((c) => c.key.includes('/static/allowed:') || c.key.includes('/cosign/signed:'))
      .map((c) => ({ ...c, key: c.key.replace(world.registry.host, proxy.host) }));
    cases = [...world.cases, ...proxied];
    const configPath = path.join(dir, 'provenant.yaml');
    await writeFile(
      configPath,
      `${world.configYaml({
        rules: [
          `{ pattern: "${proxy.host}/static/allowed", validator: allow }`,
          `{ pattern: "${proxy.host}/cosign/*", validator: cosign, with: { trustRoot: soak, verifyInTransparencyLog: false } }`,
        ],
        registries: [`{ host: "${proxy.host}", insecure: true }`],
      })}
server: { host: 127.0.0.1, port: 0, requestDeadlineMs: ${REQUEST_DEADLINE_MS} }
network: { requestTimeoutMs: ${REQUEST_TIMEOUT_MS}, maxRetries: ${MAX_RETRIES} }
cache: { ttlSeconds: 1, negativeTtlSeconds: 1 }
`,
    );
    provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
    dispatcher = devCertAgent(provenant);
    traffic = startTraffic({ url: () => provenant.url, dispatcher: () => dispatcher, cases });
    await traffic.allCorrectSince(0, cases);
  });
  afterAll(async () => {
    await traffic?.stop();
    await dispatcher?.close();
    await provenant?.stop();
    await proxy?.close();
    await world?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** What every fault window must show: only expected verdicts or transient systemErrors, in time. */
  function expectFailClosed(answers: readonly Answer[]): void {
    const bad = answers.filter((a) => a.judgement === 'wrong' || a.judgement === 'transport');
    expect(bad, provenant.output().slice(-2000)).toEqual([]);
    expect(answers.filter((a) => a.ms > ANSWER_BOUND_MS).map((a) => `${a.key} ${a.ms} ms`)).toEqual([]);
  }

  /** Injects a fault for FAULT_MS under traffic, clears it, and returns what was answered meanwhile. */
  async function during(inject: () => Promise<void> | void, clear: () => Promise<void> | void) {
    const mark = traffic.mark();
    await inject();
    await new Promise((r) => setTimeout(r, FAULT_MS));
    const faulty = traffic.since(mark);
    await clear();
    const recovered = traffic.mark();
    await traffic.allCorrectSince(recovered, cases);
    expectFailClosed(traffic.since(mark));
    return faulty;
  }

  const codes = (answers: readonly Answer[]): Set<string> =>
    new Set(answers.filter((a) => a.judgement === 'transient').map((a) => errorCode(a.why)));

  it('answers a stopped registry with transient REGISTRY_UNREACHABLE, and correctly once it is back', async () => {
    const faulty = await during(
      () => world.stopRegistry(),
      () => world.startRegistry(),
    );
    expect(tally(faulty).transient, JSON.stringify(tally(faulty))).toBeGreaterThan(0);
    expect([...codes(faulty)]).toContain('REGISTRY_UNREACHABLE');
  });

  it('survives the registry restarted while requests to it are in flight', async () => {
    // Four clients keep requests open at all times; the stop cuts the registry's connections.
    const faulty = await during(
      async () => {
        await world.stopRegistry();
        await world.startRegistry();
      },
      () => {},
    );
    expect(faulty.length).toBeGreaterThan(0);
  });

  it('answers a registry slower than network.requestTimeoutMs with transient REGISTRY_TIMEOUT inside the deadline', async () => {
    const faulty = await during(
      () => proxy.setMode({ kind: 'slow', delayMs: REQUEST_TIMEOUT_MS * 3 }),
      () => proxy.setMode({ kind: 'forward' }),
    );
    const proxiedAnswers = faulty.filter((a) => a.key.startsWith(proxy.host));
    expect(tally(proxiedAnswers).transient).toBeGreaterThan(0);
    expect([...codes(proxiedAnswers)]).toEqual(expect.arrayContaining(['REGISTRY_TIMEOUT']));
  });

  for (const [status, code, headers] of [
    [429, 'REGISTRY_RATE_LIMITED', { 'retry-after': '1' }],
    [503, 'REGISTRY_SERVER_ERROR', {}],
    [500, 'REGISTRY_SERVER_ERROR', {}],
  ] as const) {
    it(`answers a storm of ${status}s with transient ${code}, asking the registry a bounded number of times`, async () => {
      const before = proxy.count();
      const faulty = await during(
        () => proxy.setMode({ kind: 'status', status, headers }),
        () => proxy.setMode({ kind: 'forward' }),
      );
      const proxiedAnswers = faulty.filter((a) => a.key.startsWith(proxy.host));
      expect(tally(proxiedAnswers).transient).toBeGreaterThan(0);
      expect([...codes(proxiedAnswers)]).toContain(code);
      // No retry storm: each answer cost at most a few registry requests per attempt.
      const perAnswer = (proxy.count() - before) / proxiedAnswers.length;
      expect(perAnswer).toBeLessThanOrEqual(3 * (MAX_RETRIES + 1));
    });
  }

  it('answers Notary v1 keys with transient NOTARY_UNREACHABLE once Notary is down, and every other key correctly', async () => {
    const mark = traffic.mark();
    await world.notary.stop();
    const notary = cases.filter((c) => c.validator === 'notaryv1');
    const others = cases.filter((c) => c.validator !== 'notaryv1');
    await expect
      .poll(() => codes(traffic.since(mark).filter((a) => a.key.includes('/notary/'))), { timeout: 10_000 })
      .toContain('NOTARY_UNREACHABLE');
    await traffic.allCorrectSince(traffic.mark(), others);
    const answers = traffic.since(mark);
    const notaryAnswers = answers.filter((a) => notary.some((c) => c.key === a.key));
    expectFailClosed(answers.filter((a) => !notaryAnswers.includes(a)));
    // Until the cache entry expired an answer may still be the verdict; after, only transient ones.
    expect(notaryAnswers.filter((a) => a.judgement === 'wrong' || a.judgement === 'transport')).toEqual([]);
    expect(notaryAnswers.at(-1)?.judgement).toBe('transient');
  });
});
