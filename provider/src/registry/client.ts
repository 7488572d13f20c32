/**
 * The OCI distribution client validators stand on (distribution-spec v1.1). Validators never do HTTP:
 * they ask this client for digests, manifests, blobs and referrers. Every byte it hands out has been
 * size-limited before it was read and hashed against the digest it was asked for.
 */
import type { Agent } from 'undici';
import type { RegistryConfig } from '../config/index.ts';
import { registryApiHost, type ImageReference } from '../reference/index.ts';
import { ProvenantError } from '../types/errors.ts';
import { parseChallenge, type Challenge } from './challenge.ts';
import { basicHeader, CredentialStore, type CredentialSource } from './credentials/index.ts';
import { digestOf } from './digest.ts';
import { RegistryHosts } from './hosts.ts';
import { DIGEST_PATTERN, parseManifest, type Descriptor, type Manifest } from './manifest.ts';
import { MANIFEST_ACCEPT, OCI_INDEX } from './media-types.ts';
import { Transport, type HttpRequest, type HttpResponse } from './transport.ts';

export interface RegistryClientOptions {
  readonly registries: readonly RegistryConfig[];
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
  readonly maxManifestBytes: number;
  /** Limit for blobs (signatures, bundles, attestations); defaults to maxManifestBytes. */
  readonly maxBlobBytes?: number;
}

const TOKEN_MAX_BYTES = 64 * 1024;
const TOKEN_DEFAULT_LIFETIME_S = 60;
const MAX_REDIRECTS = 5;
const SHA256 = /^sha256:[a-f0-9]{64}$/;

interface CachedToken {
  readonly header: string;
  readonly expiresAtMs: number;
}

/** Where requests for an image go: its own registry, or the mirror configured for it. */
interface Route {
  /** Registry host as written in references (`docker.io`, `mirror.local:5000`): the credentials key. */
  readonly registry: string;
  /** Host the API is served from (`registry-1.docker.io` for Docker Hub). */
  readonly apiHost: string;
  readonly repository: string;
  readonly config: RegistryConfig | undefined;
}

export interface ReferrersOptions {
  /** Only referrers of this artifact type (filtered here too, whether or not the registry did). */
  readonly artifactType?: string;
}

export class RegistryClient {
  private readonly transport: Transport;
  private readonly hosts: RegistryHosts;
  private readonly credentials = new CredentialStore();
  /** Bearer tokens per (registry, scope), reused until they expire. */
  private readonly tokens = new Map<string, CachedToken>();

  constructor(private readonly options: RegistryClientOptions) {
    this.transport = new Transport(options);
    this.hosts = new RegistryHosts(options.registries);
  }

  /** The digest a tag points at (HEAD, with a GET fallback); a digest reference is returned as is. */
  async resolveDigest(ref: ImageReference, signal: AbortSignal): Promise<string> {
    if (ref.digest !== undefined) return ref.digest;
    const tag = ref.tag ?? 'latest';
    const head = await this.request(ref, 'HEAD', (repo) => `/v2/${repo}/manifests/${tag}`, signal, {
      accept: MANIFEST_ACCEPT,
      maxBytes: this.options.maxManifestBytes,
    });
    const advertised = head.headers['docker-content-digest'];
    if (head.status === 200 && advertised !== undefined && SHA256.test(advertised)) return advertised;
    // Some registries omit Docker-Content-Digest or refuse HEAD: fetch and hash the manifest ourselves.
    if (head.status !== 200 && head.status !== 405) expectOk(head, ref, 'manifest');
    return (await this.fetchManifest(ref, tag, signal)).digest;
  }

  /** A manifest by tag or digest; its digest is computed from the bytes, and checked when asked by digest. */
  async fetchManifest(ref: ImageReference, tagOrDigest: string, signal: AbortSignal): Promise<Manifest> {
    const manifest = await this.findManifest(ref, tagOrDigest, signal);
    if (manifest === undefined) throw notFound(ref, 404, 'manifest');
    return manifest;
  }

  /** Like fetchManifest, but a missing tag or digest (404) is `undefined` rather than an error. */
  async findManifest(
    ref: ImageReference,
    tagOrDigest: string,
    signal: AbortSignal,
  ): Promise<Manifest | undefined> {
    const res = await this.request(ref, 'GET', (repo) => `/v2/${repo}/manifests/${tagOrDigest}`, signal, {
      accept: MANIFEST_ACCEPT,
      maxBytes: this.options.maxManifestBytes,
    });
    if (res.status === 404) return undefined;
    expectOk(res, ref, 'manifest');
    const digest = await verifyDigest(
      res.body,
      tagOrDigest.includes(':') ? tagOrDigest : undefined,
      ref,
      'manifest',
    );
    return parseManifest(res.body, digest, res.headers['content-type'], ref.original, signal);
  }

