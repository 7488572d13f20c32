/**
 * The OCI distribution client validators stand on (distribution-spec v1.1). Validators never do HTTP:
 * they ask this client for digests, manifests, blobs and referrers. Every byte it hands out has been
 * size-limited before it was read and hashed against the digest it was asked for; every connection
 * passed the egress policy (egress.ts). Authentication lives in auth.ts, redirects in redirects.ts.
 */
import { LRUCache } from 'lru-cache';
import type { RegistryConfig } from '../config/index.ts';
import { registryApiHost, type ImageReference } from '../reference/index.ts';
import { ProvenantError } from '../types/errors.ts';
import { credentialsMayGo, parseToken, requestToken, TokenCache, tokenRealm } from './auth.ts';
import { parseChallenge, type Challenge } from './challenge.ts';
import { basicHeader, CredentialStore, type CredentialSource } from './credentials/index.ts';
import { digestOf } from './digest.ts';
import { EgressPolicy, type EgressOptions } from './egress.ts';
import { RegistryHosts } from './hosts.ts';
import { DIGEST_PATTERN, parseManifest, type Descriptor, type Manifest } from './manifest.ts';
import { MANIFEST_ACCEPT, OCI_INDEX } from './media-types.ts';
import { followRedirects, type RedirectContext } from './redirects.ts';
import { Transport, type HttpRequest, type HttpResponse, type TlsTrust } from './transport.ts';

export interface RegistryClientOptions {
  readonly registries: readonly RegistryConfig[];
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
  readonly maxManifestBytes: number;
  /** Limit for blobs (signatures, bundles, attestations); defaults to maxManifestBytes. */
  readonly maxBlobBytes?: number;
  /** The policy's patterns: their registry parts list hosts images may name (egress.ts). */
  readonly policyPatterns?: readonly string[] | undefined;
  /** `network.egress`: whether images may name registries nothing in the config lists. */
  readonly egress?: { readonly allowUnlistedRegistries?: boolean | undefined } | undefined;
  readonly maxConcurrentRequests?: number | undefined;
  readonly maxConcurrentRequestsPerRegistry?: number | undefined;
  /** DNS resolution for the egress checks (tests inject answers). */
  readonly lookup?: EgressOptions['lookup'];
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

/**
 * How long a registry's answer to the referrers API (whether it has one) is remembered.
 * distribution-spec v1.1 ("Listing Referrers"): a registry that serves the API MUST NOT answer it with
 * 404, so one 404 says the registry has no such API, and asking again for every image only adds a
 * round trip. The memory expires so that an upgraded registry is asked again; until then its referrers
 * are looked up through the tag schema alone, which can only find fewer signatures, never more (a
 * verdict can only get stricter).
 */
export const REFERRERS_API_MEMORY_MS = 5 * 60_000;
const REMEMBERED_REGISTRIES = 1024;

export class RegistryClient {
  private readonly transport: Transport;
  private readonly hosts: RegistryHosts;
  private readonly egress: EgressPolicy;
  private readonly credentials = new CredentialStore();
  /** Bearer tokens per (registry, scope), reused until they expire. */
  private readonly tokens = new TokenCache();
  /** What redirect hops need: the transport, the egress policy, a target's registries: settings. */
  private readonly redirects: RedirectContext;
  /** Whether an API host serves the referrers API (false: it answered 404 or 405), for REFERRERS_API_MEMORY_MS. */
  private readonly referrersApi = new LRUCache<string, boolean>({
    max: REMEMBERED_REGISTRIES,
    ttl: REFERRERS_API_MEMORY_MS,
  });
  /** The referrers request in flight that will tell, per API host. */
  private readonly referrersProbes = new Map<string, Promise<void>>();

  constructor(private readonly options: RegistryClientOptions) {
    this.egress = new EgressPolicy({
      registries: options.registries,
      policyPatterns: options.policyPatterns,
      allowUnlistedRegistries: options.egress?.allowUnlistedRegistries,
      lookup: options.lookup,
    });
    this.transport = new Transport({ ...options, egress: this.egress });
    this.hosts = new RegistryHosts(options.registries);
    this.redirects = {
      transport: this.transport,
      egress: this.egress,
      registry: '',
      hostSettings: (host) => {
        const config = this.hosts.lookup(host);
        return { insecure: config?.insecure === true, ca: trustOf(config) };
      },
    };
  }

