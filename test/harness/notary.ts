/**
 * A real Notary v1 server on loopback (Debian `notary-server`, memory storage, the local signing
 * service for server-managed timestamp keys, TLS from a test CA) and the real `notary` client signing
 * into it with a private trust directory. Also a hostile HTTPS proxy for the one fault an honest
 * server never produces: replaying older trust data.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { issueCert, makeCa, selfSignedCert, type CertFiles } from './pki.ts';
import { LOOPBACK_HOST, freePort, makeTempDir, startProcess } from './process.ts';
import { toolPath } from './tools.ts';

const execFileAsync = promisify(execFile);

/** The notary client reads these instead of prompting (notary `passphrase/passphrase.go`). */
const PASSPHRASE = 'provenant-test-passphrase';
const PASSPHRASE_ENV = {
  NOTARY_ROOT_PASSPHRASE: PASSPHRASE,
  NOTARY_TARGETS_PASSPHRASE: PASSPHRASE,
  NOTARY_SNAPSHOT_PASSPHRASE: PASSPHRASE,
  NOTARY_DELEGATION_PASSPHRASE: PASSPHRASE,
};
/** Delegation certificates: long enough that notary does not warn that they are near expiry. */
const DELEGATION_CERT_DAYS = 365;

export interface NotaryServer {
  /** `127.0.0.1:PORT`, the validator's `host`. */
  readonly host: string;
  /** PEM of the CA that issued the server's TLS certificate (the validator's `cert`). */
  readonly caPem: string;
  readonly ca: CertFiles;
  /** The server's own TLS certificate and key (for a proxy that impersonates it). */
  readonly tls: CertFiles;
  output(): string;
  stop(): Promise<void>;
}

/** notary-server's token access controller (docker/distribution `registry/auth/token`). */
export interface NotaryTokenAuth {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM certificate the token signer's `x5c` chain must lead to. */
  readonly rootCertPem: string;
}

