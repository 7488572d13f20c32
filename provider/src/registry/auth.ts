/**
 * Registry authentication shared by the registry client and the Notary client: the distribution
 * "Token Authentication Specification" (a 401 with `Bearer realm=…,service=…,scope=…` is answered by
 * `GET realm?service&scope`), a bounded token cache, and the rule for where credentials may go.
 *
 * Credentials go only to the origin they are configured for. A token realm on another origin is still
 * asked for a token (anonymous pulls need one), but never with the registry's credentials: it gets the
 * credentials of its own `registries:` entry, if it has one. The one exception is Docker Hub, whose
 * registry sends clients to its own token service on another host.
 */
import { LRUCache } from 'lru-cache';

import type { Challenge } from './challenge.ts';
import type { HttpResponse, TlsTrust, Transport } from './transport.ts';

const TOKEN_MAX_BYTES = 64 * 1024;
const TOKEN_DEFAULT_LIFETIME_S = 60;
// Renew a little early so a token never expires between being read and being used.
const TOKEN_RENEW_EARLY_S = 5;
// Keys are (registry, repository scope): one per repository pulled; bounded so a flood of distinct
// repositories cannot grow the map without end.
const MAX_CACHED_TOKENS = 1024;
// Docker Hub's registry and Notary server send clients to auth.docker.io for tokens
// (https://docs.docker.com/registry/spec/auth/token/).
const KNOWN_TOKEN_SERVICES: ReadonlyMap<string, string> = new Map([
  ['registry-1.docker.io', 'auth.docker.io'],
  ['notary.docker.io', 'auth.docker.io'],
]);

/** Bearer tokens per key, dropped when they expire or when too many are held. */
export class TokenCache {
  private readonly tokens = new LRUCache<string, string>({ max: MAX_CACHED_TOKENS, ttlAutopurge: false });

  get(key: string): string | undefined {
    return this.tokens.get(key);
  }

  set(key: string, header: string, lifetimeS: number): void {
    const ttl = Math.max(0, lifetimeS - TOKEN_RENEW_EARLY_S) * 1000;
    if (ttl > 0) this.tokens.set(key, header, { ttl });
  }

  delete(key: string): void {
    this.tokens.delete(key);
  }

  get size(): number {
    return this.tokens.size;
  }
}

/** The realm URL with the challenge's service and scope, or undefined when the realm is not a URL. */
export function tokenRealm(challenge: Challenge, scope: string): URL | undefined {
  let realm: URL;
  try {
    realm = new URL(challenge.params['realm'] ?? '');
  } catch {
    return undefined;
  }
  if (challenge.params['service'] !== undefined)
    realm.searchParams.set('service', challenge.params['service']);
  realm.searchParams.set('scope', challenge.params['scope'] ?? scope);
  return realm;
}

/**
 * Whether credentials configured for `origin` may be sent to `target` (a token realm or a redirect):
 * only to the same origin, or from Docker Hub to its token service over HTTPS.
 */
export function credentialsMayGo(origin: URL, target: URL): boolean {
  if (target.origin === origin.origin) return true;
  return target.protocol === 'https:' && KNOWN_TOKEN_SERVICES.get(origin.hostname) === target.host;
}

export interface TokenRequest {
  readonly realm: URL;
  /** `Basic …`, when credentials may go to the realm. */
  readonly authorization: string | undefined;
  readonly image: string;
  readonly signal: AbortSignal;
  readonly ca: TlsTrust | undefined;
}

/** GETs a token from the realm, through the egress policy like every other request. */
export function requestToken(transport: Transport, req: TokenRequest): Promise<HttpResponse> {
  return transport.send({
    method: 'GET',
    url: req.realm,
    signal: req.signal,
    image: req.image,
    maxBytes: TOKEN_MAX_BYTES,
    purpose: 'token',
    ca: req.ca,
    headers: req.authorization === undefined ? {} : { authorization: req.authorization },
  });
}

/** The token in a token server's JSON answer (`token`, or OAuth2's `access_token`), and its lifetime. */
export function parseToken(
  body: Buffer,
): { readonly header: string; readonly lifetimeS: number } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const token = typeof obj['token'] === 'string' ? obj['token'] : obj['access_token'];
  if (typeof token !== 'string' || token === '') return undefined;
  const expires = obj['expires_in'];
  const lifetimeS = typeof expires === 'number' && expires > 0 ? expires : TOKEN_DEFAULT_LIFETIME_S;
  return { header: `Bearer ${token}`, lifetimeS };
}
