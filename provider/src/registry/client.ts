/**
 * The OCI distribution client validators stand on (distribution-spec v1.1). Validators never do HTTP:
 * they ask this client for digests, manifests and referrers.
 */
import { createHash } from 'node:crypto';
import type { Agent } from 'undici';
import type { RegistryConfig } from '../config/index.ts';
import { registryApiHost, type ImageReference } from '../reference/index.ts';
import { ProvenantError } from '../types/errors.ts';
import { parseChallenge, type Challenge } from './challenge.ts';
import { basicHeader, credentialsFor } from './credentials.ts';
import { RegistryHosts } from './hosts.ts';
import { MANIFEST_ACCEPT } from './media-types.ts';
import { Transport, type HttpRequest, type HttpResponse } from './transport.ts';

export interface RegistryClientOptions {
  readonly registries: readonly RegistryConfig[];
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
  readonly maxManifestBytes: number;
}

const TOKEN_MAX_BYTES = 64 * 1024;
const TOKEN_DEFAULT_LIFETIME_S = 60;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

interface CachedToken {
  readonly header: string;
  readonly expiresAtMs: number;
}

export class RegistryClient {
  private readonly transport: Transport;
  private readonly hosts: RegistryHosts;
  /** Bearer tokens per (registry, scope), reused until they expire. */
  private readonly tokens = new Map<string, CachedToken>();

  constructor(private readonly options: RegistryClientOptions) {
    this.transport = new Transport(options);
    this.hosts = new RegistryHosts(options.registries);
  }

  /** The digest a tag points at (HEAD, with a GET fallback); a digest reference is returned as is. */
  async resolveDigest(ref: ImageReference, signal: AbortSignal): Promise<string> {
    if (ref.digest !== undefined) return ref.digest;
    const path = `/v2/${ref.repository}/manifests/${ref.tag ?? 'latest'}`;
    const head = await this.get(ref, 'HEAD', path, signal);
    const advertised = head.headers['docker-content-digest'];
    if (head.status === 200 && advertised !== undefined && DIGEST.test(advertised)) return advertised;
    // Some registries omit Docker-Content-Digest or refuse HEAD: fetch and hash the manifest ourselves.
    if (head.status !== 200 && head.status !== 405) expectOk(head, ref);
    const manifest = await this.fetchManifest(ref, ref.tag ?? 'latest', signal);
    return manifest.digest;
  }

