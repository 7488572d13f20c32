/**
 * What a running provider holds: the current config and the Verifier built from it. A reload swaps
 * both at once; requests already in flight finish on the config they started with.
 */
import { dirname, isAbsolute } from 'node:path';
import { Alerter } from '../alerting/index.ts';
import type { Config } from '../config/index.ts';
import {
  cacheHmacKey,
  cacheRedisPassword,
  configFingerprint,
  MemoryCache,
  RedisCache,
  TieredCache,
  type Cache,
} from '../cache/index.ts';
import type { Metrics } from '../observability/index.ts';
import { RegistryClient } from '../registry/index.ts';
import { configureSigstore, type ConfiguredSigstore } from '../trust/sigstore/index.ts';
import { isCachedOutcome } from './cached-outcome.ts';
import { Verifier, type CachedOutcome } from './verifier.ts';

export interface RuntimeOptions {
  readonly metrics?: Metrics | undefined;
  /** Told about degraded dependencies (an unreachable Redis); never given secrets. */
  readonly warn?: ((message: string) => void) | undefined;
  /** Told about each background TUF refresh of the Sigstore trusted root (error undefined: success). */
  readonly onSigstoreRefresh?: ((error: Error | undefined) => void) | undefined;
  /** Keep the public-good Sigstore root current through TUF when cosign validators use it (serve). */
  readonly refreshPublicGood?: boolean | undefined;
  /** Send the config's `alerting:` alerts (serve; the CLI's one-off verifications do not). */
  readonly sendAlerts?: boolean | undefined;
}

interface Generation {
  readonly config: Config;
  readonly verifier: Verifier;
  readonly registry: RegistryClient;
  readonly sigstore: ConfiguredSigstore;
}

/**
 * `draining`: shutdown has started; /readyz fails so Kubernetes takes the replica out of its endpoints,
 * while requests (in flight and arriving) are still verified. `closed`: registry client and caches are
 * closed; nothing can be verified any more.
 */
export type RuntimePhase = 'serving' | 'draining' | 'closed';

export class Runtime {
  private current: Generation;
  private state: RuntimePhase = 'serving';
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
            // v2: entries carry an HMAC (v1 entries are never read).
            prefix: 'provenant:v2:',
            password: cacheRedisPassword(config.cache),
            hmacKey: cacheHmacKey(config.cache),
            isValue: isCachedOutcome,
            onError: options.warn,
            onRejected: (reason) => options.metrics?.cacheRejections.inc({ reason }),
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

  get phase(): RuntimePhase {
    return this.state;
  }

  /** Starts the shutdown drain: not ready any more, still verifying. */
  drain(): void {
    if (this.state === 'serving') this.state = 'draining';
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
    const next = this.build(config, this.current);
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

  /** Closes the registry client and caches: call it only once the HTTP server has finished its requests. */
  async close(): Promise<void> {
    this.state = 'closed';
    this.current.sigstore.stop();
    await Promise.all([this.current.registry.close(), this.current.verifier.close()]);
    this.memory.close();
    await this.redis?.close();
  }

  /** `previous`: the generation this one replaces, whose last TUF-verified Sigstore root carries over. */
  private build(config: Config, previous?: Generation): Generation {
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
      previous?.sigstore,
    );
    const alerter =
      this.options.sendAlerts === true && config.alerting !== undefined
        ? new Alerter(config.alerting, {
            // Template files are relative to the config file, like every path in it.
            baseDir: isAbsolute(this.source) ? dirname(this.source) : process.cwd(),
            warn: this.options.warn ?? (() => undefined),
          })
        : undefined;
    const verifier = new Verifier(
      config,
      { registry, sigstore: sigstore.trust, cache: this.cache, metrics: this.options.metrics, alerter },
      configFingerprint(config),
    );
    return { config, verifier, registry, sigstore };
  }
}