  /** A blob's bytes, refused above the limit before reading, and hashed against its digest. */
  async fetchBlob(
    ref: ImageReference,
    descriptor: Pick<Descriptor, 'digest'> & { readonly size?: number },
    signal: AbortSignal,
    maxBytes = this.options.maxBlobBytes ?? this.options.maxManifestBytes,
  ): Promise<Buffer> {
    if (!DIGEST_PATTERN.test(descriptor.digest)) {
      throw new ProvenantError(
        'REGISTRY_BAD_RESPONSE',
        `a manifest of ${ref.original} names a blob with an unusable digest: expected sha256:<64 hex>, found ${JSON.stringify(descriptor.digest)}`,
        { image: ref.original },
      );
    }
    if (descriptor.size !== undefined && descriptor.size > maxBytes) {
      throw new ProvenantError(
        'REGISTRY_RESPONSE_TOO_LARGE',
        `the blob ${descriptor.digest} of ${ref.original} is larger than the limit: expected at most ${maxBytes} bytes, found ${descriptor.size} (descriptor size)`,
        { image: ref.original },
      );
    }
    const res = await this.request(ref, 'GET', (repo) => `/v2/${repo}/blobs/${descriptor.digest}`, signal, {
      maxBytes,
    });
    expectOk(res, ref, 'blob');
    await verifyDigest(res.body, descriptor.digest, ref, 'blob');
    return res.body;
  }

