/**
 * A loopback world for the fault suite and the soak: a real docker-registry holding images signed for
 * each validator that has a harness (static, cosign, Notary v1 via a real notary-server, Notation),
 * and unsigned twins of each, with the verdict every key must get. `judge` sorts a provider answer
 * into correct, transient (a `systemError` with a transient code: Gatekeeper retries) or wrong.
 */
import { rm } from 'node:fs/promises';
import { request, type Dispatcher } from 'undici';
import { ERROR_CODES, type ErrorCode } from '../../provider/src/types/errors.ts';
import { cosignKeyPair, cosignSign } from './cosign.ts';
import { pushRandomImage } from './images.ts';
import { notationSign, notationTestSigner } from './notation.ts';
import { NotaryCli, startNotaryServer, type NotaryServer } from './notary.ts';
import { makeTempDir } from './process.ts';
import { startDistributionRegistry, type RegistryServer } from './registry.ts';

/** What a key must get: approval pinned to this digest, or a denial (an item error). */
export type Expected = { readonly digest: string } | { readonly deny: true };

export interface Case {
  readonly key: string;
  readonly validator: 'static' | 'cosign' | 'notaryv1' | 'notation';
  readonly expect: Expected;
}

export interface World {
  /** The registry now (stopRegistry/startRegistry replace it). */
  readonly registry: RegistryServer;
  readonly notary: NotaryServer;
  /** Keys whose verdicts are settled when the world starts: two per validator, one approved, one not. */
  readonly cases: readonly Case[];
  /** The `validators:`, `policy:` and `registries:` sections judging `cases` (plus `extraRules`). */
  configYaml(extra?: { rules?: string[]; registries?: string[] }): string;
  /** Stops the registry; startRegistry starts it again on the same port with the same storage. */
  stopRegistry(): Promise<void>;
  startRegistry(): Promise<void>;
  stop(): Promise<void>;
}

export interface WorldOptions {
  /** Registry on a fixed port with on-disk storage, so a test can restart it without losing images. */
  registryPort?: number;
  storageDir?: string;
}

const indent = (pem: string, spaces: number): string => pem.trim().replace(/\n/g, `\n${' '.repeat(spaces)}`);

