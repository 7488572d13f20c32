/**
 * Where a registry's credentials come from: the config itself, a Docker `config.json` on disk (re-read
 * when it changes, with `credHelpers` programs), or a Kubernetes `kubernetes.io/dockerconfigjson`
 * Secret (watched, so rotated short-lived tokens are used without a restart).
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import type * as Kube from '@kubernetes/client-node';
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { ProvenantError } from '../../types/errors.ts';
import { parseDockerConfig, type BasicCredentials, type DockerConfig } from './docker-config.ts';

export interface CredentialSource {
  /** Credentials for `registry` (a host as in image references), or undefined for anonymous. */
  get(registry: string, image: string, signal: AbortSignal): Promise<BasicCredentials | undefined>;
  /** The registry refused what `get` gave: forget cached values so the next `get` reads afresh. */
  invalidate(): void;
  close(): void;
}

export class StaticCredentials implements CredentialSource {
  constructor(private readonly creds: BasicCredentials) {}
  get(): Promise<BasicCredentials> {
    return Promise.resolve(this.creds);
  }
  invalidate(): void {}
  close(): void {}
}

const HELPER_TIMEOUT_MS = 5_000;
const HELPER_CACHE_MS = 5 * 60_000;
const HELPER_MAX_OUTPUT = 64 * 1024;

/** A Docker config file, re-read whenever its size, inode or mtime change. */
export class DockerConfigFileCredentials implements CredentialSource {
  private loaded: { stamp: string; config: DockerConfig } | undefined;
  private readonly helperCache = new Map<string, { creds: BasicCredentials; until: number }>();

  constructor(private readonly path: string) {}

  async get(registry: string, image: string): Promise<BasicCredentials | undefined> {
    const config = await this.read(image);
    const fromAuths = config.auths.get(registry);
    if (fromAuths !== undefined) return fromAuths;
    const helper = config.credHelpers.get(registry) ?? config.credsStore;
    return helper === undefined ? undefined : this.fromHelper(helper, registry, image);
  }

  invalidate(): void {
    this.loaded = undefined;
    this.helperCache.clear();
  }

  close(): void {}

  private async read(image: string): Promise<DockerConfig> {
    try {
      const s = await stat(this.path);
      const stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
      if (this.loaded?.stamp === stamp) return this.loaded.config;
      const config = parseDockerConfig(await readFile(this.path, 'utf8'));
      this.loaded = { stamp, config };
      this.helperCache.clear();
      return config;
    } catch (err) {
      throw unavailable(image, `the Docker config file ${this.path}`, err);
    }
  }

  private async fromHelper(helper: string, registry: string, image: string): Promise<BasicCredentials> {
    const cached = this.helperCache.get(registry);
    if (cached !== undefined && cached.until > Date.now()) return cached.creds;
    const program = `docker-credential-${helper}`;
    let creds: BasicCredentials;
    try {
      creds = parseHelperOutput(await runHelper(program, registry));
    } catch (err) {
      throw unavailable(image, `the credential helper ${program}`, err);
    }
    this.helperCache.set(registry, { creds, until: Date.now() + HELPER_CACHE_MS });
    return creds;
  }
}

/** Runs `docker-credential-<helper> get` with the registry on stdin (the docker-credential-helpers protocol). */
function runHelper(program: string, registry: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: HELPER_TIMEOUT_MS });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (out.length > HELPER_MAX_OUTPUT) child.kill();
    });
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(0, 300)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            signal !== null ? `killed by ${signal}` : `exit ${code}: ${(out || err).trim().slice(0, 200)}`,
          ),
        );
    });
    child.stdin.end(registry);
  });
}

function parseHelperOutput(out: string): BasicCredentials {
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    throw new Error('expected JSON {"Username", "Secret"}, found text that does not parse');
  }
  const o = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (typeof o['Username'] !== 'string' || typeof o['Secret'] !== 'string')
    throw new Error('expected JSON {"Username", "Secret"}, found other fields');
  if (o['Username'] === '<token>')
    throw new Error(
      'it returned an identity token, which Provenant does not exchange; use a helper returning basic credentials',
    );
  return { username: o['Username'], password: o['Secret'] };
}

/**
 * A `kubernetes.io/dockerconfigjson` Secret, read once and then watched: every change (a CronJob
 * refreshing an ECR token, an operator rotating a password) replaces the credentials in memory.
 * Credential helpers named inside a Secret are never run.
 */
export class SecretCredentials implements CredentialSource {
  private current: { config: DockerConfig } | { error: string } | undefined;
  private loading: Promise<void> | undefined;
  private watch: AbortController | undefined;
  private closed = false;

