/**
 * The push half of the OCI distribution API (distribution-spec v1.1, "Push"), just enough for tests to
 * put content into a real registry without an external tool: monolithic blob upload (POST then PUT
 * with `?digest=`) and manifest PUT. Credentials go out as HTTP basic auth on every request, which
 * distribution's htpasswd access controller accepts without a challenge round trip; a registry that
 * answers with a Bearer challenge gets a pull,push token from its realm (the token auth flow).
 */
import { createHash } from 'node:crypto';
import { Agent, fetch, type Dispatcher, type Response } from 'undici';
import type { BasicCredentials } from './registry.ts';

/** Where to push: a registry base URL and a repository name, with optional credentials and CA. */
export interface PushTarget {
  /** `http://127.0.0.1:PORT` or `https://…` */
  registryUrl: string;
  repository: string;
  auth?: BasicCredentials;
  /** PEM CA to trust for an `https://` registry with a test certificate. */
  ca?: string;
}

export interface BlobDescriptor {
  digest: string;
  size: number;
}

/** A registry answered with a status the push flow does not expect; `status` lets tests match 401s. */
export class RegistryHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryHttpError';
  }
}

/** `sha256:<hex>` of exact bytes: the content digest OCI uses for blobs and manifests. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Monolithic upload: the spec's POST-then-PUT form, which every registry implements. */
export async function pushBlob(target: PushTarget, content: Buffer): Promise<BlobDescriptor> {
  const digest = sha256Digest(content);
  const started = await send(target, 'POST', `/v2/${target.repository}/blobs/uploads/`, 202);
  const location = started.headers.get('location');
  if (location === null)
    throw new Error(`blob upload for ${target.repository} answered 202 without Location`);
  // Location may be relative and may carry its own query (distribution's `_state`): append, don't replace.
  const separator = location.includes('?') ? '&' : '?';
  await send(target, 'PUT', `${location}${separator}digest=${encodeURIComponent(digest)}`, 201, {
    body: content,
    headers: { 'content-type': 'application/octet-stream' },
  });
  return { digest, size: content.length };
}

/**
 * PUT a manifest under a tag or a digest. Returns the digest of the exact bytes sent and checks the
 * registry agrees, since a registry that rewrote the manifest would break every digest-based test.
 */
export async function pushManifest(
  target: PushTarget,
  reference: string,
  manifest: Buffer,
  mediaType: string,
): Promise<string> {
  const digest = sha256Digest(manifest);
  const response = await send(target, 'PUT', `/v2/${target.repository}/manifests/${reference}`, 201, {
    body: manifest,
    headers: { 'content-type': mediaType },
  });
  const reported = response.headers.get('docker-content-digest');
  if (reported !== null && reported !== digest) {
    throw new Error(
      `registry stored manifest ${target.repository}:${reference} as ${reported}, sent ${digest}`,
    );
  }
  return digest;
}

interface SendInit {
  body?: Buffer;
  headers?: Record<string, string>;
}

async function send(
  target: PushTarget,
  method: string,
  pathOrUrl: string,
  expectedStatus: number,
  init: SendInit = {},
): Promise<Response> {
  const url = new URL(pathOrUrl, target.registryUrl);
  const dispatcher = target.ca === undefined ? undefined : new Agent({ connect: { ca: target.ca } });
  try {
    const attempt = (auth: Record<string, string>): Promise<Response> =>
      fetch(url, { method, body: init.body, headers: { ...init.headers, ...auth }, dispatcher });
    let response = await attempt(bearerTokens.get(tokenKey(target)) ?? authorization(target.auth));
    const challenge = response.headers.get('www-authenticate') ?? '';
    if (response.status === 401 && /^bearer /i.test(challenge)) {
      await response.arrayBuffer();
      const token = await fetchPushToken(target, challenge, dispatcher);
      bearerTokens.set(tokenKey(target), token);
      response = await attempt(token);
    }
    const body = await response.text();
    if (response.status !== expectedStatus) {
      throw new RegistryHttpError(
        response.status,
        `${method} ${url.href} answered ${response.status} (expected ${expectedStatus}): ${body.slice(0, 500)}`,
      );
    }
    return response;
  } finally {
    await closeDispatcher(dispatcher);
  }
}

/** Push tokens per registry and repository, reused for the rest of a push. */
const bearerTokens = new Map<string, Record<string, string>>();

function tokenKey(target: PushTarget): string {
  return `${target.registryUrl} ${target.repository} ${target.auth?.username ?? ''}`;
}

/** The distribution token flow: GET realm?service=…&scope=repository:<repo>:pull,push with basic auth. */
async function fetchPushToken(
  target: PushTarget,
  challenge: string,
  dispatcher: Dispatcher | undefined,
): Promise<Record<string, string>> {
  const param = (name: string): string | undefined =>
    new RegExp(`${name}="([^"]*)"`, 'i').exec(challenge)?.[1];
  const realm = new URL(param('realm') ?? '');
  const service = param('service');
  if (service !== undefined) realm.searchParams.set('service', service);
  realm.searchParams.set('scope', `repository:${target.repository}:pull,push`);
  const response = await fetch(realm, { headers: authorization(target.auth), dispatcher });
  const body = (await response.json()) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (response.status !== 200 || token === undefined)
    throw new RegistryHttpError(response.status, `token server ${realm.host} refused a push token`);
  return { authorization: `Bearer ${token}` };
}

/**
 * Copies `tag` of an image (a single manifest, its config and layers) from a plain-HTTP registry into
 * `target`, byte for byte, so both registries serve the same digest.
 */
export async function copyImage(
  sourceUrl: string,
  repository: string,
  tag: string,
  target: PushTarget,
): Promise<string> {
  const get = async (path: string, accept?: string): Promise<Buffer> => {
    const res = await fetch(new URL(path, sourceUrl), { headers: accept === undefined ? {} : { accept } });
    if (res.status !== 200)
      throw new RegistryHttpError(res.status, `GET ${path} from ${sourceUrl} answered ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const accept =
    'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
  const manifest = await get(`/v2/${repository}/manifests/${tag}`, accept);
  const parsed = JSON.parse(manifest.toString('utf8')) as {
    mediaType: string;
    config: { digest: string };
    layers: { digest: string }[];
  };
  for (const d of [parsed.config, ...parsed.layers])
    await pushBlob(target, await get(`/v2/${repository}/blobs/${d.digest}`));
  return pushManifest(target, tag, manifest, parsed.mediaType);
}

async function closeDispatcher(dispatcher: Dispatcher | undefined): Promise<void> {
  if (dispatcher !== undefined) await dispatcher.close();
}

/** The `Authorization` header for basic auth (RFC 7617), or none for anonymous requests. */
export function authorization(auth: BasicCredentials | undefined): Record<string, string> {
  return auth === undefined ? {} : { authorization: `Basic ${basicToken(auth)}` };
}

/** base64 of `user:password`: the basic-auth token, also what Docker config files store as `auth`. */
export function basicToken(auth: BasicCredentials): string {
  return Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
}
