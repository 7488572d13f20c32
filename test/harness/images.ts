/**
 * Test images built at test time (DESIGN.md: never pulled from the internet): one random layer, a
 * config whose rootfs.diff_ids match it, and an image manifest, pushed with the distribution API.
 * Each call makes a new random layer, so every pushed image has a digest no other test shares.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { makeTempDir } from './process.ts';
import { basicToken, pushBlob, pushManifest, sha256Digest, type PushTarget } from './oci-push.ts';
import type { BasicCredentials } from './registry.ts';
import { tarWithOneFile } from './tar.ts';
import { toolPath } from './tools.ts';

const execFileAsync = promisify(execFile);

/** Few hundred bytes: enough to be unique, small enough that pushes cost a round trip, not bandwidth. */
const RANDOM_FILE_BYTES = 256;

/** OCI image-spec media types, or the Docker schema 2 ones that registries and clients still see. */
export type ImageMediaType = 'oci' | 'docker';

const MEDIA_TYPES = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
} as const;

export interface Platform {
  architecture: string;
  os: string;
}

const LINUX_AMD64: Platform = { architecture: 'amd64', os: 'linux' };
const INDEX_PLATFORMS: readonly Platform[] = [LINUX_AMD64, { architecture: 'arm64', os: 'linux' }];

export interface PushOptions {
  auth?: BasicCredentials;
  /** Default 'oci'. */
  mediaType?: ImageMediaType;
  /** PEM CA for an `https://` registry started with a test certificate. */
  ca?: string;
}

export interface PushedManifest {
  /** sha256 of the exact manifest bytes pushed. */
  digest: string;
  manifest: Buffer;
  mediaType: string;
  /** `127.0.0.1:PORT/repo:tag` (or `@sha256:…` when pushed by digest). */
  reference: string;
}

export interface PushedIndex extends PushedManifest {
  /** The platform images the index lists, in index order (linux/amd64, linux/arm64). */
  images: PushedManifest[];
}

/** Pushes a new random single-layer image and tags it. */
export function pushRandomImage(
  registryUrl: string,
  repository: string,
  tag: string,
  opts: PushOptions = {},
): Promise<PushedManifest> {
  return pushImage(pushTarget(registryUrl, repository, opts), tag, opts.mediaType ?? 'oci', LINUX_AMD64);
}

/**
 * Pushes one random image per platform (by digest, so they add no tags) and an image index over them
 * (a Docker manifest list with mediaType 'docker'), tagged `tag`.
 */
export async function pushIndex(
  registryUrl: string,
  repository: string,
  tag: string,
  opts: PushOptions = {},
): Promise<PushedIndex> {
  const target = pushTarget(registryUrl, repository, opts);
  const kind = opts.mediaType ?? 'oci';
  const images: PushedManifest[] = [];
  for (const platform of INDEX_PLATFORMS) images.push(await pushImage(target, undefined, kind, platform));
  const mediaType = MEDIA_TYPES[kind].index;
  const manifests = images.map((image, i) => ({
    mediaType: image.mediaType,
    digest: image.digest,
    size: image.manifest.length,
    platform: INDEX_PLATFORMS[i],
  }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests }));
  const digest = await pushManifest(target, tag, manifest, mediaType);
  return {
    digest,
    manifest,
    mediaType,
    reference: `${registryHost(registryUrl)}/${repository}:${tag}`,
    images,
  };
}

/** Pushes layer, config and manifest; `tag` undefined pushes the manifest by its digest. */
async function pushImage(
  target: PushTarget,
  tag: string | undefined,
  kind: ImageMediaType,
  platform: Platform,
): Promise<PushedManifest> {
  const types = MEDIA_TYPES[kind];
  const layerTar = tarWithOneFile('random.bin', randomBytes(RANDOM_FILE_BYTES));
  const layer = await pushBlob(target, gzipSync(layerTar));
  const config = await pushBlob(target, imageConfig(platform, sha256Digest(layerTar)));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: types.config, ...config },
      layers: [{ mediaType: types.layer, ...layer }],
    }),
  );
  const digest = sha256Digest(manifest);
  await pushManifest(target, tag ?? digest, manifest, types.manifest);
  const host = registryHost(target.registryUrl);
  const reference =
    tag === undefined ? `${host}/${target.repository}@${digest}` : `${host}/${target.repository}:${tag}`;
  return { digest, manifest, mediaType: types.manifest, reference };
}

/** image-spec config.md: diff_ids are digests of the *uncompressed* layer tars. */
function imageConfig(platform: Platform, diffId: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      ...platform,
      created: new Date().toISOString(),
      config: {},
      rootfs: { type: 'layers', diff_ids: [diffId] },
    }),
  );
}

function pushTarget(registryUrl: string, repository: string, opts: PushOptions): PushTarget {
  return { registryUrl, repository, auth: opts.auth, ca: opts.ca };
}

function registryHost(registryUrl: string): string {
  return new URL(registryUrl).host;
}

export interface CraneOptions {
  /** `--insecure`: allow plain HTTP (and unverified TLS) registries. */
  insecure?: boolean;
  auth?: BasicCredentials;
}

/**
 * The digest the registry reports for `ref`, as the real `crane digest` sees it: an independent client
 * that tests use to cross-check the harness and the provider.
 */
export async function craneDigest(ref: string, opts: CraneOptions = {}): Promise<string> {
  const args = ['digest', ...(opts.insecure === true ? ['--insecure'] : []), ref];
  const dockerConfig = opts.auth === undefined ? undefined : await dockerConfigDir(ref, opts.auth);
  try {
    const env = dockerConfig === undefined ? process.env : { ...process.env, DOCKER_CONFIG: dockerConfig };
    const { stdout } = await execFileAsync(toolPath('crane'), args, { env });
    return stdout.trim();
  } finally {
    if (dockerConfig !== undefined) await rm(dockerConfig, { recursive: true, force: true });
  }
}

/**
 * `crane copy`: the same manifest bytes into another registry (crane speaks basic and token auth).
 * `ca` is a PEM file Go's TLS should trust (SSL_CERT_FILE), for registries with a test certificate.
 */
export async function craneCopy(
  source: string,
  destination: string,
  opts: { auth?: BasicCredentials; ca?: string } = {},
): Promise<void> {
  const dockerConfig = opts.auth === undefined ? undefined : await dockerConfigDir(destination, opts.auth);
  try {
    const env = {
      ...process.env,
      ...(dockerConfig === undefined ? {} : { DOCKER_CONFIG: dockerConfig }),
      ...(opts.ca === undefined ? {} : { SSL_CERT_FILE: opts.ca }),
    };
    await execFileAsync(toolPath('crane'), ['copy', '--insecure', source, destination], { env });
  } finally {
    if (dockerConfig !== undefined) await rm(dockerConfig, { recursive: true, force: true });
  }
}

/** crane reads credentials only from a Docker config file; write a throwaway one for `ref`'s registry. */
async function dockerConfigDir(ref: string, auth: BasicCredentials): Promise<string> {
  const dir = await makeTempDir('docker-config');
  const registry = ref.split('/')[0] ?? ref;
  const config = { auths: { [registry]: { auth: basicToken(auth) } } };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config), {
    mode: 0o600,
  });
  return dir;
}
