/**
 * The shared cache for replicated providers: verdicts in Redis, so every replica answers a key the
 * first one verified. A cache is an accelerator, never a dependency: when Redis is slow or down,
 * lookups are misses and writes are dropped, and admission carries on verifying (Ratify's habit).
 *
 * Redis is a trust boundary: whoever can write to it could otherwise admit any image. Every entry
 * carries an HMAC-SHA256 (RFC 2104) over its Redis key, its expiry and its value, so an entry can be
 * neither forged, nor moved to another key (another image, another config fingerprint), nor kept past
 * its TTL; a decoded value must also pass the caller's type guard. Anything else is a miss, reported.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { createClient } from 'redis';
import { ProvenantError } from '../types/errors.ts';
import type { Cache } from './cache.ts';

export interface RedisCacheOptions<V> {
  /** `redis://[:password@]host:port[/db]` or `rediss://…` for TLS. */
  readonly url: string;
  /** The password (AUTH), when it is not in the URL (cache.redisPasswordFile). */
  readonly password?: string | undefined;
  /** Keys are `<prefix><key>`; the prefix carries the config fingerprint. */
  readonly prefix: string;
  /** A lookup slower than this is a miss (default 100 ms): the admission budget is not Redis's. */
  readonly commandTimeoutMs?: number;
  /** Authenticates entries; at least MIN_HMAC_KEY_BYTES long (see cacheHmacKey). */
  readonly hmacKey: Buffer;
  /** Accepts only values of the cached type: an authentic entry of an older shape is still a miss. */
  readonly isValue: (value: unknown) => value is V;
  /** Told about failures (at most one report per 30 s), without the URL's credentials. */
  readonly onError?: (message: string) => void;
  /** Told about every entry refused as a miss, for a metric; `onError` gets a (rate-limited) report too. */
  readonly onRejected?: (reason: RejectReason) => void;
}

/** Why an entry read from Redis was not believed. */
export type RejectReason = 'mac' | 'expired' | 'malformed';

const REPORT_EVERY_MS = 30_000;
/** HMAC-SHA256 keys shorter than the hash output weaken it (RFC 2104 §3). */
export const MIN_HMAC_KEY_BYTES = 32;

const REJECT_REASONS: Record<RejectReason, string> = {
  mac: 'its HMAC does not match: written by someone without the key, or for another key',
  expired: 'its authenticated expiry has passed',
  malformed: 'it is not a cache entry of this version',
};

/**
 * The HMAC key from `cache.hmacKey` or the file `cache.hmacKeyFile` names (a mounted Secret; one
 * trailing newline is ignored). Errors name the file and the length found, never the key.
 */
