/**
 * What every benchmarked system is asked about, made once per run by the real tools: a docker-registry
 * behind the counting proxy, images pushed and signed by cosign (legacy `.sig` and v3 bundles) and
 * Notary v1, unsigned images for the static validator, and many tags of one signed image for the warm
 * and memory figures (distinct keys, distinct cache entries, one signature to make).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cosignKeyPair, cosignSign, type CosignKey } from '../harness/cosign.ts';
import { pushRandomImage, type PushedManifest } from '../harness/images.ts';
import { startNotaryServer, NotaryCli, type NotaryServer } from '../harness/notary.ts';
import { pushManifest } from '../harness/oci-push.ts';
import { startDistributionRegistry } from '../harness/registry.ts';
import { startCountingProxy, type CountingProxy } from '../harness/counting-proxy.ts';

/** The validators benchmarked; Ratify takes part in `cosign-sig` only (see README, Performance). */
export const KINDS = ['cosign-sig', 'cosign-bundle', 'notaryv1', 'static'] as const;
export type Kind = (typeof KINDS)[number];

export interface Sizes {
  /** Images of one cold "pod" request. */
  readonly podImages: number;
  /** Single new images asked about one at a time on an open connection, per kind. */
  readonly singleImages: number;
  /** Distinct tags of the signed image: enough for the largest warm request and the memory figure. */
  readonly warmTags: number;
  readonly kinds: readonly Kind[];
}

export interface KindImages {
  /** Tag references of the cold pod request. */
  readonly pod: readonly string[];
  readonly singles: readonly string[];
}

export interface Fixtures {
  readonly proxy: CountingProxy;
  readonly dir: string;
  readonly cosignKey: CosignKey;
  readonly notary: { server: NotaryServer; rootKey: string } | undefined;
  readonly images: Partial<Record<Kind, KindImages>>;
  /** `host/sig/warm:wN`, all the same signed digest. */
  readonly warmKeys: readonly string[];
  close(): Promise<void>;
}

/** Signing runs this many cosign / notary processes at once (2 cores). */
const SIGNING_CONCURRENCY = 2;
const TAG_PUSH_CONCURRENCY = 16;

export async function makeFixtures(dir: string, sizes: Sizes): Promise<Fixtures> {
  const registry = await startDistributionRegistry();
  const proxy = await startCountingProxy(registry.url);
  const closers: (() => Promise<void>)[] = [() => proxy.close(), () => registry.stop()];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const cosignKey = await cosignKeyPair(dir, 'bench');
    await writeFile(path.join(dir, 'cosign.pub'), cosignKey.publicKey);
    const notary = sizes.kinds.includes('notaryv1') ? await startNotary(proxy, closers) : undefined;
    const images: Partial<Record<Kind, KindImages>> = {};
    for (const kind of sizes.kinds) images[kind] = await makeKind(kind, proxy, cosignKey, notary, sizes);
    const warmKeys = await makeWarmTags(proxy, cosignKey, sizes.warmTags);
    proxy.take();
    return {
      proxy,
      dir,
      cosignKey,
      notary: notary === undefined ? undefined : { server: notary.server, rootKey: notary.rootKey },
      images,
      warmKeys,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Repository prefix of a kind: the policy routes `host/<prefix>/*` to that kind's validator. */
export function repoPrefix(kind: Kind): string {
  switch (kind) {
    case 'cosign-sig':
      return 'sig';
    case 'cosign-bundle':
      return 'bundle';
    case 'notaryv1':
      return 'notary';
    case 'static':
      return 'static';
  }
}

interface NotaryFixture {
  server: NotaryServer;
  cli: NotaryCli;
  gun: string;
  rootKey: string;
}

async function startNotary(proxy: CountingProxy, closers: (() => Promise<void>)[]): Promise<NotaryFixture> {
  const server = await startNotaryServer();
  closers.push(() => server.stop());
  const cli = await NotaryCli.create(server);
  closers.push(() => cli.remove());
  const gun = `${proxy.host}/notary/app`;
  await cli.init(gun);
  return { server, cli, gun, rootKey: await cli.rootPublicKeyPem(gun) };
}

async function makeKind(
  kind: Kind,
  proxy: CountingProxy,
  key: CosignKey,
  notary: NotaryFixture | undefined,
  sizes: Sizes,
): Promise<KindImages> {
  const prefix = repoPrefix(kind);
  // Notary v1 signs per repository (GUN): its images are tags of one repository.
  const name = (set: string, i: number): [string, string] =>
    kind === 'notaryv1' ? [`${prefix}/app`, `${set}${i}`] : [`${prefix}/${set}${i}`, 'v1'];
  const make = async ([repo, tag]: [string, string]): Promise<string> => {
    const pushed = await pushRandomImage(proxy.url, repo, tag);
    await sign(kind, pushed, key, notary, tag);
    return pushed.reference;
  };
  // One notary client publishes to one repository: its signatures go one after another.
  const concurrency = kind === 'notaryv1' ? 1 : SIGNING_CONCURRENCY;
  const names = (set: string, count: number): [string, string][] =>
    Array.from({ length: count }, (_, i) => name(set, i));
  const pod = await inParallel(names('p', sizes.podImages), concurrency, make);
  const singles = await inParallel(names('s', sizes.singleImages), concurrency, make);
  return { pod, singles };
}

async function sign(
  kind: Kind,
  pushed: PushedManifest,
  key: CosignKey,
  notary: NotaryFixture | undefined,
  tag: string,
): Promise<void> {
  const byDigest = `${pushed.reference.replace(/:[^:/]+$/, '')}@${pushed.digest}`;
  switch (kind) {
    case 'cosign-sig':
      return cosignSign(byDigest, key, 'legacy');
    case 'cosign-bundle':
      return cosignSign(byDigest, key, 'bundle');
    case 'notaryv1':
      if (notary === undefined) throw new Error('notary fixture missing');
      return notary.cli.sign(notary.gun, tag, pushed.digest, pushed.manifest.length);
    case 'static':
      return;
  }
}

/** One image signed once (legacy `.sig`), tagged `w0`…: distinct keys that verify without more signing. */
async function makeWarmTags(proxy: CountingProxy, key: CosignKey, count: number): Promise<string[]> {
  const repo = 'sig/warm';
  const pushed = await pushRandomImage(proxy.url, repo, 'w0');
  await cosignSign(`${proxy.host}/${repo}@${pushed.digest}`, key, 'legacy');
  const tags = Array.from({ length: count }, (_, i) => `w${i}`);
  await pushTags(proxy.url, repo, pushed, tags.slice(1));
  return tags.map((tag) => `${proxy.host}/${repo}:${tag}`);
}

/**
 * Tags an image already in `repository` under each of `tags` (one manifest PUT each, a few at a time):
 * distinct image keys, each a cold tag resolve for a verifier, for the price of one signature.
 */
export async function pushTags(
  registryUrl: string,
  repository: string,
  image: PushedManifest,
  tags: readonly string[],
): Promise<void> {
  await inParallel(tags, TAG_PUSH_CONCURRENCY, (tag) =>
    pushManifest({ registryUrl, repository }, tag, image.manifest, image.mediaType),
  );
}

/** Maps `items` through `work`, at most `concurrency` at a time, keeping order. */
export async function inParallel<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
