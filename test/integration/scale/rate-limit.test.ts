/**
 * A registry that rate-limits slows Provenant down instead of drawing more requests from it. A real
 * `provenant serve` asks a real docker-registry through the counting proxy (which logs every request
 * with its time) and a hostile proxy behind it that answers 429 storms. Counted at the registry: every
 * image is asked at most 1 + network.maxRetries times however many requests want it at once, the
 * attempts are spaced by the registry's `Retry-After`, no answer waits past server.requestDeadlineMs,
 * a `Retry-After` longer than Provenant will wait ends the attempts at once, and concurrent requests for
 * one image share one registry fetch. test/integration/faults/registry.test.ts has 429 and 5xx storms
 * under steady traffic (verdicts stay correct, a loose bound on requests per answer);
 * provider/test/registry/transport.test.ts the client's retry rules against a hand-built server.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCountingProxy, type CountingProxy, type LoggedRequest } from '../../harness/counting-proxy.ts';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { errorCode, verify, type ProviderAnswer } from '../../harness/world.ts';

const MAX_RETRIES = 2;
const DEADLINE_MS = 5000;
/** Scheduling on a loaded machine: an answer may come this much after its bound. */
const SLACK_MS = 1500;
/** Timers fire no earlier than asked, but the two arrivals are stamped by a busy process. */
const TIMER_JITTER_MS = 50;
const IMAGES = 4;
const CALLERS_PER_IMAGE = 5;

describe('a registry answering 429 storms', () => {
  let dir: string;
  let registry: RegistryServer;
  let fault: FaultProxy;
  let proxy: CountingProxy;
  let provenant: RunningProvenant;
  let dispatcher: Agent;
  let round = 0;

  beforeAll(async () => {
    dir = await makeTempDir('scale-rate-limit');
    registry = await startDistributionRegistry();
    fault = await startFaultProxy(registry);
    proxy = await startCountingProxy(`http://${fault.host}`);
    const configPath = path.join(dir, 'provenant.yaml');
    await writeFile(
      configPath,
      [
        'validators: [{ name: allow, type: static, approve: true }]',
        `policy: [{ pattern: "${proxy.host}/team/*", validator: allow }]`,
        `registries: [{ host: "${proxy.host}", insecure: true }]`,
        `server: { host: 127.0.0.1, port: 0, requestDeadlineMs: ${DEADLINE_MS} }`,
        `network: { requestTimeoutMs: 1000, maxRetries: ${MAX_RETRIES} }`,
        'log: { level: error }',
      ].join('\n'),
    );
    provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
    dispatcher = devCertAgent(provenant);
  });
  afterAll(async () => {
    await dispatcher?.close();
    await provenant?.stop();
    await proxy?.close();
    await fault?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Fresh images, never asked about (nothing cached). */
  async function freshImages(count: number): Promise<PushedManifest[]> {
    round++;
    return Promise.all(
      Array.from({ length: count }, (_, i) => pushRandomImage(registry.url, `team/r${round}i${i}`, 'v1')),
    );
  }
  const key = (image: PushedManifest): string => image.reference.replace(registry.host, proxy.host);
  const tagPath = (image: PushedManifest): string =>
    new URL(`http://${key(image)}`).pathname.replace(':', '/manifests/');

  /** Every image asked by CALLERS_PER_IMAGE single-key requests at once; answers with their latency. */
  async function askAtOnce(
    images: readonly PushedManifest[],
  ): Promise<{ answer: ProviderAnswer; ms: number }[]> {
    proxy.take();
    return Promise.all(
      images.flatMap((image) =>
        Array.from({ length: CALLERS_PER_IMAGE }, async () => {
          const started = performance.now();
          const answer = await verify(provenant.url, dispatcher, [key(image)]);
          return { answer, ms: performance.now() - started };
        }),
      ),
    );
  }

  /** The registry requests for each image's tag, in order. */
  function attempts(images: readonly PushedManifest[], log: readonly LoggedRequest[]): LoggedRequest[][] {
    return images.map((image) => log.filter((r) => r.path === `/v2${tagPath(image)}`));
  }

  it(`asks each image at most ${MAX_RETRIES + 1} times, a Retry-After apart, however many requests want it`, async () => {
    const images = await freshImages(IMAGES);
    fault.setMode({ kind: 'status', status: 429, headers: { 'retry-after': '1' } });
    const answers = await askAtOnce(images);
    const log = proxy.take().log;
    fault.setMode({ kind: 'forward' });

    expect(new Set(answers.map((a) => `${a.answer.status} ${errorCode(a.answer.systemError)}`))).toEqual(
      new Set(['200 REGISTRY_RATE_LIMITED']),
    );
    expect(answers.filter((a) => a.ms > DEADLINE_MS + SLACK_MS)).toEqual([]);
    for (const tries of attempts(images, log)) {
      expect(tries.map((r) => r.status)).toEqual(Array(MAX_RETRIES + 1).fill(429));
      for (let i = 1; i < tries.length; i++)
        expect(tries[i]!.atMs - tries[i - 1]!.atMs).toBeGreaterThanOrEqual(1000 - TIMER_JITTER_MS);
    }
    expect(log).toHaveLength(IMAGES * (MAX_RETRIES + 1));

    // The storm over, the same keys are verified: a rate-limited answer was never cached.
    const after = await askAtOnce(images);
    expect(after.every((a) => a.answer.systemError === '' && a.answer.items[0]?.error === '')).toBe(true);
  });

  it('stops at the deadline when the Retry-After would outlast it, and at once when it asks for more than 10 s', async () => {
    // A Retry-After over 10 s: each request gives up at once, without a retry. The failure is not
    // remembered, so a caller arriving after the first fetch gave up (on a loaded machine the callers of
    // one image do not all arrive within that fetch) asks once itself: at most one attempt per caller.
    for (const [retryAfter, most, within] of [
      ['3', 2, DEADLINE_MS],
      ['3600', CALLERS_PER_IMAGE, 0],
    ] as const) {
      const images = await freshImages(2);
      fault.setMode({ kind: 'status', status: 429, headers: { 'retry-after': retryAfter } });
      const answers = await askAtOnce(images);
      const log = proxy.take().log;
      fault.setMode({ kind: 'forward' });
      for (const { answer, ms } of answers) {
        expect(['REGISTRY_RATE_LIMITED', 'REQUEST_DEADLINE_EXCEEDED']).toContain(
          errorCode(answer.systemError),
        );
        expect(ms, `Retry-After ${retryAfter}`).toBeLessThan(within + SLACK_MS);
      }
      for (const tries of attempts(images, log)) {
        expect(tries.length).toBeGreaterThanOrEqual(1);
        expect(tries.length).toBeLessThanOrEqual(most);
      }
    }
  });

  it('fetches an image once for all the requests that want it at once', async () => {
    const images = await freshImages(IMAGES);
    // A slow registry: every caller's request arrives while the first one's fetch is still under way.
    fault.setMode({ kind: 'slow', delayMs: 500 });
    const answers = await askAtOnce(images);
    const log = proxy.take().log;
    fault.setMode({ kind: 'forward' });
    for (const [i, image] of images.entries()) {
      const digests = answers
        .slice(i * CALLERS_PER_IMAGE, (i + 1) * CALLERS_PER_IMAGE)
        .map((a) => (a.answer.items[0]?.value as { digest?: string } | undefined)?.digest);
      expect(digests).toEqual(Array(CALLERS_PER_IMAGE).fill(image.digest));
    }
    expect(attempts(images, log).map((tries) => tries.length)).toEqual(Array(IMAGES).fill(1));
    expect(log).toHaveLength(IMAGES);
  });
});