  constructor(
    private readonly namespace: string,
    private readonly name: string,
    private kc?: KubeConfig,
  ) {}

  async get(registry: string, image: string, signal: AbortSignal): Promise<BasicCredentials | undefined> {
    if (this.current === undefined) {
      this.loading ??= this.load().finally(() => (this.loading = undefined));
      await abortable(this.loading, signal);
    }
    const current = this.current;
    if (current === undefined || 'error' in current)
      throw unavailable(image, this.describe(), new Error(current?.error ?? 'not read yet'));
    return current.config.auths.get(registry);
  }

  invalidate(): void {
    // The watch keeps `current` fresh; a refusal with fresh credentials is the registry's answer.
    if (this.watch === undefined) this.current = undefined;
  }

  close(): void {
    this.closed = true;
    this.watch?.abort();
    this.watch = undefined;
  }

  private describe(): string {
    return `the Secret ${this.namespace}/${this.name}`;
  }

  private async load(): Promise<void> {
    try {
      const { CoreV1Api } = await kubeClient();
      this.kc ??= await defaultKubeConfig();
      const api = this.kc.makeApiClient(CoreV1Api);
      const secret = await api.readNamespacedSecret({ name: this.name, namespace: this.namespace });
      this.accept(secret);
      if (this.watch === undefined) await this.startWatch(secret.metadata?.resourceVersion);
    } catch (err) {
      this.current = { error: kubeErrorMessage(err) };
    }
  }

  private accept(secret: V1Secret): void {
    if (secret.type !== 'kubernetes.io/dockerconfigjson') {
      this.current = {
        error: `expected type kubernetes.io/dockerconfigjson, found ${secret.type ?? 'no type'}`,
      };
      return;
    }
    const data = secret.data?.['.dockerconfigjson'];
    if (data === undefined) {
      this.current = { error: 'expected a .dockerconfigjson key, found none' };
      return;
    }
    try {
      const parsed = parseDockerConfig(Buffer.from(data, 'base64').toString('utf8'));
      this.current = { config: { ...parsed, credHelpers: new Map(), credsStore: undefined } };
    } catch (err) {
      this.current = { error: `.dockerconfigjson: ${(err as Error).message}` };
    }
  }

  private async startWatch(resourceVersion: string | undefined): Promise<void> {
    if (this.closed || this.kc === undefined) return;
    const { Watch } = await kubeClient();
    const path = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/secrets`;
    const query: Record<string, string> = { fieldSelector: `metadata.name=${this.name}` };
    if (resourceVersion !== undefined) query['resourceVersion'] = resourceVersion;
    this.watch = await new Watch(this.kc).watch(
      path,
      query,
      (phase, obj: V1Secret) => {
        if (phase === 'ADDED' || phase === 'MODIFIED') this.accept(obj);
        else if (phase === 'DELETED') this.current = { error: 'the Secret was deleted' };
      },
      () => {
        // Watches end (server timeout, apiserver restart): re-read and watch again, after a pause.
        this.watch = undefined;
        if (this.closed) return;
        setTimeout(() => {
          if (!this.closed) this.loading ??= this.load().finally(() => (this.loading = undefined));
        }, 1_000).unref();
      },
    );
  }
}

/**
 * @kubernetes/client-node is loaded on the first Secret read, not at start: it adds about 65 MB of RSS
 * and a second or more of module loading to every process, and only configs naming a Secret need it.
 */
let kubeModule: Promise<typeof Kube> | undefined;
function kubeClient(): Promise<typeof Kube> {
  return (kubeModule ??= import('@kubernetes/client-node'));
}

async function defaultKubeConfig(): Promise<KubeConfig> {
  const { KubeConfig } = await kubeClient();
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

function kubeErrorMessage(err: unknown): string {
  const e = err as { code?: number; message?: string };
  if (e.code === 404) return 'it does not exist';
  if (e.code === 403) return 'Provenant is not allowed to read it (RBAC: get/watch on that Secret)';
  return (e.message ?? String(err)).split('\n')[0]?.slice(0, 200) ?? 'unknown error';
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function unavailable(image: string, what: string, err: unknown): ProvenantError {
  const why = err instanceof Error ? err.message : String(err);
  return new ProvenantError(
    'REGISTRY_CREDENTIALS_UNAVAILABLE',
    `registry credentials for ${image} could not be read: expected ${what} to give credentials, found: ${why}`,
    { image, cause: err },
  );
}
