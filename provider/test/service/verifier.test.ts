import { afterEach, describe, expect, it, vi } from 'vitest';

import { MemoryCache } from '../../src/cache/index.ts';
import type { Config } from '../../src/config/index.ts';
import { Metrics } from '../../src/observability/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { Verifier, type CachedOutcome, type Outcome, type Verdict } from '../../src/service/index.ts';
import { MAX_KEYS_IN_FLIGHT_PER_REQUEST } from '../../src/service/verifier.ts';
import {
  manifestBytes,
  serveManifest,
  sha256Digest,
  startHostileServer,
  type HostileServer,
} from '../helpers/hostile-server.ts';
import { configFromYaml, STATIC_ALLOW_DENY } from '../helpers/runtime.ts';

const REGISTRY_DELAY_MS = 100;

/** Static rules: loopback registries allowed (one rule validate-only), registry.test/denied denied. */
function configFor(registryHost: string, requestDeadlineMs = 5000): Config {
  return configFromYaml(`
${STATIC_ALLOW_DENY}server:
  requestDeadlineMs: ${requestDeadlineMs}
policy:
  - pattern: "127.0.0.1:*/*"
    validator: allow
  - pattern: "127.0.0.1:*/audit/*"
    validator: allow
    with: { mode: insecureValidateOnly }
  - pattern: "registry.test/denied/*"
    validator: deny
  - pattern: "127.0.0.1:*/denied/*"
    validator: deny
registries:
  - host: "${registryHost}"
    insecure: true
`);
}

interface Harness {
  readonly verifier: Verifier;
  readonly cache: MemoryCache<CachedOutcome>;
  readonly metrics: Metrics;
  readonly close: () => Promise<void>;
}

function verifierFor(config: Config): Harness {
  const registry = new RegistryClient({ registries: config.registries, ...config.network });
  const cache = new MemoryCache<CachedOutcome>(config.cache.maxEntries);
  const metrics = new Metrics(false);
  // Namespace 'test': cache keys are `test|<normalised reference>`.
  const verifier = new Verifier(config, { registry, cache, metrics }, 'test');
  return {
    verifier,
    cache,
    metrics,
    close: async () => {
      await registry.close();
      cache.close();
    },
  };
}

async function verificationsCounted(metrics: Metrics, cached: 'true' | 'false'): Promise<number> {
  const { values } = await metrics.verifications.get();
  return values.filter((v) => v.labels.cached === cached).reduce((sum, v) => sum + v.value, 0);
}

/** provenant_verifications_total's series as `result code cached` strings, with their counts. */
async function verificationsByCode(metrics: Metrics): Promise<Record<string, number>> {
  const { values } = await metrics.verifications.get();
  return Object.fromEntries(
    values.map((v) => [`${v.labels.result} ${v.labels.code} ${v.labels.cached}`, v.value]),
  );
}

function verdictOf(outcome: Outcome): Verdict {
  if (!outcome.ok) throw new Error(`expected a verdict, found ${outcome.error.toItemError()}`);
  return outcome.verdict;
}

function errorCodeOf(outcome: Outcome): string {
  if (outcome.ok) throw new Error(`expected an error, found a verdict for ${outcome.verdict.image}`);
  return outcome.error.code;
}

