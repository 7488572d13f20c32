/**
 * The shared cache for replicated providers: verdicts in Redis, so every replica answers a key the
 * first one verified. A cache is an accelerator, never a dependency: when Redis is slow or down,
 * lookups are misses and writes are dropped, and admission carries on verifying (Ratify's habit).
 */
import { createClient } from 'redis';
import type { Cache } from './cache.ts';

export interface RedisCacheOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://…` for TLS. */
  readonly url: string;
  /** Keys are `<prefix><key>`; the prefix carries the config fingerprint. */
  readonly prefix: string;
  /** A lookup slower than this is a miss (default 100 ms): the admission budget is not Redis's. */
  readonly commandTimeoutMs?: number;
  /** Told about failures (at most one report per 30 s), without the URL's credentials. */
  readonly onError?: (message: string) => void;
}

const REPORT_EVERY_MS = 30_000;

export class RedisCache<V> implements Cache<V> {
  private readonly client: ReturnType<typeof createClient>;
  private readonly timeoutMs: number;
  private lastReport = 0;
  private closed = false;

  constructor(private readonly options: RedisCacheOptions) {
    this.timeoutMs = options.commandTimeoutMs ?? 100;
    this.client = createClient({
      url: options.url,
      // Fail commands at once while disconnected instead of queueing them behind a reconnect.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 2000,
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 5000),
      },
    });
    this.client.on('error', (err: Error) => this.report(`redis cache unavailable: ${err.message}`));
    this.client.connect().catch((err: unknown) => this.report(`redis cache unavailable: ${String(err)}`));
  }

  async get(key: string): Promise<V | undefined> {
    if (!this.client.isReady) return undefined;
    try {
      const raw = await this.withTimeout(this.client.get(this.options.prefix + key));
      return raw === null || raw === undefined ? undefined : (JSON.parse(raw) as V);
    } catch (err) {
      this.report(`redis cache lookup failed: ${(err as Error).message}`);
      return undefined;
    }
  }

  async set(key: string, value: V, ttlSeconds: number): Promise<void> {
    if (ttlSeconds <= 0 || !this.client.isReady) return;
    try {
      await this.withTimeout(
        this.client.set(this.options.prefix + key, JSON.stringify(value), { EX: ttlSeconds }),
      );
    } catch (err) {
      this.report(`redis cache write failed: ${(err as Error).message}`);
    }
  }

  async delete(key: string): Promise<void> {
    if (!this.client.isReady) return;
    try {
      await this.withTimeout(this.client.del(this.options.prefix + key));
    } catch (err) {
      this.report(`redis cache delete failed: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.close();
    } catch {
      this.client.destroy();
    }
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  private report(message: string): void {
    if (this.closed) return;
    const now = Date.now();
    if (now - this.lastReport < REPORT_EVERY_MS) return;
    this.lastReport = now;
    // Messages from the client may quote the URL; never let a password reach the logs.
    this.options.onError?.(message.replace(/\/\/[^@/\s]*@/g, '//***@'));
  }
}

/** Memory first (the cheap hit), then Redis; writes go to both. */
export class TieredCache<V> implements Cache<V> {
  constructor(
    private readonly near: Cache<V>,
    private readonly far: Cache<V>,
    /** How long a value found in Redis is kept in memory: short, so replicas converge. */
    private readonly nearTtlSeconds = 5,
  ) {}

  async get(key: string): Promise<V | undefined> {
    const near = await this.near.get(key);
    if (near !== undefined) return near;
    const far = await this.far.get(key);
    if (far !== undefined) await this.near.set(key, far, this.nearTtlSeconds);
    return far;
  }

  async set(key: string, value: V, ttlSeconds: number): Promise<void> {
    await Promise.all([this.near.set(key, value, ttlSeconds), this.far.set(key, value, ttlSeconds)]);
  }

  async delete(key: string): Promise<void> {
    await Promise.all([this.near.delete(key), this.far.delete(key)]);
  }
}