export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  const dir = await makeTempDir('world');
  const startRegistry = (): Promise<RegistryServer> =>
    startDistributionRegistry({ port: opts.registryPort, storageDir: opts.storageDir });
  const [firstRegistry, notary] = await Promise.all([startRegistry(), startNotaryServer()]);
  let registry = firstRegistry;
  const host = registry.host;
  const push = (repo: string): Promise<{ digest: string; ref: string; size: number }> =>
    pushRandomImage(registry.url, repo, 'v1').then((p) => ({
      digest: p.digest,
      ref: `${host}/${repo}@${p.digest}`,
      size: p.manifest.length,
    }));

  const [cosignKey, notationSigner, notaryCli] = await Promise.all([
    cosignKeyPair(dir, 'soak'),
    notationTestSigner(dir, 'soak'),
    NotaryCli.create(notary),
  ]);
  const gun = `${host}/notary/signed`;
  await notaryCli.init(gun);
  const notaryRoot = await notaryCli.rootPublicKeyPem(gun);

  // The unsigned twins exist in the registry: they are denied for want of a signature, not a manifest.
  const [staticOk, , cosignOk, , notaryOk, , notationOk] = await Promise.all(
    [
      'static/allowed',
      'static/denied',
      'cosign/signed',
      'cosign/unsigned',
      'notary/signed',
      'notary/unsigned',
      'notation/signed',
      'notation/unsigned',
    ].map(push),
  );
  await Promise.all([
    cosignSign(cosignOk!.ref, cosignKey),
    notationSign(notationSigner, notationOk!.ref),
    notaryCli.sign(gun, 'v1', notaryOk!.digest, notaryOk!.size),
  ]);

  const tagged = (repo: string): string => `${host}/${repo}:v1`;
  const cases: Case[] = [
    { key: tagged('static/allowed'), validator: 'static', expect: { digest: staticOk!.digest } },
    { key: tagged('static/denied'), validator: 'static', expect: { deny: true } },
    { key: tagged('cosign/signed'), validator: 'cosign', expect: { digest: cosignOk!.digest } },
    { key: tagged('cosign/unsigned'), validator: 'cosign', expect: { deny: true } },
    { key: tagged('notary/signed'), validator: 'notaryv1', expect: { digest: notaryOk!.digest } },
    { key: tagged('notary/unsigned'), validator: 'notaryv1', expect: { deny: true } },
    { key: tagged('notation/signed'), validator: 'notation', expect: { digest: notationOk!.digest } },
    { key: tagged('notation/unsigned'), validator: 'notation', expect: { deny: true } },
  ];

  const configYaml = (extra: { rules?: string[]; registries?: string[] } = {}): string => `
validators:
  - { name: deny, type: static, approve: false }
  - { name: allow, type: static, approve: true }
  - name: cosign
    type: cosign
    trustRoots:
      - { name: soak, key: ${JSON.stringify(cosignKey.publicKey)} }
  - name: notaryv1
    type: notaryv1
    host: ${notary.host}
    cert: |
      ${indent(notary.caPem, 6)}
    trustRoots:
      - name: soak
        key: |
          ${indent(notaryRoot, 10)}
  - name: notation
    type: notation
    trustRoots:
      - { name: soak, cert: ${JSON.stringify(notationSigner.trustedPem)} }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${host}/static/allowed", validator: allow }
  - { pattern: "${host}/cosign/*", validator: cosign, with: { trustRoot: soak, verifyInTransparencyLog: false } }
  - { pattern: "${host}/notary/*", validator: notaryv1, with: { trustRoot: soak } }
  - { pattern: "${host}/notation/*", validator: notation, with: { trustRoot: soak } }
${(extra.rules ?? []).map((r) => `  - ${r}`).join('\n')}
registries:
  - { host: "${host}", insecure: true }
${(extra.registries ?? []).map((r) => `  - ${r}`).join('\n')}
`;

  return {
    get registry() {
      return registry;
    },
    notary,
    cases,
    configYaml,
    stopRegistry: () => registry.stop(),
    startRegistry: async () => {
      if (opts.registryPort === undefined || opts.storageDir === undefined)
        throw new Error('startRegistry needs a world started with registryPort and storageDir');
      registry = await startRegistry();
    },
    stop: async () => {
      await Promise.all([registry.stop(), notary.stop(), notaryCli.remove()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ProviderAnswer {
  readonly status: number;
  readonly systemError: string;
  readonly items: readonly { key: string; value: unknown; error: string }[];
}

/** POST one ProviderRequest for `keys` to /v1/verify. Transport errors reject. */
export function verify(
  url: string,
  dispatcher: Dispatcher,
  keys: readonly string[],
  timeoutMs = 30_000,
): Promise<ProviderAnswer> {
  return askProvider(url, dispatcher, 'verify', keys, timeoutMs);
}

/** POST one ProviderRequest for `keys` to /v1/verify or /v1/mutate. Transport errors reject. */
export async function askProvider(
  url: string,
  dispatcher: Dispatcher,
  route: 'verify' | 'mutate',
  keys: readonly string[],
  timeoutMs = 30_000,
): Promise<ProviderAnswer> {
  const res = await request(`${url}/v1/${route}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
      kind: 'ProviderRequest',
      request: { keys },
    }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const body = (await res.body.json()) as { response?: Omit<ProviderAnswer, 'status'> };
  return {
    status: res.statusCode,
    systemError: body.response?.systemError ?? '',
    items: body.response?.items ?? [],
  };
}

export type Judgement = 'correct' | 'transient' | 'wrong';

/** The code an item error or systemError starts with (`CODE: message`). */
export function errorCode(error: string): string {
  return /^([A-Z0-9_]+):/.exec(error)?.[1] ?? '';
}

function isTransient(error: string): boolean {
  const code = errorCode(error);
  return code in ERROR_CODES && ERROR_CODES[code as ErrorCode].transient;
}

/**
 * One single-key answer against its expected verdict. A 200 with a transient `systemError` and no items
 * is what Gatekeeper retries (`transient`); anything else must be exactly the expected verdict: the
 * expected digest, or an item error with a non-transient code (a transient code as an item error would
 * be cached by Gatekeeper as a verdict).
 */
export function judge(answer: ProviderAnswer, expected: Expected): { judgement: Judgement; why: string } {
  const shown = JSON.stringify(answer).slice(0, 400);
  if (answer.status !== 200) return { judgement: 'wrong', why: `HTTP ${answer.status}: ${shown}` };
  if (answer.systemError !== '') {
    return answer.items.length === 0 && isTransient(answer.systemError)
      ? { judgement: 'transient', why: answer.systemError }
      : { judgement: 'wrong', why: `systemError not transient or with items: ${shown}` };
  }
  const item = answer.items[0];
  if (answer.items.length !== 1 || item === undefined) return { judgement: 'wrong', why: shown };
  if ('digest' in expected) {
    const value = item.value as { digest?: unknown } | null;
    const ok = item.error === '' && typeof value === 'object' && value?.digest === expected.digest;
    return ok ? { judgement: 'correct', why: '' } : { judgement: 'wrong', why: shown };
  }
  return item.error !== '' && item.value === '' && !isTransient(item.error)
    ? { judgement: 'correct', why: '' }
    : { judgement: 'wrong', why: shown };
}