  /**
   * The digest a tag points at; a digest reference is returned as is. The manifest is fetched and
   * hashed: a registry's Docker-Content-Digest header alone is a claim, not the bytes the kubelet will
   * pull, so pinning to it would let a registry (or a proxy) pin an image to any digest it likes.
   */
  async resolveDigest(ref: ImageReference, signal: AbortSignal): Promise<string> {
    if (ref.digest !== undefined) return ref.digest;
    return (await this.fetchManifest(ref, ref.tag ?? 'latest', signal)).digest;
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
    await checkAdvertisedDigest(res, ref);
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
   * as distribution 2.8 answers) — the referrers tag schema `sha256-<hex>` that clients maintain. A
   * registry without the API is not asked again for a while (REFERRERS_API_MEMORY_MS).
   */
  async listReferrers(
    ref: ImageReference,
    digest: string,
    signal: AbortSignal,
    options: ReferrersOptions = {},
  ): Promise<readonly Descriptor[]> {
    const apiHost = this.route(ref).apiHost;
    const fallbackTag = digest.replace(':', '-');
    // The images of one pod arrive together: while one request finds out whether the registry has the
    // API, the others wait for its answer instead of each probing.
    const probing = this.referrersProbes.get(apiHost);
    if (probing !== undefined) await untilProbed(probing, signal, apiHost, ref);
    if (this.referrersApi.get(apiHost) === false)
      return ofType(await this.findManifest(ref, fallbackTag, signal), options);
    let probed: (() => void) | undefined;
    if (!this.referrersApi.has(apiHost) && !this.referrersProbes.has(apiHost))
      this.referrersProbes.set(apiHost, new Promise<void>((resolve) => (probed = resolve)));
    try {
      const filter =
        options.artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(options.artifactType)}`;
      const res = await this.request(
        ref,
        'GET',
        (repo) => `/v2/${repo}/referrers/${digest}${filter}`,
        signal,
        {
          accept: OCI_INDEX,
          maxBytes: this.options.maxManifestBytes,
        },
      );
      if (res.status === 404 || res.status === 405) {
        this.referrersApi.set(apiHost, false);
        probed?.();
        return ofType(await this.findManifest(ref, fallbackTag, signal), options);
      }
      expectOk(res, ref, 'referrers index');
      this.referrersApi.set(apiHost, true);
      await checkAdvertisedDigest(res, ref);
      const index = await parseManifest(
        res.body,
        await digestOf(res.body, 'sha256'),
        res.headers['content-type'],
        ref.original,
        signal,
      );
      return ofType(index, options);
    } finally {
      if (probed !== undefined) {
        this.referrersProbes.delete(apiHost);
        probed();
      }
    }
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

  /** One registry request: egress-checked, authenticated (cached token, basic, or a challenge answered), redirects followed. */
  private async request(
    ref: ImageReference,
    method: 'GET' | 'HEAD',
    path: (repository: string) => string,
    signal: AbortSignal,
    opts: { accept?: string; maxBytes: number },
  ): Promise<HttpResponse> {
    const route = this.route(ref);
    const { config } = route;
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
      purpose: 'registry',
      ca: trustOf(config),
      headers: {
        ...(opts.accept === undefined ? {} : { accept: opts.accept }),
        ...(authorization === undefined ? {} : { authorization }),
      },
    });
    // Tokens are keyed by the URL's host, which drops a default :443 the reference may spell out.
    const tokenKey = `${url.host} ${scope}`;
    let sent = request(
      this.tokens.get(tokenKey) ?? (await this.basicAuthorization(route, source, url, ref, signal)),
    );
    let res = await this.transport.send(sent);
    for (let attempt = 0; res.status === 401 && attempt < 2; attempt++) {
      if (attempt === 1) {
        // Refused with credentials we had cached: they may have rotated (a Secret, a helper's token).
        if (source === undefined) break;
        source.invalidate();
        this.tokens.delete(tokenKey);
      }
      sent = request(await this.authorize(ref, route, source, url, res, scope, signal));
      res = await this.transport.send(sent);
    }
    const final = await followRedirects({ ...this.redirects, registry: route.registry }, sent, res);
    // Every registry request needs pull access: a refusal is the same error whatever was asked for.
    if (final.status === 401 || final.status === 403)
      throw unauthorized(ref, route, 'the registry refused the credentials', String(final.status));
    return final;
  }

  /** Answers a 401 challenge: basic credentials, or a bearer token from the challenge's realm. */
  private async authorize(
    ref: ImageReference,
    route: Route,
    source: CredentialSource | undefined,
    url: URL,
    res: HttpResponse,
    scope: string,
    signal: AbortSignal,
  ): Promise<string> {
    const challenge = parseChallenge(res.headers['www-authenticate']);
    if (challenge?.scheme === 'bearer')
      return this.fetchToken(ref, route, source, url, challenge, scope, signal);
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

  // Token flow of the distribution spec ("Token Authentication Specification"): GET realm?service&scope.
  private async fetchToken(
    ref: ImageReference,
    route: Route,
    source: CredentialSource | undefined,
    url: URL,
    challenge: Challenge,
    scope: string,
    signal: AbortSignal,
  ): Promise<string> {
    const realm = tokenRealm(challenge, scope);
    if (
      realm === undefined ||
      !(realm.protocol === 'https:' || (realm.protocol === 'http:' && route.config?.insecure === true))
    ) {
      throw new ProvenantError(
        'REGISTRY_BAD_RESPONSE',
        `registry ${route.registry} asked for a token for ${ref.original} from an unusable realm: expected an https URL, found ${JSON.stringify(challenge.params['realm'] ?? null)}`,
        { image: ref.original },
      );
    }
    // The registry's credentials go to its own origin, never to any realm it names; another realm gets
    // only the credentials of its own registries: entry.
    const realmConfig = this.hosts.lookup(realm.host);
    const basic = credentialsMayGo(url, realm)
      ? await this.basicAuthorization(route, source, realm, ref, signal)
      : await this.basicAuthorization(
          { ...route, registry: realm.host, config: realmConfig },
          this.credentials.sourceFor(realmConfig),
          realm,
          ref,
          signal,
        );
    const res = await requestToken(this.transport, {
      realm,
      authorization: basic,
      image: ref.original,
      signal,
      ca: realm.origin === url.origin ? trustOf(route.config) : trustOf(realmConfig),
    });
    if (res.status === 401 || res.status === 403)
      throw unauthorized(ref, route, `the token server ${realm.host} refused the credentials`);
    if (res.status !== 200) throw tokenFailure(res, ref, route, realm);
    const token = parseToken(res.body);
    if (token === undefined) {
      throw new ProvenantError(
        'REGISTRY_BAD_RESPONSE',
        `the token server for ${route.registry} answered without a token for ${ref.original}: expected JSON with "token", found ${res.body.length} bytes without it`,
        { image: ref.original },
      );
    }
    this.tokens.set(`${url.host} ${scope}`, token.header, token.lifetimeS);
    return token.header;
  }
}

function trustOf(config: RegistryConfig | undefined): TlsTrust | undefined {
  return config?.ca === undefined ? undefined : { file: config.ca };
}

/**
 * A token server that answers neither a token nor a refusal (a 404 realm, a 5xx) says nothing about the
 * image: it is reported as an authentication failure, never as an unknown manifest, and as transient so
 * no verdict is cached from it.
 */
function tokenFailure(res: HttpResponse, ref: ImageReference, route: Route, realm: URL): ProvenantError {
  if (res.status === 429)
    return new ProvenantError(
      'REGISTRY_RATE_LIMITED',
      `the token server ${realm.host} for ${route.registry} answered 429 for ${ref.original}: rate limited, retries exhausted`,
      { image: ref.original },
    );
  return new ProvenantError(
    'REGISTRY_TOKEN_FAILED',
    `the token server ${realm.host} for ${route.registry} answered ${res.status} for ${ref.original}: expected 200 with a token, or 401/403`,
    { image: ref.original },
  );
}

/** A Docker-Content-Digest header, when sent, must name the bytes that came with it: otherwise something in the path rewrote them. */
/** Waits for another request's referrers probe; the caller's deadline passing is a registry timeout. */
function untilProbed(
  probe: Promise<void>,
  signal: AbortSignal,
  apiHost: string,
  ref: ImageReference,
): Promise<void> {
  const timeout = (): ProvenantError =>
    new ProvenantError('REGISTRY_TIMEOUT', `registry ${apiHost} did not answer in time for ${ref.original}`, {
      image: ref.original,
    });
  if (signal.aborted) return Promise.reject(timeout());
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => reject(timeout());
    signal.addEventListener('abort', onAbort, { once: true });
    void probe.then(resolve).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The referrers an index lists, only those of the artifact type asked for (when one was). */
function ofType(index: Manifest | undefined, options: ReferrersOptions): readonly Descriptor[] {
  const found = index?.manifests ?? [];
  return options.artifactType === undefined
    ? found
    : found.filter((d) => d.artifactType === options.artifactType);
}

async function checkAdvertisedDigest(res: HttpResponse, ref: ImageReference): Promise<void> {
  const advertised = res.headers['docker-content-digest'];
  if (advertised === undefined) return;
  const actual = await digestOf(res.body, advertised.startsWith('sha512:') ? 'sha512' : 'sha256');
  if (advertised === actual) return;
  throw new ProvenantError(
    'REGISTRY_DIGEST_MISMATCH',
    `registry ${ref.registry} served a manifest for ${ref.original} whose Docker-Content-Digest does not match its bytes: expected ${actual}, found ${JSON.stringify(advertised)}`,
    { image: ref.original },
  );
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

function unauthorized(ref: ImageReference, route: Route, why: string, found = '401/403'): ProvenantError {
  const via = route.registry === ref.registry ? '' : ` (mirror of ${ref.registry})`;
  return new ProvenantError(
    'REGISTRY_UNAUTHORIZED',
    `registry ${route.registry}${via} refused access to ${ref.original}: expected pull access to ${route.repository}, found ${found} (${why})`,
    { image: ref.original },
  );
}

type Expected = 'manifest' | 'blob' | 'referrers index';

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