  /**
   * Manifests whose `subject` is `digest`: the OCI referrers API, or — on registries without it (a 404,
   * as distribution 2.8 answers) — the referrers tag schema `sha256-<hex>` that clients maintain.
   */
  async listReferrers(
    ref: ImageReference,
    digest: string,
    signal: AbortSignal,
    options: ReferrersOptions = {},
  ): Promise<readonly Descriptor[]> {
    const filter =
      options.artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(options.artifactType)}`;
    const res = await this.request(ref, 'GET', (repo) => `/v2/${repo}/referrers/${digest}${filter}`, signal, {
      accept: OCI_INDEX,
      maxBytes: this.options.maxManifestBytes,
    });
    let index: Manifest | undefined;
    if (res.status === 404 || res.status === 405) {
      index = await this.findManifest(ref, digest.replace(':', '-'), signal);
    } else {
      expectOk(res, ref, 'referrers index');
      index = await parseManifest(
        res.body,
        await digestOf(res.body, 'sha256'),
        res.headers['content-type'],
        ref.original,
        signal,
      );
    }
    const found = index?.manifests ?? [];
    return options.artifactType === undefined
      ? found
      : found.filter((d) => d.artifactType === options.artifactType);
  }

  async close(): Promise<void> {
    this.credentials.close();
    await this.transport.close();
  }

  private route(ref: ImageReference): Route {
    const config = this.hosts.lookup(ref.registry);
    if (config?.mirror === undefined)
      return {
        registry: ref.registry,
        apiHost: registryApiHost(ref.registry),
        repository: ref.repository,
        config,
      };
    const slash = config.mirror.indexOf('/');
    const host = (slash < 0 ? config.mirror : config.mirror.slice(0, slash)).toLowerCase();
    const prefix = slash < 0 ? '' : `${config.mirror.slice(slash + 1).replace(/\/+$/, '')}/`;
    return {
      registry: host,
      apiHost: host,
      repository: `${prefix}${ref.repository}`,
      config: this.hosts.lookup(host),
    };
  }

  /** One registry request: auth (cached token, basic, or a challenge answered), then redirects. */
  private async request(
    ref: ImageReference,
    method: 'GET' | 'HEAD',
    path: (repository: string) => string,
    signal: AbortSignal,
    opts: { accept?: string; maxBytes: number },
  ): Promise<HttpResponse> {
    const route = this.route(ref);
    const { config } = route;
    const agent = this.transport.agentFor(route.apiHost, config?.ca);
    const url = new URL(
      path(route.repository),
      `${config?.insecure === true ? 'http' : 'https'}://${route.apiHost}`,
    );
    const scope = `repository:${route.repository}:pull`;
    const source = this.credentials.sourceFor(config);
    const request = (authorization: string | undefined): HttpRequest => ({
      method,
      url,
      signal,
      image: ref.original,
      maxBytes: opts.maxBytes,
      headers: {
        ...(opts.accept === undefined ? {} : { accept: opts.accept }),
        ...(authorization === undefined ? {} : { authorization }),
      },
    });
    // Tokens are keyed by the URL's host, which drops a default :443 the reference may spell out.
    const tokenKey = `${url.host} ${scope}`;
    const cached = this.cachedToken(tokenKey);
    let res = await this.transport.send(
      agent,
      request(cached ?? (await this.basicAuthorization(route, source, url, ref, signal))),
    );
    for (let attempt = 0; res.status === 401 && attempt < 2; attempt++) {
      if (attempt === 1) {
        // Refused with credentials we had cached: they may have rotated (a Secret, a helper's token).
        if (source === undefined) break;
        source.invalidate();
        this.tokens.delete(tokenKey);
      }
      const authorization = await this.authorize(ref, route, source, agent, url, res, scope, signal);
      res = await this.transport.send(agent, request(authorization));
    }
    const final = await this.followRedirects(ref, route, request(undefined), res, url);
    // Every registry request needs pull access: a refusal is the same error whatever was asked for.
    if (final.status === 401 || final.status === 403)
      throw unauthorized(ref, route, 'the registry refused the credentials', String(final.status));
    return final;
  }

  /**
   * Registries send blob downloads to storage (S3, a CDN) with 307s. Credentials go only to the origin
   * that asked for them; more than MAX_REDIRECTS hops (or a loop) is refused.
   */
  private async followRedirects(
    ref: ImageReference,
    route: Route,
    base: HttpRequest,
    first: HttpResponse,
    origin: URL,
  ): Promise<HttpResponse> {
    let res = first;
    let url = origin;
    const seen = new Set<string>([url.href]);
    for (let hops = 0; [301, 302, 303, 307, 308].includes(res.status); hops++) {
      const location = res.headers['location'];
      let next: URL;
      try {
        next = new URL(location ?? '', url);
      } catch {
        throw new ProvenantError(
          'REGISTRY_BAD_RESPONSE',
          `registry ${route.registry} redirected a request for ${ref.original} to an unusable location: expected a URL, found ${JSON.stringify(location ?? null)}`,
          { image: ref.original },
        );
      }
      if (hops >= MAX_REDIRECTS || seen.has(next.href)) {
        throw new ProvenantError(
          'REGISTRY_TOO_MANY_REDIRECTS',
          `registry ${route.registry} redirected a request for ${ref.original} ${seen.has(next.href) ? 'in a loop' : 'too often'}: expected at most ${MAX_REDIRECTS} redirects, found ${hops + 1} (last to ${next.host}${next.pathname})`,
          { image: ref.original },
        );
      }
      seen.add(next.href);
      const target = this.hosts.lookup(next.host);
      const sameOrigin = next.origin === origin.origin;
      // Plain HTTP only to an origin that is itself marked insecure: never a downgrade by redirect.
      const plainAllowed = (sameOrigin ? route.config : target)?.insecure === true;
      if (next.protocol !== 'https:' && !(next.protocol === 'http:' && plainAllowed)) {
        throw new ProvenantError(
          'REGISTRY_BAD_RESPONSE',
          `registry ${route.registry} redirected a request for ${ref.original} to plain HTTP: expected https, found ${next.protocol}//${next.host}`,
          { image: ref.original },
        );
      }
      const agent = this.transport.agentFor(next.host, (sameOrigin ? route.config : target)?.ca);
      const headers = { ...base.headers };
      if (!sameOrigin) delete headers['authorization'];
      res = await this.transport.send(agent, { ...base, url: next, headers });
      url = next;
    }
    return res;
  }

  /** Answers a 401 challenge: basic credentials, or a bearer token from the challenge's realm. */
  private async authorize(
    ref: ImageReference,
    route: Route,
    source: CredentialSource | undefined,
    agent: Agent,
    url: URL,
    res: HttpResponse,
    scope: string,
    signal: AbortSignal,
  ): Promise<string> {
    const challenge = parseChallenge(res.headers['www-authenticate']);
    if (challenge?.scheme === 'bearer')
      return this.fetchToken(ref, route, source, agent, url, challenge, scope, signal);
    const basic = await this.basicAuthorization(route, source, url, ref, signal);
    if (challenge?.scheme === 'basic' && basic !== undefined) return basic;
    throw unauthorized(
      ref,
      route,
      basic === undefined ? 'no credentials are configured for it' : 'the registry refused them',
    );
  }

  private async basicAuthorization(
    route: Route,
    source: CredentialSource | undefined,
    url: URL,
    ref: ImageReference,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    // Never send credentials in clear text unless the registry is explicitly marked insecure.
    if (source === undefined || (url.protocol !== 'https:' && route.config?.insecure !== true))
      return undefined;
    const creds = await source.get(route.registry, ref.original, signal);
    return creds === undefined ? undefined : basicHeader(creds);
  }

  private cachedToken(key: string): string | undefined {
    const token = this.tokens.get(key);
    return token !== undefined && token.expiresAtMs > Date.now() ? token.header : undefined;
  }

  // Token flow of the distribution spec ("Token Authentication Specification"): GET realm?service&scope.
  private async fetchToken(
    ref: ImageReference,
    route: Route,
    source: CredentialSource | undefined,
    agent: Agent,
    url: URL,
    challenge: Challenge,
    scope: string,
    signal: AbortSignal,
  ): Promise<string> {
    const realm = parseRealm(challenge, ref, route);
    if (challenge.params['service'] !== undefined)
      realm.searchParams.set('service', challenge.params['service']);
    realm.searchParams.set('scope', challenge.params['scope'] ?? scope);
    const basic = await this.basicAuthorization(route, source, realm, ref, signal);
    const tokenAgent =
      realm.host === url.host ? agent : this.transport.agentFor(realm.host, route.config?.ca);
    const res = await this.transport.send(tokenAgent, {
      method: 'GET',
      url: realm,
      signal,
      image: ref.original,
      maxBytes: TOKEN_MAX_BYTES,
      headers: basic === undefined ? {} : { authorization: basic },
    });
    if (res.status === 401 || res.status === 403)
      throw unauthorized(ref, route, `the token server ${realm.host} refused the credentials`);
    expectOk(res, ref, 'token');
    const token = parseToken(res.body, ref, route);
    this.tokens.set(`${url.host} ${scope}`, token);
    return token.header;
  }
}

