/**
 * distribution's own token server (`contrib/token-server`, built by test/tools/install.sh) on loopback
 * with TLS: the real "Docker Registry v2 Bearer token" flow. It authenticates users from an htpasswd
 * file and grants each user the repositories under its own name (`alice` gets `alice/*`).
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { issueCert, type CertFiles } from './pki.ts';
import { LOOPBACK_HOST, freePort, makeTempDir, startProcess } from './process.ts';
import { bcryptHtpasswdLine, type BasicCredentials, type TokenAuth } from './registry.ts';
import { toolPath } from './tools.ts';

const run = promisify(execFile);

export interface TokenServer {
  /** What a registry needs to accept this server's tokens. */
  readonly auth: TokenAuth;
  output(): string;
  stop(): Promise<void>;
}

/** Starts the token server with a server certificate from `ca` and the given users. */
export async function startTokenServer(ca: CertFiles, users: BasicCredentials[]): Promise<TokenServer> {
  const dir = await makeTempDir('token-server');
  try {
    const port = await freePort();
    const tls = await issueCert(dir, ca, 'token-server', 'server');
    // libtrust reads SEC1 "EC PRIVATE KEY" PEM; the registry trusts the key through a certificate for it.
    const key = path.join(dir, 'signing.key');
    const cert = path.join(dir, 'signing.crt');
    await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    await run('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-subj',
      '/CN=token-issuer',
      '-days',
      '2',
      '-out',
      cert,
    ]);
    const passwd = path.join(dir, 'htpasswd');
    await writeFile(passwd, (await Promise.all(users.map(bcryptHtpasswdLine))).join(''));
    const issuer = 'provenant-test-issuer';
    const server = await startProcess({
      name: 'token-server',
      command: toolPath('token-server'),
      args: [
        '-addr',
        `${LOOPBACK_HOST}:${port}`,
        '-issuer',
        issuer,
        '-key',
        key,
        '-passwd',
        passwd,
        '-realm',
        'provenant-test',
        '-tlscert',
        tls.cert,
        '-tlskey',
        tls.key,
      ],
      ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
      ownedDirs: [dir],
    });
    return {
      auth: {
        realm: `https://${LOOPBACK_HOST}:${port}/token/`,
        service: 'provenant-test-registry',
        issuer,
        rootCertBundle: await readFile(cert, 'utf8'),
      },
      output: () => server.output(),
      stop: () => server.stop(),
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
