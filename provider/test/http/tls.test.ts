/**
 * Serving TLS on a real listening server: which cipher suites are offered, who must present a client
 * certificate for which route, where the development certificate may be served, and the expiry gauge
 * following the certificates served. Certificates
 * come from the real openssl CLI (test/harness/pki.ts).
 */
import { X509Certificate } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { connect, type ConnectionOptions } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { issueCert, issueCertWith, makeCa, type CertFiles } from '../../../test/harness/pki.ts';
import { makeTempDir } from '../../../test/harness/process.ts';
import { TokenReviewer } from '../../src/auth/index.ts';
import { startServer, type RunningServer } from '../../src/http/index.ts';
import { createLogger, Metrics } from '../../src/observability/index.ts';
import { Runtime } from '../../src/service/index.ts';
import { ProvenantError } from '../../src/types/errors.ts';
import { sha256Digest } from '../helpers/hostile-server.ts';
import { configFromYaml, STATIC_ALLOW_DENY } from '../helpers/runtime.ts';

// Digest-only: a key with a tag and a digest is resolved at the registry, which these tests have none of.
const ALLOWED = `registry.test/allowed/app@${sha256Digest('allowed')}`;

let dir: string;
let ca: CertFiles;
let otherCa: CertFiles;
let serverCert: CertFiles;
let client: CertFiles;
let foreignClient: CertFiles;

beforeAll(async () => {
  dir = await makeTempDir('http-tls');
  ca = await makeCa(dir, 'ca');
  otherCa = await makeCa(dir, 'other-ca');
  serverCert = await issueCert(dir, ca, 'server', 'server');
  client = await issueCert(dir, ca, 'gatekeeper', 'client');
  foreignClient = await issueCert(dir, otherCa, 'intruder', 'client');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const running: { server: RunningServer; runtime: Runtime }[] = [];
afterEach(async () => {
  for (const { server, runtime } of running.splice(0)) {
    await server.close();
    await runtime.close();
  }
});

async function start(
  serverYaml: string,
  tokenReviewer?: TokenReviewer,
): Promise<{ url: string; port: number; metrics: Metrics }> {
  const config = configFromYaml(`${STATIC_ALLOW_DENY}policy:
  - pattern: "registry.test/allowed/*"
    validator: allow
server:
  port: 0
${serverYaml}`);
  const metrics = new Metrics(false);
  const runtime = new Runtime(config, 'test config', { metrics });
  const server = await startServer({
    runtime,
    metrics,
    logger: createLogger('silent'),
    server: config.server,
    tokenReviewer,
  });
  running.push({ server, runtime });
  return { url: server.url, port: Number(new URL(server.url).port), metrics };
}

const fileTls = (extra = ''): string =>
  `  host: 127.0.0.1\n  tls: { cert: ${serverCert.cert}, key: ${serverCert.key}${extra} }\n`;

/** Completes a TLS handshake and resolves with the negotiated cipher, or rejects. */
function handshake(port: number, opts: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => {
      resolve(socket.getCipher().name);
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** provenant_tls_certificate_expiry_timestamp_seconds, by its `certificate` label. */
async function expiries(metrics: Metrics): Promise<Record<string, number>> {
  const { values } = await metrics.tlsCertificateExpiry.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.certificate), v.value]));
}

const notAfterSeconds = (pem: string): number => Date.parse(new X509Certificate(pem).validTo) / 1000;