/** Hashes `body` with the expected digest's algorithm (sha256 when none is expected) and compares. */
async function verifyDigest(
  body: Buffer,
  expected: string | undefined,
  ref: ImageReference,
  what: 'manifest' | 'blob',
): Promise<string> {
  const algorithm = expected?.startsWith('sha512:') === true ? 'sha512' : 'sha256';
  const found = await digestOf(body, algorithm);
  if (expected !== undefined && expected !== found) {
    throw new ProvenantError(
      'REGISTRY_DIGEST_MISMATCH',
      `registry ${ref.registry} served a ${what} for ${ref.original} that does not match its digest: expected ${expected}, found ${found}`,
      { image: ref.original },
    );
  }
  return found;
}

function parseRealm(challenge: Challenge, ref: ImageReference, route: Route): URL {
  const realm = challenge.params['realm'];
  let url: URL | undefined;
  try {
    url = realm === undefined ? undefined : new URL(realm);
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'https:' && !(url.protocol === 'http:' && route.config?.insecure === true))
  ) {
    throw new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `registry ${route.registry} asked for a token for ${ref.original} from an unusable realm: expected an https URL, found ${JSON.stringify(realm ?? null)}`,
      { image: ref.original },
    );
  }
  return url;
}

function parseToken(body: Buffer, ref: ImageReference, route: Route): CachedToken {
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
      `the token server for ${route.registry} answered without a token for ${ref.original}: expected JSON with "token", found ${body.length} bytes without it`,
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

function unauthorized(ref: ImageReference, route: Route, why: string, found = '401/403'): ProvenantError {
  const via = route.registry === ref.registry ? '' : ` (mirror of ${ref.registry})`;
  return new ProvenantError(
    'REGISTRY_UNAUTHORIZED',
    `registry ${route.registry}${via} refused access to ${ref.original}: expected pull access to ${route.repository}, found ${found} (${why})`,
    { image: ref.original },
  );
}

type Expected = 'manifest' | 'blob' | 'token' | 'referrers index';

/**
 * Maps a non-200 registry answer to the right coded error; transient ones become system errors.
 * 401/403 never get here: `request` reports them, with the route (mirror) they came from.
 */
function expectOk(res: HttpResponse, ref: ImageReference, what: Expected): void {
  if (res.status === 200) return;
  const at = `registry ${ref.registry} answered ${res.status} for ${ref.original}`;
  const image = ref.original;
  if (res.status === 404) throw notFound(ref, res.status, what);
  if (res.status === 429)
    throw new ProvenantError('REGISTRY_RATE_LIMITED', `${at}: rate limited, retries exhausted`, { image });
  if (res.status >= 500)
    throw new ProvenantError('REGISTRY_SERVER_ERROR', `${at}: server error, retries exhausted`, { image });
  throw new ProvenantError('REGISTRY_BAD_RESPONSE', `${at}: expected 200 with a ${what}`, { image });
}

function notFound(ref: ImageReference, status: number, what: Expected): ProvenantError {
  const at = `registry ${ref.registry} answered ${status} for ${ref.original}`;
  if (what === 'blob')
    return new ProvenantError('REGISTRY_BLOB_UNKNOWN', `${at}: expected a blob, found none`, {
      image: ref.original,
    });
  return new ProvenantError(
    'REGISTRY_MANIFEST_UNKNOWN',
    `${at}: expected a ${what}, found none (unknown tag, digest or repository)`,
    { image: ref.original },
  );
}