describe('verifier', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function harness(registryHost = '127.0.0.1:1', requestDeadlineMs?: number): Harness {
    const h = verifierFor(configFor(registryHost, requestDeadlineMs));
    cleanups.push(h.close);
    return h;
  }

  /** A registry that answers every manifest request with one manifest, after REGISTRY_DELAY_MS. */
  async function slowRegistry(manifest: Buffer): Promise<HostileServer> {
    const server = await startHostileServer((req, res) => {
      setTimeout(() => serveManifest(req, res, manifest), REGISTRY_DELAY_MS);
    });
    cleanups.push(server.close);
    return server;
  }

  describe('counting verifications (provenant_verifications_total)', () => {
    it('labels each with its error code, none when trusted, and never with the image', async () => {
      const registry = await slowRegistry(manifestBytes('counted'));
      const { verifier, metrics } = harness(registry.host);
      verdictOf(await verifier.verify(`${registry.host}/team/app:v1`));
      await verifier.verify('registry.test/denied/app:1');
      await verifier.verify('registry.test/denied/app:1');
      expect(await verificationsByCode(metrics)).toEqual({
        'trusted none false': 1,
        'rejected POLICY_STATIC_DENY false': 1,
        'rejected POLICY_STATIC_DENY true': 1,
      });
      const text = await metrics.registry.getSingleMetricAsString('provenant_verifications_total');
      expect(text).not.toContain('team/app');
      expect(text).not.toContain('denied/app');
    });

    it('labels a transient failure with its code too', async () => {
      const { verifier, metrics } = harness();
      expect(errorCodeOf(await verifier.verify('127.0.0.1:1/team/app:v1'))).toBe('REGISTRY_UNREACHABLE');
      expect(await verificationsByCode(metrics)).toEqual({ 'error REGISTRY_UNREACHABLE false': 1 });
    });
  });

  describe('caching', () => {
    it('caches a static deny and answers the second lookup from the cache', async () => {
      const { verifier, cache, metrics } = harness();
      const key = 'registry.test/denied/app:1';
      expect(errorCodeOf(await verifier.verify(key))).toBe('POLICY_STATIC_DENY');
      expect(await cache.get(`test|${key}`)).toEqual({
        error: { code: 'POLICY_STATIC_DENY', message: expect.stringContaining(key) as string },
      });
      const second = await verifier.verify(key);
      expect(errorCodeOf(second)).toBe('POLICY_STATIC_DENY');
      expect(second.ok ? '' : second.error.message).toContain('"registry.test/denied/*"');
      expect(await verificationsCounted(metrics, 'false')).toBe(1);
      expect(await verificationsCounted(metrics, 'true')).toBe(1);
    });

    it("shares a cached denial between spellings of one image, naming each caller's spelling", async () => {
      const { verifier, metrics } = harness();
      await verifier.verify('registry.test/denied/app:1');
      const other = await verifier.verify('REGISTRY.test/denied/app:1');
      expect(other.ok ? undefined : other.error.image).toBe('REGISTRY.test/denied/app:1');
      expect(await verificationsCounted(metrics, 'true')).toBe(1);
    });

    it('never caches a transient failure', async () => {
      const { verifier, cache, metrics } = harness();
      const key = '127.0.0.1:1/team/app:v1';
      expect(errorCodeOf(await verifier.verify(key))).toBe('REGISTRY_UNREACHABLE');
      expect(await cache.get(`test|${key}`)).toBeUndefined();
      expect(errorCodeOf(await verifier.verify(key))).toBe('REGISTRY_UNREACHABLE');
      expect(await verificationsCounted(metrics, 'true')).toBe(0);
      expect(await verificationsCounted(metrics, 'false')).toBe(2);
    });

    it('caches a trusted verdict so the registry is asked once', async () => {
      const manifest = manifestBytes('cached');
      const registry = await slowRegistry(manifest);
      const { verifier } = harness(registry.host);
      const key = `${registry.host}/team/app:v1`;
      const first = verdictOf(await verifier.verify(key));
      const second = verdictOf(await verifier.verify(key));
      expect(second).toEqual(first);
      expect(registry.requests).toHaveLength(1);
    });
  });

  it('coalesces concurrent identical lookups into one registry request', async () => {
    const manifest = manifestBytes('coalesced');
    const registry = await slowRegistry(manifest);
    const { verifier } = harness(registry.host);
    const key = `${registry.host}/team/app:v1`;
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => verifier.verify(key)));
    expect(outcomes.map((o) => verdictOf(o).digest)).toEqual(Array(5).fill(sha256Digest(manifest)));
    expect(registry.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
    expect(registry.requests).toHaveLength(1);
  });

  describe('pinning', () => {
    it("pins a tag to the registry's digest keeping the user's spelling", async () => {
      const manifest = manifestBytes('pinned');
      const registry = await slowRegistry(manifest);
      const { verifier } = harness(registry.host);
      const digest = sha256Digest(manifest);
      const verdict = verdictOf(await verifier.verify(`${registry.host}/team/app:v1`));
      expect(verdict.pinned).toBe(`${registry.host}/team/app:v1@${digest}`);
      expect(verdict.image).toBe(`${registry.host}/team/app:v1@${digest}`);
      expect(verdict).toMatchObject({ digest, validator: 'allow', rule: '127.0.0.1:*/*', mode: 'mutate' });
      expect(registry.requests[0]).toMatchObject({ method: 'GET', path: '/v2/team/app/manifests/v1' });
    });

    it('pins a key without a tag as name@digest, while the verdict names the default tag', async () => {
      const manifest = manifestBytes('untagged');
      const registry = await slowRegistry(manifest);
      const { verifier } = harness(registry.host);
      const digest = sha256Digest(manifest);
      const verdict = verdictOf(await verifier.verify(`${registry.host}/team/app`));
      expect(verdict.pinned).toBe(`${registry.host}/team/app@${digest}`);
      expect(verdict.image).toBe(`${registry.host}/team/app:latest@${digest}`);
    });

    it('returns the key unchanged in insecureValidateOnly mode, after still resolving its digest', async () => {
      const manifest = manifestBytes('validate only');
      const registry = await slowRegistry(manifest);
      const { verifier } = harness(registry.host);
      const key = `${registry.host}/audit/app:v1`;
      const verdict = verdictOf(await verifier.verify(key));
      expect(verdict.pinned).toBe(key);
      expect(verdict.mode).toBe('insecureValidateOnly');
      expect(verdict.digest).toBe(sha256Digest(manifest));
      expect(registry.requests).toHaveLength(1);
    });
  });

  it('reports an invalid reference without asking any registry or caching it', async () => {
    const registry = await slowRegistry(manifestBytes('never asked'));
    const { verifier, cache } = harness(registry.host);
    const set = vi.spyOn(cache, 'set');
    const outcome = await verifier.verify(`${registry.host}/UPPER/Case:tag`);
    expect(errorCodeOf(outcome)).toBe('REFERENCE_INVALID');
    expect(set).not.toHaveBeenCalled();
    expect(await cache.get(`test|${registry.host}/UPPER/Case:tag`)).toBeUndefined();
    expect(registry.requests).toHaveLength(0);
  });

  describe('a key with a tag and a digest', () => {
    it("admits it when the registry's tag points at that digest", async () => {
      const manifest = manifestBytes('tagged');
      const registry = await slowRegistry(manifest);
      const { verifier } = harness(registry.host);
      const digest = sha256Digest(manifest);
      const verdict = verdictOf(await verifier.verify(`${registry.host}/team/app:v1@${digest}`));
      expect(verdict.digest).toBe(digest);
      expect(registry.requests.map((r) => r.path)).toEqual(['/v2/team/app/manifests/v1']);
    });

    it('refuses another digest of the repository under a rule that admits the tag (static validator)', async () => {
      const registry = await slowRegistry(manifestBytes('the tag'));
      const { verifier } = harness(registry.host);
      const other = sha256Digest(manifestBytes('another image of the repository'));
      const outcome = await verifier.verify(`${registry.host}/team/app:v1@${other}`);
      expect(errorCodeOf(outcome)).toBe('VERIFY_TAG_DIGEST_MISMATCH');
      const message = outcome.ok ? '' : outcome.error.message;
      expect(message).toContain(`${registry.host}/team/app:v1@${other}`);
      expect(message).toContain(`found ${sha256Digest(manifestBytes('the tag'))}`);
    });

    it('still answers a deny rule first, without asking the registry', async () => {
      const registry = await slowRegistry(manifestBytes('denied'));
      const { verifier } = harness(registry.host);
      const outcome = await verifier.verify(`${registry.host}/denied/app:v1@${sha256Digest('x')}`);
      expect(errorCodeOf(outcome)).toBe('POLICY_STATIC_DENY');
      expect(registry.requests).toHaveLength(0);
    });
  });

  describe('one request with many keys', () => {
    /** A registry that serves one manifest per request after `delayMs`, recording the peak of open requests. */
    async function countingRegistry(delayMs: number): Promise<{ host: string; peak: () => number }> {
      let open = 0;
      let peak = 0;
      const server = await startHostileServer((req, res) => {
        open++;
        peak = Math.max(peak, open);
        setTimeout(() => {
          open--;
          serveManifest(req, res, manifestBytes(req.url ?? ''));
        }, delayMs);
      });
      cleanups.push(server.close);
      return { host: server.host, peak: () => peak };
    }

    it(`verifies at most ${MAX_KEYS_IN_FLIGHT_PER_REQUEST} keys at once and answers every key`, async () => {
      const registry = await countingRegistry(20);
      const { verifier } = harness(registry.host);
      const keys = Array.from({ length: 200 }, (_, i) => `${registry.host}/team/app${i}:v1`);
      const outcomes = await verifier.verifyAll(keys);
      expect(outcomes.filter((o) => o.ok)).toHaveLength(keys.length);
      expect(outcomes.map((o) => (o.ok ? o.verdict.image.split(':v1@')[0] : ''))).toEqual(
        keys.map((k) => k.slice(0, -':v1'.length)),
      );
      expect(registry.peak()).toBeLessThanOrEqual(MAX_KEYS_IN_FLIGHT_PER_REQUEST);
      expect(registry.peak()).toBeGreaterThan(1);
    });

    it('does not start keys still waiting when the deadline passes', async () => {
      const registry = await countingRegistry(300);
      const { verifier } = harness(registry.host, 200);
      const keys = Array.from(
        { length: 3 * MAX_KEYS_IN_FLIGHT_PER_REQUEST },
        (_, i) => `${registry.host}/x/a${i}`,
      );
      const outcomes = await verifier.verifyAll(keys);
      const codes = outcomes.map((o) => (o.ok ? 'ok' : o.error.code));
      expect(codes.slice(MAX_KEYS_IN_FLIGHT_PER_REQUEST)).toEqual(
        Array(2 * MAX_KEYS_IN_FLIGHT_PER_REQUEST).fill('REQUEST_DEADLINE_EXCEEDED'),
      );
      expect(registry.peak()).toBeLessThanOrEqual(MAX_KEYS_IN_FLIGHT_PER_REQUEST);
    });
  });
});
