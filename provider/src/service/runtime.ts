/**
 * What a running provider holds: the current config and the Verifier built from it. A reload swaps
 * both at once; requests already in flight finish on the config they started with.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/index.ts';
import { MemoryCache, RedisCache, TieredCache, type Cache } from '../cache/index.ts';
import type { Metrics } from '../observability/index.ts';
import { RegistryClient } from '../registry/index.ts';
import { configureSigstore, type ConfiguredSigstore } from '../trust/sigstore/index.ts';
import { Verifier, type CachedOutcome } from './verifier.ts';

export interface RuntimeOptions {
  readonly metrics?: Metrics | undefined;
  /** Told about degraded dependencies (an unreachable Redis); never given secrets. */
  readonly warn?: ((message: string) => void) | undefined;
  /** Told about each background TUF refresh of the Sigstore trusted root (error undefined: success). */
  readonly onSigstoreRefresh?: ((error: Error | undefined) => void) | undefined;
  /** Keep the public-good Sigstore root current through TUF when cosign validators use it (serve). */
  readonly refreshPublicGood?: boolean | undefined;
}

interface Generation {
  readonly config: Config;
  readonly verifier: Verifier;
  readonly registry: RegistryClient;
  readonly sigstore: ConfiguredSigstore;
}

export class Runtime {
  private current: Generation;
  /** Set once shutdown starts: /readyz fails so load balancers stop sending requests. */
  closing = false;
  private readonly memory: MemoryCache<CachedOutcome>;
  private readonly redis: RedisCache<CachedOutcome> | undefined;
  private readonly cache: Cache<CachedOutcome>;

  constructor(
    config: Config,
    private source: string,
    private readonly options: RuntimeOptions = {},
  ) {
    this.memory = new MemoryCache<CachedOutcome>(config.cache.maxEntries);
    // The cache section applies at start, like server and log: the Redis connection is not re-made.
    this.redis =
      config.cache.redis === undefined
        ? undefined
        : new RedisCache<CachedOutcome>({
            url: config.cache.redis,
            prefix: 'provenant:v1:',
            onError: options.warn,
          });
    this.cache = this.redis === undefined ? this.memory : new TieredCache(this.memory, this.redis);
    this.current = this.build(config);
  }

  get config(): Config {
    return this.current.config;
  }

  get verifier(): Verifier {
    return this.current.verifier;
  }

  get configSource(): string {
    return this.source;
  }

  /** Resolves once the current config's validators can answer; rejects (CONFIG_INVALID) if they never will. */
  ready(): Promise<void> {
    return this.current.verifier.ready();
  }

  /**
   * Builds the new config's validators, waits until they are ready (policies compiled), then swaps them
   * in. If they never get ready the new generation is discarded and the current one keeps serving.
   */
  async replace(config: Config, source: string): Promise<void> {
    const next = this.build(config);
    try {
      await next.verifier.ready();
    } catch (err) {
      next.sigstore.stop();
      await Promise.all([next.registry.close(), next.verifier.close()]);
      throw err;
    }
    this.swap(next, source);
  }

  /** Swaps in a ready generation; the old one's connections close once its in-flight requests are done. */
  private swap(next: Generation, source: string): void {
    const previous = this.current;
    this.current = next;
    this.source = source;
    setTimeout(() => {
      void previous.registry.close();
      void previous.verifier.close();
    }, previous.config.server.requestDeadlineMs).unref();
    previous.sigstore.stop();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.current.sigstore.stop();
    await Promise.all([this.current.registry.close(), this.current.verifier.close()]);
    this.memory.close();
    await this.redis?.close();
  }

  private build(config: Config): Generation {
    const registry = new RegistryClient({
      registries: config.registries,
      policyPatterns: config.policy.map((rule) => rule.pattern),
      ...config.network,
    });
    // Sigstore trust material: a static trusted root and/or TUF refreshes in the background.
    const sigstore = configureSigstore(
      config.sigstore,
      this.options.onSigstoreRefresh,
      this.options.refreshPublicGood === true && config.validators.some((v) => v.type === 'cosign'),
    );
    const verifier = new Verifier(
      config,
      { registry, sigstore: sigstore.trust, cache: this.cache, metrics: this.options.metrics },
      policyFingerprint(config),
    );
    return { config, verifier, registry, sigstore };
  }
}

/**
 * Cache entries are keyed by what decides a verdict (validators, policy, registries, sigstore): a reload that
 * changes any of it never serves the old policy's verdicts, and replicas sharing Redis with the same
 * config share entries.
 */
export function policyFingerprint(config: Config): string {
  const decisive = JSON.stringify([config.validators, config.policy, config.registries, config.sigstore]);
  return createHash('sha256').update(decisive).digest('hex').slice(0, 16);
}
