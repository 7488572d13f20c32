/**
 * An RFC 3161 timestamp authority on loopback: the real `openssl ts -reply` answering each query,
 * behind a small HTTP wrapper (RFC 3161 §3.4: POST `application/timestamp-query`, answered with
 * `application/timestamp-reply`). Its signing certificate (EKU timeStamping, critical) is issued by a
 * TSA root made with openssl; the root is what a verifier trusts (Connaisseur's `tsCert`).
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeCa } from './pki.ts';
import { LOOPBACK_HOST } from './process.ts';

const run = promisify(execFile);
/** Queries carry one hash and a nonce: a few hundred bytes. */
const MAX_QUERY_BYTES = 16 * 1024;

export interface TimestampAuthority {
  readonly url: string;
  /** The TSA root certificate (PEM): `--timestamp-root-cert`, Connaisseur's `tsCert`. */
  readonly rootPem: string;
  readonly rootFile: string;
  stop(): Promise<void>;
}

const TS_CONFIG = `[tsa]
default_tsa = tsa
[tsa]
serial = ./tsaserial
crypto_device = builtin
signer_cert = ./tsa.crt
certs = ./root.crt
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`;

export async function startTimestampAuthority(dir: string): Promise<TimestampAuthority> {
  const tsa = path.join(dir, 'tsa');
  await mkdir(tsa, { recursive: true });
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: tsa });
  await writeFile(path.join(tsa, 'ts.cnf'), TS_CONFIG);
  await writeFile(path.join(tsa, 'tsaserial'), '01\n');
  await writeFile(
    path.join(tsa, 'ext.cnf'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n',
  );
  await makeCa(tsa, 'root', { subject: '/CN=test TSA root', key: 'rsa2048' });
  await openssl(
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'tsa.key',
    '-out',
    'tsa.csr',
    '-subj',
    '/CN=test TSA',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    'tsa.csr',
    '-CA',
    'root.crt',
    '-CAkey',
    'root.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'tsa.crt',
  );
  let queries = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_QUERY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const n = ++queries;
      const query = path.join(tsa, `q${n}.tsq`);
      const reply = path.join(tsa, `r${n}.tsr`);
      writeFile(query, Buffer.concat(chunks))
        .then(() =>
          openssl(
            'ts',
            '-reply',
            '-config',
            'ts.cnf',
            '-queryfile',
            query,
            '-chain',
            'root.crt',
            '-out',
            reply,
          ),
        )
        .then(() => readFile(reply))
        .then((body) => {
          res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(body);
        })
        .catch(() => res.writeHead(500).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK_HOST, resolve));
  const { port } = server.address() as AddressInfo;
  const rootFile = path.join(tsa, 'root.crt');
  return {
    url: `http://${LOOPBACK_HOST}:${port}`,
    rootPem: await readFile(rootFile, 'utf8'),
    rootFile,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
