/**
 * HTTP to a Notary v1 server (notary `server/server.go` routes): `GET /v2/<gun>/_trust/tuf/<role>.json`
 * for the newest version and `<role>.<sha256 hex>.json` for a checksum-addressed one. Authentication
 * follows Docker's token flow (the registry token specification): a 401 with a `Bearer` challenge is
 * answered by fetching a token for `repository:<gun>:pull` from the challenge's realm.
 *
 * Connections, the egress policy, timeouts, bounded bodies and retries come from the registry transport;
 * the token flow and where credentials may go from registry/auth.
 */
import type { RegistryConfig } from '../../config/index.ts';
import { credentialsMayGo, parseToken, requestToken, TokenCache, tokenRealm } from '../../registry/auth.ts';
import { parseChallenge, type Challenge } from '../../registry/challenge.ts';
import { basicHeader } from '../../registry/credentials/index.ts';
import { RegistryHosts } from '../../registry/hosts.ts';
import { EgressPolicy } from '../../registry/egress.ts';
import { Transport, type HttpResponse, type TlsTrust } from '../../registry/transport.ts';
import { ProvenantError } from '../../types/errors.ts';
import type { MetadataSource } from './verify.ts';

export const DEFAULT_NOTARY_TIMEOUT_MS = 2000;
export const DEFAULT_NOTARY_RETRIES = 2;

export interface NotaryCredentials {
  readonly username: string;
  readonly password: string;
}

export interface NotaryClientOptions {
  /** `host[:port]` or a URL; `https://` is assumed without a scheme (Connaisseur does the same). */
  readonly host: string;
  /** PEM CA certificates for the server's TLS (the validator's `cert`). */
  readonly ca?: string | undefined;
  readonly credentials?: NotaryCredentials | undefined;
  readonly requestTimeoutMs?: number;
  readonly maxRetries?: number;
  /**
   * The `registries:` section, for the egress policy (the Notary host itself may always be contacted; a
   * token server on another origin only at a public address or when an entry names its host) and for
   * the credentials such a token server gets (those of its own entry, never the Notary host's).
   */
  readonly registries?: readonly RegistryConfig[] | undefined;
  /** DNS resolution for the egress checks (tests inject answers). */
  readonly lookup?: ConstructorParameters<typeof EgressPolicy>[0]['lookup'];
}

/** The base URL of a Notary host as configured; throws on a value that is not one. */
export function notaryBaseUrl(host: string): URL {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? host : `https://${host}`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new TypeError(`unsupported scheme ${url.protocol}`);
  return url;
}

export class NotaryClient {
  private readonly base: URL;
  private readonly transport: Transport;
  private readonly ca: TlsTrust | undefined;
  private readonly tokens = new TokenCache();

  constructor(private readonly options: NotaryClientOptions) {
    this.base = notaryBaseUrl(options.host);
    const egress = new EgressPolicy({
      registries: options.registries ?? [],
      configuredHosts: [this.base.host],
      lookup: options.lookup,
    });
    this.transport = new Transport({
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_NOTARY_TIMEOUT_MS,
      maxRetries: options.maxRetries ?? DEFAULT_NOTARY_RETRIES,
      egress,
    });
    this.ca = options.ca === undefined ? undefined : { pem: options.ca };
  }

  /** The server's identity for rollback memory: scheme, host and port. */
  get origin(): string {
    return this.base.origin;
  }