export function cacheHmacKey(cache: {
  hmacKey?: string | undefined;
  hmacKeyFile?: string | undefined;
}): Buffer {
  let key: Buffer;
  if (cache.hmacKeyFile === undefined) key = Buffer.from(cache.hmacKey ?? '', 'utf8');
  else {
    try {
      key = Buffer.from(readFileSync(cache.hmacKeyFile, 'utf8').replace(/\r?\n$/, ''), 'utf8');
    } catch (err) {
      throw new ProvenantError(
        'CONFIG_UNREADABLE',
        `cannot read cache.hmacKeyFile ${cache.hmacKeyFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  if (key.length < MIN_HMAC_KEY_BYTES) {
    throw new ProvenantError(
      'CONFIG_INVALID',
      `cache.${cache.hmacKeyFile === undefined ? 'hmacKey' : `hmacKeyFile ${cache.hmacKeyFile}`} holds ${key.length} bytes: expected at least ${MIN_HMAC_KEY_BYTES}`,
    );
  }
  return key;
}

/**
 * The password in the file `cache.redisPasswordFile` names (one trailing newline is ignored), or
 * undefined without one. Errors name the file, never its content.
 */
export function cacheRedisPassword(cache: { redisPasswordFile?: string | undefined }): string | undefined {
  if (cache.redisPasswordFile === undefined) return undefined;
  try {
    return readFileSync(cache.redisPasswordFile, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ProvenantError(
      'CONFIG_UNREADABLE',
      `cannot read cache.redisPasswordFile ${cache.redisPasswordFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

export class RedisCache<V> implements Cache<V> {
  /** Undefined until the redis module is loaded (in the background, from the constructor). */
  private client: ReturnType<typeof createClient> | undefined;
  private readonly timeoutMs: number;
  /** When each kind of failure was last reported: one noisy kind must not hide another. */
  private readonly lastReport = new Map<string, number>();
  private closed = false;

  constructor(private readonly options: RedisCacheOptions<V>) {
    this.timeoutMs = options.commandTimeoutMs ?? 100;
    // The redis module is loaded here, not when the process starts: a config without cache.redis never
    // pays for it (README.md, Performance). Until it is connected, lookups are misses.
    import('redis').then(
      ({ createClient }) => this.connect(createClient),
      (err: unknown) => this.report(`redis cache unavailable: ${String(err)}`),
    );
  }

  private connect(create: typeof createClient): void {
    if (this.closed) return;
    const client = create({
      url: this.options.url,
      ...(this.options.password === undefined ? {} : { password: this.options.password }),
      // Fail commands at once while disconnected instead of queueing them behind a reconnect.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 2000,
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 5000),
      },
    });
    client.on('error', (err: Error) => this.report(`redis cache unavailable: ${err.message}`));
    client.connect().catch((err: unknown) => this.report(`redis cache unavailable: ${String(err)}`));
    this.client = client;
  }

  async get(key: string): Promise<V | undefined> {
    const client = this.client;
    if (client?.isReady !== true) return undefined;
    try {
      const raw = await this.withTimeout(client.get(this.options.prefix + key));
      return typeof raw === 'string' ? this.decode(this.options.prefix + key, raw) : undefined;
    } catch (err) {
      this.report(`redis cache lookup failed: ${(err as Error).message}`);
      return undefined;
    }
  }

  async set(key: string, value: V, ttlSeconds: number): Promise<void> {
    const client = this.client;
    if (ttlSeconds <= 0 || client?.isReady !== true) return;
    try {
      await this.withTimeout(
        client.set(this.options.prefix + key, this.encode(this.options.prefix + key, value, ttlSeconds), {
          EX: ttlSeconds,
        }),
      );
    } catch (err) {
      this.report(`redis cache write failed: ${(err as Error).message}`);
    }
  }

  async delete(key: string): Promise<void> {
    const client = this.client;
    if (client?.isReady !== true) return;
    try {
      await this.withTimeout(client.del(this.options.prefix + key));
    } catch (err) {
      this.report(`redis cache delete failed: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const client = this.client;
    if (client === undefined) return;
    try {
      await client.close();
    } catch {
      client.destroy();
    }
  }

  /** `<mac>.<expiry ms>.<JSON value>`, the MAC (base64url) over the Redis key and everything after it. */
  private encode(redisKey: string, value: V, ttlSeconds: number): string {
    const payload = `${Date.now() + ttlSeconds * 1000}.${JSON.stringify(value)}`;
    return `${this.mac(redisKey, payload).toString('base64url')}.${payload}`;
  }

  private decode(redisKey: string, raw: string): V | undefined {
    const dot = raw.indexOf('.');
    const payload = raw.slice(dot + 1);
    const given = Buffer.from(raw.slice(0, Math.max(dot, 0)), 'base64url');
    const expected = this.mac(redisKey, payload);
    if (dot < 0 || given.length !== expected.length || !timingSafeEqual(given, expected))
      return this.reject(redisKey, 'mac');
    const expiryEnd = payload.indexOf('.');
    if (!(Number(payload.slice(0, expiryEnd)) > Date.now())) return this.reject(redisKey, 'expired');
    let value: unknown;
    try {
      value = JSON.parse(payload.slice(expiryEnd + 1));
    } catch {
      return this.reject(redisKey, 'malformed');
    }
    return this.options.isValue(value) ? value : this.reject(redisKey, 'malformed');
  }

  private mac(redisKey: string, payload: string): Buffer {
    // The key is length-prefixed so no (key, payload) pair can be re-split into another.
    return createHmac('sha256', this.options.hmacKey)
      .update(`${redisKey.length}:${redisKey}.${payload}`)
      .digest();
  }

  private reject(redisKey: string, reason: RejectReason): undefined {
    this.options.onRejected?.(reason);
    this.report(`redis cache entry refused: ${redisKey} (${REJECT_REASONS[reason]}); verifying instead`);
    return undefined;
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
    const kind = message.split(':')[0] ?? message;
    if (now - (this.lastReport.get(kind) ?? -Infinity) < REPORT_EVERY_MS) return;
    this.lastReport.set(kind, now);
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

  getLocal(key: string): V | undefined {
    return this.near.getLocal?.(key);
  }

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