  /** Fetches a manifest by tag or digest; the digest is computed from the bytes, and checked when known. */
  async fetchManifest(
    ref: ImageReference,
    tagOrDigest: string,
    signal: AbortSignal,
  ): Promise<{ digest: string; mediaType: string | undefined; body: Buffer }> {
    const res = await this.get(ref, 'GET', `/v2/${ref.repository}/manifests/${tagOrDigest}`, signal);
    expectOk(res, ref);
    const digest = `sha256:${createHash('sha256').update(res.body).digest('hex')}`;
    if (tagOrDigest.includes(':') && tagOrDigest !== digest) {
      throw new ProvenantError(
        'REGISTRY_DIGEST_MISMATCH',
        `registry ${ref.registry} served a manifest for ${ref.original} that does not match its digest: expected ${tagOrDigest}, found ${digest}`,
        { image: ref.original },
      );
    }
    return { digest, mediaType: res.headers['content-type'], body: res.body };
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private async get(
    ref: ImageReference,
    method: 'GET' | 'HEAD',
    path: string,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    const config = this.hosts.lookup(ref.registry);
    const host = registryApiHost(ref.registry);
    const agent = this.transport.agentFor(host, config?.ca);
    const url = new URL(path, `${config?.insecure === true ? 'http' : 'https'}://${host}`);
    const scope = `repository:${ref.repository}:pull`;
    const request = (authorization: string | undefined): HttpRequest => ({
      method,
      url,
      signal,
      image: ref.original,
      maxBytes: this.options.maxManifestBytes,
      headers: { accept: MANIFEST_ACCEPT, ...(authorization === undefined ? {} : { authorization }) },
    });
    // Tokens are keyed by the URL's host, which drops a default :443 the reference may spell out.
    const cached = this.cachedToken(url.host, scope);
    let res = await this.transport.send(agent, request(cached ?? this.basicAuthorization(config, url)));
    if (res.status === 401) {
      const authorization = await this.authorize(ref, config, agent, url, res, scope, signal);
      res = await this.transport.send(agent, request(authorization));
    }
    return res;
  }

  /** Answers a 401 challenge: basic credentials, or a bearer token from the challenge's realm. */
  private async authorize(
    ref: ImageReference,
    config: RegistryConfig | undefined,
    agent: Agent,
    url: URL,
    res: HttpResponse,
    scope: string,
    signal: AbortSignal,
  ): Promise<string> {
    const challenge = parseChallenge(res.headers['www-authenticate']);
    if (challenge?.scheme === 'bearer')
      return this.fetchToken(ref, config, agent, url, challenge, scope, signal);
    const basic = this.basicAuthorization(config, url);
    if (challenge?.scheme === 'basic' && basic !== undefined) return basic;
    throw unauthorized(
      ref,
      basic === undefined ? 'no credentials are configured for it' : 'the registry refused them',
    );
  }

  private basicAuthorization(config: RegistryConfig | undefined, url: URL): string | undefined {
    const creds = credentialsFor(config);
    // Never send credentials in clear text unless the registry is explicitly marked insecure.
    if (creds === undefined || (url.protocol !== 'https:' && config?.insecure !== true)) return undefined;
    return basicHeader(creds);
  }

  private cachedToken(host: string, scope: string): string | undefined {
    const token = this.tokens.get(`${host} ${scope}`);
    return token !== undefined && token.expiresAtMs > Date.now() ? token.header : undefined;
  }

  // Token flow of the distribution spec ("Token Authentication Specification"): GET realm?service&scope.
  private async fetchToken(
    ref: ImageReference,
    config: RegistryConfig | undefined,
    agent: Agent,
    url: URL,
    challenge: Challenge,
    scope: string,
    signal: AbortSignal,
  ): Promise<string> {
    const realm = parseRealm(challenge, ref, config);
    if (challenge.params['service'] !== undefined)
      realm.searchParams.set('service', challenge.params['service']);
    realm.searchParams.set('scope', challenge.params['scope'] ?? scope);
    const basic = this.basicAuthorization(config, realm);
    const tokenAgent = realm.host === url.host ? agent : this.transport.agentFor(realm.host, config?.ca);
    const res = await this.transport.send(tokenAgent, {
      method: 'GET',
      url: realm,
      signal,
      image: ref.original,
      maxBytes: TOKEN_MAX_BYTES,
      headers: basic === undefined ? {} : { authorization: basic },
    });
    if (res.status === 401 || res.status === 403)
      throw unauthorized(ref, `the token server ${realm.host} refused the credentials`);
    expectOk(res, ref);
    const header = parseToken(res.body, ref);
    this.tokens.set(`${url.host} ${scope}`, header);
    return header.header;
  }
}

function parseRealm(challenge: Challenge, ref: ImageReference, config: RegistryConfig | undefined): URL {
  const realm = challenge.params['realm'];
  let url: URL | undefined;
  try {
    url = realm === undefined ? undefined : new URL(realm);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'https:' && !(url.protocol === 'http:' && config?.insecure === true))
  ) {
    throw new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `registry ${ref.registry} asked for a token for ${ref.original} from an unusable realm: expected an https URL, found ${JSON.stringify(realm ?? null)}`,
      { image: ref.original },
    );
  }
  return url;
}

function parseToken(body: Buffer, ref: ImageReference): CachedToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const obj = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const token = typeof obj['token'] === 'string' ? obj['token'] : obj['access_token'];
  if (typeof token !== 'string' || token === '') {
    throw new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `the token server for ${ref.registry} answered without a token for ${ref.original}: expected JSON with "token", found ${body.length} bytes without it`,
      { image: ref.original },
    );
  }
  const lifetimeS =
    typeof obj['expires_in'] === 'number' && obj['expires_in'] > 0
      ? obj['expires_in']
      : TOKEN_DEFAULT_LIFETIME_S;
  // Renew a little early so a token never expires between being read and being used.
  return { header: `Bearer ${token}`, expiresAtMs: Date.now() + Math.max(0, lifetimeS - 5) * 1000 };
}

function unauthorized(ref: ImageReference, why: string): ProvenantError {
  return new ProvenantError(
    'REGISTRY_UNAUTHORIZED',
    `registry ${ref.registry} refused access to ${ref.original}: expected pull access to ${ref.repository}, found 401/403 (${why})`,
    { image: ref.original },
  );
}

/** Maps a non-200 registry answer to the right coded error; transient ones become system errors. */
function expectOk(res: HttpResponse, ref: ImageReference): void {
  if (res.status === 200) return;
  const at = `registry ${ref.registry} answered ${res.status} for ${ref.original}`;
  const image = ref.original;
  if (res.status === 401 || res.status === 403) throw unauthorized(ref, 'the registry refused them');
  if (res.status === 404) {
    throw new ProvenantError(
      'REGISTRY_MANIFEST_UNKNOWN',
      `${at}: expected a manifest, found none (unknown tag, digest or repository)`,
      { image },
    );
  }
  if (res.status === 429)
    throw new ProvenantError('REGISTRY_RATE_LIMITED', `${at}: rate limited, retries exhausted`, { image });
  if (res.status >= 500)
    throw new ProvenantError('REGISTRY_SERVER_ERROR', `${at}: server error, retries exhausted`, { image });
  throw new ProvenantError('REGISTRY_BAD_RESPONSE', `${at}: expected 200`, { image });
}