describe('serving TLS', () => {
  describe('certificate expiry (provenant_tls_certificate_expiry_timestamp_seconds)', () => {
    it('reports when the serving certificate and the client CA expire', async () => {
      const { metrics } = await start(fileTls(`, clientCA: ${ca.cert}`));
      expect(await expiries(metrics)).toEqual({
        serving: notAfterSeconds(serverCert.certPem),
        client_ca: notAfterSeconds(ca.certPem),
      });
    });

    it('starts with nothing refused: the warm-up requests it answers in process before listening need no credentials', async () => {
      const { metrics } = await start(fileTls(`, clientCA: ${ca.cert}`));
      const refused = await metrics.registry.getSingleMetricAsString('provenant_auth_refusals_total');
      expect(refused).toContain('# TYPE provenant_auth_refusals_total counter');
      expect(refused).not.toMatch(/^provenant_auth_refusals_total\{/m);
    });

    it('reports the earliest expiry of a chain: the leaf and an intermediate that expires sooner', async () => {
      const leaf = await issueCertWith(dir, ca, 'long-leaf', {
        subject: '/CN=long-leaf',
        extensions: 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
        days: 30,
      });
      const chain = `${dir}/long-leaf-chain.crt`;
      await writeFile(chain, `${leaf.certPem}${ca.certPem}`);
      const { metrics } = await start(`  host: 127.0.0.1\n  tls: { cert: ${chain}, key: ${leaf.key} }\n`);
      expect(notAfterSeconds(ca.certPem)).toBeLessThan(notAfterSeconds(leaf.certPem));
      expect(await expiries(metrics)).toEqual({ serving: notAfterSeconds(ca.certPem) });
    });

    it('follows the serving certificate when it rotates', async () => {
      const first = await issueCert(dir, ca, 'rotating', 'server');
      const { metrics } = await start(
        `  host: 127.0.0.1\n  tls: { cert: ${first.cert}, key: ${first.key} }\n`,
      );
      expect(await expiries(metrics)).toEqual({ serving: notAfterSeconds(first.certPem) });
      const next = await issueCertWith(dir, ca, 'rotating-next', {
        subject: '/CN=rotating-next',
        extensions: 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
        days: 9,
      });
      await writeFile(first.key, next.keyPem);
      await writeFile(first.cert, next.certPem);
      // The files are polled every CERT_POLL_INTERVAL_MS; a loaded machine may take several rounds.
      await expect
        .poll(() => expiries(metrics), { timeout: 20_000, interval: 200 })
        .toEqual({ serving: notAfterSeconds(next.certPem) });
    });

    it('refuses to start with a certificate file that holds no certificate, as CONFIG_INVALID', async () => {
      const empty = `${dir}/not-a-certificate.crt`;
      await writeFile(empty, 'not a certificate\n');
      await expect(
        start(`  host: 127.0.0.1\n  tls: { cert: ${empty}, key: ${serverCert.key} }\n`),
      ).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining(`expected ${empty} to hold PEM certificates`) as unknown,
      });
    });

    it('reports the development certificate, valid for 30 days', async () => {
      const { metrics } = await start('  host: 127.0.0.1\n');
      const { serving } = await expiries(metrics);
      const days = ((serving ?? 0) - Date.now() / 1000) / 86400;
      expect(days).toBeGreaterThan(29);
      expect(days).toBeLessThanOrEqual(30);
    });
  });

  describe('cipher suites (server.tls.ciphers)', () => {
    const tls12 = (ciphers: string): ConnectionOptions => ({ maxVersion: 'TLSv1.2', ciphers });

    it('refuses a TLS 1.2 client offering only CBC-SHA1 with ECDHE, and accepts ECDHE with AES-GCM', async () => {
      const { port } = await start(fileTls());
      await expect(handshake(port, tls12('ECDHE-ECDSA-AES128-SHA'))).rejects.toThrow();
      expect(await handshake(port, tls12('ECDHE-ECDSA-AES128-GCM-SHA256'))).toBe(
        'ECDHE-ECDSA-AES128-GCM-SHA256',
      );
      expect(await handshake(port, tls12('ECDHE-ECDSA-CHACHA20-POLY1305'))).toBe(
        'ECDHE-ECDSA-CHACHA20-POLY1305',
      );
    });

    it('refuses static-RSA key exchange on the RSA development certificate, and accepts ECDHE-RSA with AES-GCM', async () => {
      const { port } = await start('  host: 127.0.0.1\n');
      await expect(handshake(port, tls12('AES128-SHA'))).rejects.toThrow();
      await expect(handshake(port, tls12('AES128-GCM-SHA256'))).rejects.toThrow();
      await expect(handshake(port, tls12('ECDHE-RSA-AES128-SHA'))).rejects.toThrow();
      expect(await handshake(port, tls12('ECDHE-RSA-AES128-GCM-SHA256'))).toBe('ECDHE-RSA-AES128-GCM-SHA256');
    });

    it('speaks TLS 1.3 with its AEAD suites', async () => {
      const { port } = await start(fileTls());
      expect(await handshake(port, { minVersion: 'TLSv1.3' })).toMatch(
        /^TLS_(AES_\d+_GCM|CHACHA20_POLY1305)_SHA\d+$/,
      );
    });

    it('offers exactly the suites server.tls.ciphers names', async () => {
      const { port } = await start(fileTls(', ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384"'));
      await expect(handshake(port, tls12('ECDHE-ECDSA-AES128-GCM-SHA256'))).rejects.toThrow();
      expect(await handshake(port, tls12('ECDHE-ECDSA-AES256-GCM-SHA384'))).toBe(
        'ECDHE-ECDSA-AES256-GCM-SHA384',
      );
    });

    it('refuses to start with a cipher list that names no cipher, as CONFIG_INVALID', async () => {
      const failure = start(fileTls(', ciphers: "NOT-A-CIPHER"'));
      await expect(failure).rejects.toBeInstanceOf(ProvenantError);
      await expect(failure).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/expected server\.tls\.ciphers .*found "NOT-A-CIPHER"/) as unknown,
      });
    });
  });

  describe('client certificates (server.tls.clientCA)', () => {
    let url: string;
    const agents: Agent[] = [];
    const agent = (who?: CertFiles): Agent => {
      const a = new Agent({
        connect: { ca: ca.certPem, ...(who === undefined ? {} : { cert: who.certPem, key: who.keyPem }) },
      });
      agents.push(a);
      return a;
    };
    afterEach(async () => {
      for (const a of agents.splice(0)) await a.close();
    });

    // One server for this block, closed after it (the file's afterEach closes per-test servers).
    let own: { server: RunningServer; runtime: Runtime } | undefined;
    beforeAll(async () => {
      url = (await start(fileTls(`, clientCA: ${ca.cert}, minVersion: TLSv1.3`))).url;
      own = running.pop();
    });
    afterAll(async () => {
      await own?.server.close();
      await own?.runtime.close();
    });

    const verify = async (
      dispatcher: Agent,
    ): Promise<{ status: number; systemError: string; items: unknown[] }> => {
      const res = await request(`${url}/v1/verify`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ request: { keys: [ALLOWED] } }),
      });
      const body = (await res.body.json()) as { response: { systemError: string; items: unknown[] } };
      return { status: res.statusCode, ...body.response };
    };

    it.each(['/healthz', '/readyz', '/metrics'])(
      'answers %s to a client with no certificate (kubelet, Prometheus)',
      async (path) => {
        const res = await request(`${url}${path}`, { dispatcher: agent() });
        await res.body.text();
        expect(res.statusCode).toBe(200);
      },
    );

    it('refuses /v1/verify to a client with no certificate with a 403 naming REQUEST_CLIENT_CERTIFICATE_REQUIRED', async () => {
      const answer = await verify(agent());
      expect(answer.status).toBe(403);
      expect(answer.items).toEqual([]);
      expect(answer.systemError).toMatch(
        /^REQUEST_CLIENT_CERTIFICATE_REQUIRED: expected a client certificate signed by server\.tls\.clientCA for POST \/v1\/verify, found no certificate$/,
      );
    });

    it('refuses /v1/verify to a client whose certificate another CA signed', async () => {
      const answer = await verify(agent(foreignClient));
      expect(answer.status).toBe(403);
      expect(answer.systemError).toMatch(
        /^REQUEST_CLIENT_CERTIFICATE_REQUIRED: .*found a certificate that does not verify \(/,
      );
    });

    it('refuses an unknown route to a client with no certificate, rather than saying what exists', async () => {
      const res = await request(`${url}/v1/other`, { dispatcher: agent() });
      expect(res.statusCode).toBe(403);
      expect(await res.body.text()).toContain('REQUEST_CLIENT_CERTIFICATE_REQUIRED');
    });

    /** Posts to /v1/verify over a raw TLS connection; resolves with the status and whether TLS resumed. */
    function rawVerify(
      opts: ConnectionOptions,
    ): Promise<{ status: number; resumed: boolean; session: Buffer | undefined }> {
      const { port } = new URL(url);
      return new Promise((resolve, reject) => {
        let session: Buffer | undefined;
        let received = '';
        let resumed = false;
        const socket = connect({ host: '127.0.0.1', port: Number(port), ca: ca.certPem, ...opts }, () => {
          resumed = socket.isSessionReused();
          const body = JSON.stringify({ request: { keys: [ALLOWED] } });
          socket.write(
            `POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
          );
        });
        socket.on('session', (s: Buffer) => (session = s));
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => (received += d));
        socket.once('error', reject);
        socket.once('close', () => resolve({ status: Number(received.slice(9, 12)), resumed, session }));
      });
    }

    it('refuses /v1/verify to a client with no certificate that resumes a TLS session', async () => {
      const first = await rawVerify({});
      expect(first).toMatchObject({ status: 403, resumed: false, session: expect.any(Buffer) as unknown });
      // node reports such a resumed session as authorized; the provider must not take that for a certificate.
      expect(await rawVerify({ session: first.session })).toMatchObject({ status: 403, resumed: true });
    });

    it('answers /v1/verify to a trusted client that resumes its TLS session', async () => {
      const withCert = { cert: client.certPem, key: client.keyPem };
      const first = await rawVerify(withCert);
      expect(first).toMatchObject({ status: 200, resumed: false, session: expect.any(Buffer) as unknown });
      expect(await rawVerify({ ...withCert, session: first.session })).toMatchObject({
        status: 200,
        resumed: true,
      });
    });

    it('answers /v1/verify to a client whose certificate the client CA signed', async () => {
      const answer = await verify(agent(client));
      expect(answer.status).toBe(200);
      expect(answer.systemError).toBe('');
      expect(answer.items).toEqual([expect.objectContaining({ key: ALLOWED, error: '' })]);
    });
  });

  describe('client certificates and Kyverno tokens together', () => {
    const KYVERNO = 'system:serviceaccount:kyverno:kyverno-admission-controller';
    const reviewer = new TokenReviewer(
      { enabled: true, audience: 'provenant', serviceAccounts: [KYVERNO], reviewCacheSeconds: 10 },
      (token, audience) =>
        Promise.resolve({
          authenticated: token === 'kyverno-token',
          username: KYVERNO,
          audiences: [audience],
          error: undefined,
        }),
    );
    const verify = async (who: CertFiles | undefined, token?: string): Promise<number> => {
      const { url } = await start(
        fileTls(`, clientCA: ${ca.cert}`) + '  auth: { kyverno: { enabled: true, audience: provenant } }\n',
        reviewer,
      );
      const dispatcher = new Agent({
        connect: { ca: ca.certPem, ...(who === undefined ? {} : { cert: who.certPem, key: who.keyPem }) },
      });
      try {
        const res = await request(`${url}/v1/verify`, {
          method: 'POST',
          dispatcher,
          headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
          body: JSON.stringify({ request: { keys: [ALLOWED] } }),
        });
        await res.body.text();
        return res.statusCode;
      } finally {
        await dispatcher.close();
      }
    };

    it("answers Gatekeeper's client certificate", async () => {
      expect(await verify(client)).toBe(200);
    });

    it('answers a client with no certificate that carries an accepted token: TLS asks for a certificate, never requires one', async () => {
      expect(await verify(undefined, 'kyverno-token')).toBe(200);
    });

    it('refuses a client with neither, and one with a foreign certificate and no token', async () => {
      expect(await verify(undefined)).toBe(401);
      expect(await verify(foreignClient)).toBe(401);
      expect(await verify(undefined, 'stolen')).toBe(401);
    });
  });

  describe('the development certificate (no server.tls)', () => {
    it.each(['0.0.0.0', '::', '10.1.2.3'])(
      'refuses to listen on %s with it, naming CONFIG_TLS_REQUIRED',
      async (host) => {
        const failure = start(`  host: "${host}"\n`);
        await expect(failure).rejects.toMatchObject({
          code: 'CONFIG_TLS_REQUIRED',
          message: expect.stringContaining(
            `expected server.tls (cert and key files) to listen on ${host}, found none`,
          ) as unknown,
        });
      },
    );

    it.each(['127.0.0.1', '::1', 'localhost'])('serves it on loopback (%s)', async (host) => {
      const { url } = await start(`  host: "${host}"\n`);
      expect(url).toMatch(/^https:\/\//);
    });

    it('serves it beyond loopback when server.allowDevCertificate says so', async () => {
      const { port } = await start('  host: 0.0.0.0\n  allowDevCertificate: true\n');
      expect(await handshake(port, {})).toMatch(/^TLS_/);
    });
  });
});