export async function startNotaryServer(
  opts: { tokenAuth?: NotaryTokenAuth; ca?: CertFiles } = {},
): Promise<NotaryServer> {
  const dir = await makeTempDir('notary-server');
  try {
    const auth = opts.tokenAuth;
    const bundle = path.join(dir, 'token-root.crt');
    if (auth !== undefined) await writeFile(bundle, auth.rootCertPem);
    const ca = opts.ca ?? (await makeCa(dir, 'notary-ca'));
    const tls = await issueCert(dir, ca, 'notary-server', 'server');
    const port = await freePort();
    const configPath = path.join(dir, 'server.json');
    await writeFile(
      configPath,
      JSON.stringify({
        server: { http_addr: `${LOOPBACK_HOST}:${port}`, tls_cert_file: tls.cert, tls_key_file: tls.key },
        // The local trust service signs timestamps in-process (ed25519): no notary-signer needed.
        trust_service: { type: 'local' },
        storage: { backend: 'memory' },
        logging: { level: 'info' },
        ...(auth === undefined
          ? {}
          : {
              auth: {
                type: 'token',
                options: {
                  realm: auth.realm,
                  service: auth.service,
                  issuer: auth.issuer,
                  rootcertbundle: bundle,
                },
              },
            }),
      }),
    );
    const server = await startProcess({
      name: 'notary-server',
      command: toolPath('notary-server'),
      args: ['-config', configPath],
      ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
      ownedDirs: [dir],
    });
    return {
      host: `${LOOPBACK_HOST}:${port}`,
      caPem: ca.certPem,
      ca,
      tls,
      output: () => server.output(),
      stop: () => server.stop(),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The `notary` CLI with its own trust directory (its own root key), talking to one server. */
export class NotaryCli {
  private constructor(
    readonly trustDir: string,
    private readonly server: { host: string; ca: CertFiles },
    private readonly credentials: { username: string; password: string } | undefined,
  ) {}

  /** `credentials` go to a token server through notary's NOTARY_AUTH (base64 `user:password`). */
  static async create(
    server: { host: string; ca: CertFiles },
    credentials?: { username: string; password: string },
  ): Promise<NotaryCli> {
    return new NotaryCli(await makeTempDir('notary-trust'), server, credentials);
  }

  async run(...args: string[]): Promise<string> {
    const global = [
      '-s',
      `https://${this.server.host}`,
      '--tlscacert',
      this.server.ca.cert,
      '-d',
      this.trustDir,
    ];
    try {
      const { stdout, stderr } = await execFileAsync(toolPath('notary'), [...global, ...args], {
        env: {
          ...process.env,
          ...PASSPHRASE_ENV,
          ...(this.credentials === undefined
            ? {}
            : {
                NOTARY_AUTH: Buffer.from(
                  `${this.credentials.username}:${this.credentials.password}`,
                ).toString('base64'),
              }),
        },
      });
      return stdout + stderr;
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`notary ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
        cause: error,
      });
    }
  }

  /** `notary init GUN -p`: a new repository with this trust dir's root key (ECDSA unless `rootKey`). */
  async init(gun: string, rootKey?: string): Promise<void> {
    await this.run('init', gun, '-p', ...(rootKey === undefined ? [] : ['--rootkey', rootKey]));
  }

  /** Signs `digest` (`sha256:…`, `size` bytes of manifest) as `tag`, in `targets` or a delegation role. */
  async sign(gun: string, tag: string, digest: string, size: number, role?: string): Promise<void> {
    const hex = digest.replace(/^sha256:/, '');
    await this.run('addhash', gun, tag, String(size), '--sha256', hex, '-p', ...(role ? ['-r', role] : []));
  }

  /** Removes a tag from `targets` (or a delegation) and publishes. */
  async unsign(gun: string, tag: string, role?: string): Promise<void> {
    await this.run('remove', gun, tag, '-p', ...(role ? ['-r', role] : []));
  }

  /**
   * Adds delegation `role` (e.g. `targets/releases`) with a fresh ECDSA key whose certificate is made
   * by openssl, imports the private key so this CLI can sign as the role, and publishes.
   */
  async addDelegation(gun: string, role: string): Promise<void> {
    const cert = await selfSignedCert(this.trustDir, role.replace(/\//g, '-'), {
      days: DELEGATION_CERT_DAYS,
    });
    await this.run('key', 'import', cert.key, '-r', role);
    await this.run('delegation', 'add', gun, role, cert.cert, '--all-paths', '-p');
  }

  /** An encrypted PKCS#8 RSA root key notary accepts for `init --rootkey` (PBES2, HMAC-SHA1). */
  async makeRsaRootKey(): Promise<string> {
    const plain = path.join(this.trustDir, 'rsa-root.pem');
    const encrypted = path.join(this.trustDir, 'rsa-root.enc.pem');
    await execFileAsync('openssl', ['genrsa', '-out', plain, '2048']);
    await execFileAsync('openssl', [
      ...['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-v2prf', 'hmacWithSHA1'],
      ...['-passout', `pass:${PASSPHRASE}`, '-in', plain, '-out', encrypted],
    ]);
    return encrypted;
  }

  /**
   * The public key (PEM) of the repository's root certificate, as a Connaisseur user configures it
   * (`trustRoots[].key`), read from the root.json the client published.
   */
  async rootPublicKeyPem(gun: string): Promise<string> {
    const file = path.join(this.trustDir, 'tuf', gun, 'metadata', 'root.json');
    const root = JSON.parse(await readFile(file, 'utf8')) as {
      signed: { keys: Record<string, { keyval: { public: string } }>; roles: { root: { keyids: string[] } } };
    };
    const keyId = root.signed.roles.root.keyids[0] as string;
    const certPem = Buffer.from(root.signed.keys[keyId]?.keyval.public ?? '', 'base64');
    return new X509Certificate(certPem).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }

  async remove(): Promise<void> {
    await rm(this.trustDir, { recursive: true, force: true });
  }
}

/**
 * An HTTPS proxy in front of a Notary server, presenting the server's own certificate. `freeze()`
 * captures the repository's current timestamp and snapshot; after `replay()` it answers those two
 * roles with the captured (older, validly signed) bytes: a freeze/rollback attack. `alias()` serves
 * one repository's trust data under another's name.
 */
export interface ReplayProxy {
  readonly host: string;
  /** Serves `toGun`'s trust data for requests about `fromGun` (a mix-and-match attack). */
  alias(fromGun: string, toGun: string): void;
  freeze(gun: string): Promise<void>;
  replay(on: boolean): void;
  close(): Promise<void>;
}

export async function startReplayProxy(upstream: NotaryServer): Promise<ReplayProxy> {
  const frozen = new Map<string, Buffer>();
  const aliases = new Map<string, string>();
  let replaying = false;
  const fetchUpstream = (urlPath: string): Promise<{ status: number; body: Buffer; type: string }> =>
    new Promise((resolve, reject) => {
      const [hostname, port] = upstream.host.split(':') as [string, string];
      const req = request({ hostname, port: Number(port), path: urlPath, ca: upstream.caPem }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 502,
            body: Buffer.concat(chunks),
            type: res.headers['content-type'] ?? 'application/json',
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const server: Server = createServer(
    { cert: upstream.tls.certPem, key: upstream.tls.keyPem },
    (req, res) => {
      const asked = req.url ?? '/';
      const alias = [...aliases].find(([from]) => asked.startsWith(`/v2/${from}/`));
      const urlPath =
        alias === undefined ? asked : `/v2/${alias[1]}/${asked.slice(`/v2/${alias[0]}/`.length)}`;
      const replayed = replaying ? frozen.get(urlPath) : undefined;
      if (replayed !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(replayed);
        return;
      }
      fetchUpstream(urlPath).then(
        (r) => res.writeHead(r.status, { 'content-type': r.type }).end(r.body),
        () => res.writeHead(502).end(),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK_HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `${LOOPBACK_HOST}:${port}`,
    async freeze(gun) {
      for (const role of ['timestamp', 'snapshot']) {
        const urlPath = `/v2/${gun}/_trust/tuf/${role}.json`;
        const r = await fetchUpstream(urlPath);
        if (r.status !== 200) throw new Error(`cannot capture ${urlPath}: ${r.status}`);
        frozen.set(urlPath, r.body);
      }
    },
    alias(fromGun, toGun) {
      aliases.set(fromGun, toGun);
    },
    replay(on) {
      replaying = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A token server for notary-server's token auth (the Docker registry token specification): anyone gets
 * `pull`; `push` needs the signer's basic credentials. Tokens are ES256 JWTs whose `x5c` header carries
 * the signing certificate, which notary-server checks against its root certificate bundle.
 */
export interface TokenServer {
  readonly auth: NotaryTokenAuth;
  /** Every token request: the scope asked for and whether it came with valid credentials. */
  readonly requests: { scope: string; authenticated: boolean }[];
  /** When true, every token request is refused with 403. */
  refuse: boolean;
  close(): Promise<void>;
}

export interface TokenServerOptions {
  /** Serve HTTPS with this certificate (credentials only ever go to an https realm). */
  readonly tls?: CertFiles;
  /** Refuse anonymous pull tokens too: every token needs the signer's credentials. */
  readonly pullNeedsAuth?: boolean;
}

export async function startTokenServer(
  signer: { username: string; password: string },
  options: TokenServerOptions = {},
): Promise<TokenServer> {
  const dir = await makeTempDir('notary-token');
  const signing = await makeCa(dir, 'token-signer');
  await rm(dir, { recursive: true, force: true });
  const service = 'notary-server';
  const issuer = 'provenant-test-token-issuer';
  const expected = `Basic ${Buffer.from(`${signer.username}:${signer.password}`).toString('base64')}`;
  const x5c = [new X509Certificate(signing.certPem).raw.toString('base64')];
  const requests: TokenServer['requests'] = [];
  const state = { refuse: false };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://token');
    const scope = url.searchParams.get('scope') ?? '';
    const authenticated = req.headers.authorization === expected;
    requests.push({ scope, authenticated });
    if (state.refuse || (options.pullNeedsAuth === true && !authenticated))
      return void res.writeHead(401).end();
    // `repository:<gun>:<actions>`; a GUN with a registry port contains ':' itself.
    const match = /^repository:(.+):([a-z*,]+)$/.exec(scope);
    const granted = (match?.[2] ?? '').split(',').filter((a) => a === 'pull' || authenticated);
    const nowS = Math.floor(Date.now() / 1000);
    const token = jwt(signing.keyPem, x5c, {
      iss: issuer,
      sub: authenticated ? signer.username : '',
      aud: service,
      exp: nowS + 300,
      nbf: nowS - 10,
      iat: nowS,
      jti: randomBytes(8).toString('hex'),
      access: match === null ? [] : [{ type: 'repository', name: match[1], actions: granted }],
    });
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token, expires_in: 300 }));
  };
  const server =
    options.tls === undefined
      ? createHttpServer(handler)
      : createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler);
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK_HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    auth: {
      realm: `${options.tls === undefined ? 'http' : 'https'}://${LOOPBACK_HOST}:${port}/auth`,
      service,
      issuer,
      rootCertPem: signing.certPem,
    },
    requests,
    get refuse() {
      return state.refuse;
    },
    set refuse(on: boolean) {
      state.refuse = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A compact JWS (RFC 7515) with ES256: the signature is r||s, as JWA §3.4 requires. */
function jwt(keyPem: string, x5c: string[], claims: object): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part({ alg: 'ES256', typ: 'JWT', x5c })}.${part(claims)}`;
  const sig = sign('sha256', Buffer.from(input), {
    key: createPrivateKey(keyPem),
    dsaEncoding: 'ieee-p1363',
  });
  return `${input}.${sig.toString('base64url')}`;
}