  /** A MetadataSource for one repository (GUN), fetching on behalf of `image`. */
  source(gun: string, image: string, signal: AbortSignal): MetadataSource {
    return {
      fetch: async (role, sha256, maxBytes) => {
        const file = sha256 === undefined ? `${role}.json` : `${role}.${sha256}.json`;
        const url = new URL(
          `${this.base.pathname.replace(/\/$/, '')}/v2/${gun}/_trust/tuf/${file}`,
          this.base,
        );
        const res = await this.get(url, gun, image, maxBytes, signal);
        return expectOk(res, role, gun, image, this.base.host).body;
      },
    };
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private async get(
    url: URL,
    gun: string,
    image: string,
    maxBytes: number,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    const scope = `repository:${gun}:pull`;
    const send = (authorization: string | undefined): Promise<HttpResponse> =>
      this.call(() =>
        this.transport.send({
          method: 'GET',
          url,
          signal,
          image,
          maxBytes,
          purpose: 'registry',
          ca: this.ca,
          headers: authorization === undefined ? {} : { authorization },
        }),
      );
    let res = await send(this.tokens.get(scope));
    if (res.status === 401) res = await send(await this.authorize(res, scope, gun, image, signal));
    return res;
  }

  private async authorize(
    res: HttpResponse,
    scope: string,
    gun: string,
    image: string,
    signal: AbortSignal,
  ): Promise<string> {
    const challenge = parseChallenge(res.headers['www-authenticate']);
    const basic = this.basic();
    if (challenge?.scheme === 'bearer') return this.fetchToken(challenge, scope, gun, image, signal);
    if (challenge?.scheme === 'basic' && basic !== undefined) return basic;
    throw unauthorized(
      this.base.host,
      gun,
      image,
      basic === undefined ? 'no credentials are configured' : 'the server refused them',
    );
  }

  private realmCredentials(realm: URL): string | undefined {
    const auth = new RegistryHosts(this.options.registries ?? []).lookup(realm.host.toLowerCase())?.auth;
    return auth !== undefined && 'username' in auth ? basicHeader(auth) : undefined;
  }

  private basic(): string | undefined {
    const c = this.options.credentials;
    return c === undefined ? undefined : basicHeader(c);
  }

  private async fetchToken(
    challenge: Challenge,
    scope: string,
    gun: string,
    image: string,
    signal: AbortSignal,
  ): Promise<string> {
    const realm = tokenRealm(challenge, scope);
    if (realm === undefined) {
      throw badResponse(
        `${this.base.host} asked for a token for ${image} from an unusable realm: expected a URL, found ${JSON.stringify(challenge.params['realm'] ?? null)}`,
        image,
      );
    }
    // The server's credentials go to its own origin, never to any realm it names; another realm gets
    // only the credentials of its own registries: entry.
    const basic =
      realm.protocol !== 'https:'
        ? undefined
        : credentialsMayGo(this.base, realm)
          ? this.basic()
          : this.realmCredentials(realm);
    const res = await this.call(() =>
      requestToken(this.transport, { realm, authorization: basic, image, signal, ca: this.ca }),
    );
    if (res.status === 401 || res.status === 403)
      throw unauthorized(realm.host, gun, image, 'the token server refused the credentials');
    if (res.status !== 200) throw statusError(res, 'a token', gun, image, realm.host);
    const token = parseToken(res.body);
    if (token === undefined)
      throw badResponse(
        `the token server ${realm.host} answered without a token for ${image}: expected JSON with "token"`,
        image,
      );
    this.tokens.set(scope, token.header, token.lifetimeS);
    return token.header;
  }

  /** The transport speaks of registries; a Notary server's network failures get Notary codes. */
  private async call(fn: () => Promise<HttpResponse>): Promise<HttpResponse> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ProvenantError)) throw err;
      const message = err.message.replace(/^registry /, 'notary server ');
      const code =
        err.code === 'REGISTRY_TIMEOUT'
          ? 'NOTARY_TIMEOUT'
          : err.code === 'REGISTRY_UNREACHABLE'
            ? 'NOTARY_UNREACHABLE'
            : err.code === 'REGISTRY_RESPONSE_TOO_LARGE'
              ? 'NOTARY_BAD_METADATA'
              : err.code;
      throw new ProvenantError(code, message, { image: err.image, cause: err });
    }
  }
}

function expectOk(res: HttpResponse, role: string, gun: string, image: string, host: string): HttpResponse {
  if (res.status === 200) return res;
  if (res.status === 404 && (role === 'root' || role === 'timestamp')) {
    throw new ProvenantError(
      'NOTARY_NO_TRUST_DATA',
      `notary server ${host} has no trust data for ${gun} (image ${image}): expected ${role}.json, found 404 (the image is not signed with Docker Content Trust)`,
      { image },
    );
  }
  throw statusError(res, `${role}.json of ${gun}`, gun, image, host);
}

function statusError(
  res: HttpResponse,
  what: string,
  gun: string,
  image: string,
  host: string,
): ProvenantError {
  if (res.status === 401 || res.status === 403)
    return unauthorized(host, gun, image, 'the server refused them');
  const at = `notary server ${host} answered ${res.status} for ${what} (image ${image})`;
  if (res.status === 429 || res.status >= 500)
    return new ProvenantError('NOTARY_SERVER_ERROR', `${at}: expected 200, retries exhausted`, { image });
  return badResponse(`${at}: expected 200`, image);
}

function unauthorized(host: string, gun: string, image: string, why: string): ProvenantError {
  return new ProvenantError(
    'NOTARY_UNAUTHORIZED',
    `notary server ${host} refused access to trust data of ${gun} for image ${image}: expected pull access, found 401/403 (${why})`,
    { image },
  );
}

function badResponse(message: string, image: string): ProvenantError {
  return new ProvenantError('NOTARY_BAD_METADATA', message, { image });
}
