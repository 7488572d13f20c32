/**
 * What a running provider holds: the current config and the Verifier built from it. A reload swaps
 * both at once; requests already in flight finish on the generation they started with.
 */
import type { Config } from '../config/index.ts';
import { MemoryCache } from '../cache/index.ts';
import type { Metrics } from '../observability/index.ts';
import { RegistryClient } from '../registry/index.ts';
import { configureSigstore, type ConfiguredSigstore } from '../trust/sigstore/index.ts';
import { Verifier, type CachedOutcome } from './verifier.ts';

interface Generation {
  readonly config: Config;
  readonly verifier: Verifier;
  readonly registry: RegistryClient;
  readonly sigstore: ConfiguredSigstore;
}

export class Runtime {
  private current: Generation;
  private generation = 0;
  /** Set once shutdown starts: /readyz fails so load balancers stop sending requests. */
  closing = false;
  private readonly cache: MemoryCache<CachedOutcome>;

  constructor(
    config: Config,
    private source: string,
    private readonly metrics?: Metrics,
    /** Told about each background TUF refresh of the Sigstore trusted root (error undefined: success). */
    private readonly onSigstoreRefresh?: (error: Error | undefined) => void,
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
    previous.sigstore.stop();
    setTimeout(() => void previous.registry.close(), previous.config.server.requestDeadlineMs).unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.current.sigstore.stop();
    await this.current.registry.close();
    this.cache.close();
  }

  private build(config: Config): Generation {
    const registry = new RegistryClient({ registries: config.registries, ...config.network });
    // A new generation keys the cache afresh: verdicts of the old policy are never served.
    // Sigstore trust material: a static trusted root and/or TUF refreshes in the background.
    const sigstore = configureSigstore(config.sigstore, this.onSigstoreRefresh);
    const verifier = new Verifier(
      config,
      { registry, sigstore: sigstore.trust, cache: this.cache, metrics: this.metrics },
      this.generation++,
    );
    return { config, verifier, registry, sigstore };
  }
}
