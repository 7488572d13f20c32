/**
 * What a running provider holds: the current config and the Verifier built from it. A reload swaps
 * both at once; requests already in flight finish on the generation they started with.
 */
import type { Config } from '../config/index.ts';
import { MemoryCache } from '../cache/index.ts';
import type { Metrics } from '../observability/index.ts';
import { RegistryClient } from '../registry/index.ts';
import { SigstoreTrust } from '../trust/sigstore/index.ts';
import { Verifier, type CachedOutcome } from './verifier.ts';

export class Runtime {
  private current: { config: Config; verifier: Verifier; registry: RegistryClient };
  private generation = 0;
  /** Set once shutdown starts: /readyz fails so load balancers stop sending requests. */
  closing = false;
  private readonly cache: MemoryCache<CachedOutcome>;

  constructor(
    config: Config,
    private source: string,
    private readonly metrics?: Metrics,
  ) {
    this.cache = new MemoryCache<CachedOutcome>(config.cache.maxEntries);
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

  /** Swaps in a new config; the old registry client closes once its in-flight requests are done. */
  replace(config: Config, source: string): void {
    const previous = this.current;
    this.current = this.build(config);
    this.source = source;
    setTimeout(() => void previous.registry.close(), previous.config.server.requestDeadlineMs).unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.current.registry.close();
    this.cache.close();
  }

  private build(config: Config): { config: Config; verifier: Verifier; registry: RegistryClient } {
    const registry = new RegistryClient({ registries: config.registries, ...config.network });
    // A new generation keys the cache afresh: verdicts of the old policy are never served.
    const sigstore =
      config.sigstore?.trustedRoot === undefined ? undefined : new SigstoreTrust(config.sigstore);
    const verifier = new Verifier(
      config,
      { registry, sigstore, cache: this.cache, metrics: this.metrics },
      this.generation++,
    );
    return { config, verifier, registry };
  }
}
