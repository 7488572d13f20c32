/**
 * Real OCI registries on loopback, one per suite:
 * - Debian's docker-registry (distribution 2.8): no referrers API, so tag-schema signatures
 *   (`sha256-<digest>.sig`) and the referrers tag fallback; optional htpasswd auth and TLS.
 * - olareg: implements distribution-spec v1.1 including `GET /v2/<name>/referrers/<digest>`
 *   (it stands in for zot, whose module host this machine cannot reach).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { LOOPBACK_HOST, freePort, makeTempDir, startProcess, type ServerProcess } from './process.ts';
import { toolPath } from './tools.ts';

const execFileAsync = promisify(execFile);

export interface RegistryServer {
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  host: string;
  /** `http://127.0.0.1:PORT` (`https://` when started with TLS). */
  url: string;
  /** Tail of the registry's log, for assertion messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface BasicCredentials {
  username: string;
  password: string;
}

export interface DistributionRegistryOptions {
  /** Require HTTP basic auth with this one user (bcrypt htpasswd file, as distribution requires). */
  htpasswd?: BasicCredentials;
  /** Serve HTTPS with this certificate chain and key, both PEM text (not file paths). */
  tls?: { cert: string; key: string };
  /** Bearer-token auth (distribution's `auth.token`): tokens from this token server are accepted. */
  token?: TokenAuth;
  /**
   * Keep content on disk under this directory (distribution's `filesystem` driver) instead of in
   * memory, so a test can play a compromised storage backend (tamperStoredBlob).
   */
  storageDir?: string;
  /** Listen on this port (default: a free one): a restarted registry keeps its address. */
  port?: number;
}

/** What a registry needs to trust a token server (see test/harness/token-server.ts). */
export interface TokenAuth {
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate of the token signing key. */
  rootCertBundle: string;
}

export async function startDistributionRegistry(
  opts: DistributionRegistryOptions = {},
): Promise<RegistryServer> {
  const command = toolPath('docker-registry');
  return inTempDir('registry', async (dir) => {
    const port = opts.port ?? (await freePort());
    const configPath = path.join(dir, 'config.yml');
    await writeFile(configPath, stringify(await distributionConfig(dir, port, opts)));
    const scheme = opts.tls === undefined ? 'http' : 'https';
    const server = await startProcess({
      name: 'docker-registry',
      command,
      args: ['serve', configPath],
      // fetch does not trust a test CA, so with TLS an open port is the readiness signal.
      ready:
        scheme === 'http'
          ? { kind: 'http', url: `http://${LOOPBACK_HOST}:${port}/v2/` }
          : { kind: 'tcp', host: LOOPBACK_HOST, port },
      ownedDirs: [dir],
    });
    return registryServer(server, scheme, port);
  });
}

/**
 * distribution's configuration file (docs/configuration.md of distribution 2.8). Files it points to
 * (htpasswd, certificate, key) are written into `dir`.
 */
async function distributionConfig(dir: string, port: number, opts: DistributionRegistryOptions) {
  const http: Record<string, unknown> = {
    addr: `${LOOPBACK_HOST}:${port}`,
    // Without a secret the registry logs a warning and makes one up; set it to keep the log quiet.
    secret: randomBytes(16).toString('hex'),
  };
  if (opts.tls !== undefined) {
    http['tls'] = { certificate: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    await writeFile(path.join(dir, 'cert.pem'), opts.tls.cert);
    await writeFile(path.join(dir, 'key.pem'), opts.tls.key, { mode: 0o600 });
  }
  const config: Record<string, unknown> = {
    version: '0.1',
    // Info level with the access log: the tail of it is what a failing test's message shows.
    log: { level: 'info' },
    // Upload purging is a background sweep for abandoned uploads; a test registry lives for minutes.
    storage: {
      ...(opts.storageDir === undefined
        ? { inmemory: {} }
        : { filesystem: { rootdirectory: opts.storageDir } }),
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http,
    // The storage-driver health check polls in the background and adds nothing on loopback.
    health: { storagedriver: { enabled: false } },
    // No notification endpoints: the registry sends no events anywhere.
    notifications: { endpoints: [] },
  };
  if (opts.token !== undefined) {
    const bundle = path.join(dir, 'token-issuer.crt');
    await writeFile(bundle, opts.token.rootCertBundle);
    const { realm, service, issuer } = opts.token;
    config['auth'] = { token: { realm, service, issuer, rootcertbundle: bundle } };
  } else if (opts.htpasswd !== undefined) {
    const htpasswdPath = path.join(dir, 'htpasswd');
    await writeFile(htpasswdPath, await bcryptHtpasswdLine(opts.htpasswd));
    config['auth'] = { htpasswd: { realm: 'provenant-test', path: htpasswdPath } };
  }
  return config;
}

/** distribution only reads bcrypt entries, hence `-B`; `-n` prints the line instead of editing a file. */
export async function bcryptHtpasswdLine({ username, password }: BasicCredentials): Promise<string> {
  const { stdout } = await execFileAsync(toolPath('htpasswd'), ['-Bbn', username, password]);
  return stdout;
}

/**
 * olareg with its in-memory store. `--dir ''` matters: given a directory, the mem store seeds each
 * repository from it (the default is the working directory), and a test registry must start empty.
 */
export async function startReferrersRegistry(): Promise<RegistryServer> {
  const port = await freePort();
  const server = await startProcess({
    name: 'olareg',
    command: toolPath('olareg'),
    args: ['serve', '--addr', LOOPBACK_HOST, '--port', String(port), '--store-type', 'mem', '--dir', ''],
    ready: { kind: 'http', url: `http://${LOOPBACK_HOST}:${port}/v2/` },
  });
  return registryServer(server, 'http', port);
}

/**
 * Overwrites the stored bytes of a blob (or a manifest, which distribution stores as a blob) in a
 * registry started with `storageDir`: what a compromised storage backend or a broken proxy serves.
 * The registry hands the new bytes out under the old digest; it verifies digests on upload only.
 */
export async function tamperStoredBlob(storageDir: string, digest: string, bytes: Buffer): Promise<void> {
  const hex = digest.replace(/^sha256:/, '');
  const data = path.join(storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  await writeFile(data, bytes);
}

/** Runs `start` with a fresh temp dir, removing the dir if starting fails (the process owns it after). */
async function inTempDir<T>(label: string, start: (dir: string) => Promise<T>): Promise<T> {
  const dir = await makeTempDir(label);
  try {
    return await start(dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function registryServer(server: ServerProcess, scheme: 'http' | 'https', port: number): RegistryServer {
  const host = `${LOOPBACK_HOST}:${port}`;
  return { host, url: `${scheme}://${host}`, output: () => server.output(), stop: () => server.stop() };
}
