/**
 * The foundation end to end: the real `provenant` process over HTTPS, a real docker-registry on
 * loopback, images pushed by the test, digests cross-checked with the real crane.
 */
import { X509Certificate } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  manifestBytes,
  serveManifest,
  sha256Digest,
  startHostileServer,
  type HostileServer,
} from '../../../provider/test/helpers/hostile-server.ts';
import { craneDigest, pushRandomImage } from '../../harness/images.ts';
import { issueCert, makeCa, type CertFiles } from '../../harness/pki.ts';
import { canConnect, makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

interface ProviderReply {
  status: number;
  body: {
    response: {
      items: { key: string; value: unknown; error: string }[];
      systemError: string;
      idempotent: boolean;
    };
  };
}

async function post(
  url: string,
  dispatcher: Agent,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<ProviderReply> {
  const res = await request(url, { method: 'POST', dispatcher, body: JSON.stringify(body), headers });
  return { status: res.statusCode, body: (await res.body.json()) as ProviderReply['body'] };
}

function providerRequest(keys: string[]): object {
  return { apiVersion: 'externaldata.gatekeeper.sh/v1beta1', kind: 'ProviderRequest', request: { keys } };
}

describe('npm start on the embedded default config', () => {
  let registry: RegistryServer;
  let provenant: RunningProvenant;
  let dispatcher: Agent;

  beforeAll(async () => {
    registry = await startDistributionRegistry();
    provenant = await startProvenant(['npm', 'start', '--silent', '--', '--port', '0']);
    dispatcher = devCertAgent(provenant);
  });
  afterAll(async () => {
    await dispatcher?.close();
    await provenant?.stop();
    await registry?.stop();
  });

  it('prints where it listens and which config it runs', () => {
    expect(provenant.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(provenant.output()).toContain('config: embedded default config');
  });

  it('answers GET /healthz over HTTPS with a certificate the client can verify', async () => {
    const res = await request(`${provenant.url}/healthz`, { dispatcher });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ status: 'ok' });
  });

  it('pins an image of a loopback registry to the digest the registry serves', async () => {
    const image = await pushRandomImage(registry.url, 'team/app', 'v1');
    const key = `${registry.host}/team/app:v1`;
    const reply = await post(`${provenant.url}/v1/mutate`, dispatcher, providerRequest([key]));
    expect(reply.status).toBe(200);
    expect(reply.body.response).toEqual({
      idempotent: true,
      systemError: '',
      items: [{ key, value: `${key}@${image.digest}`, error: '' }],
    });
    expect(await craneDigest(key, { insecure: true })).toBe(image.digest);
  });

  it('denies an image from anywhere else, naming the image and the rule', async () => {
    const reply = await post(`${provenant.url}/v1/verify`, dispatcher, providerRequest(['nginx:1.27']));
    expect(reply.body.response.items[0]?.error).toMatch(
      /^POLICY_STATIC_DENY: static deny for image nginx:1\.27 using rule "\*:\*"/,
    );
  });
});

describe('provenant serve with a config file, TLS from files and client certificates', () => {
  let dir: string;
  let registry: RegistryServer;
  let provenant: RunningProvenant;
  let ca: CertFiles;
  let client: CertFiles;
  let configPath: string;
  const credentials = { username: 'ci', password: 's3cret-pass' };

  const mtls = (): Agent =>
    new Agent({ connect: { ca: ca.certPem, cert: client.certPem, key: client.keyPem } });

  function configYaml(extraRules = ''): string {
    return `
validators:
  - name: default
    type: static
    approve: false
  - name: allow
    type: static
    approve: true
policy:
  - pattern: "${registry.host}/allowed/*"
    validator: allow
  - pattern: "${registry.host}/denied/*"${extraRules}
server:
  host: 127.0.0.1
  port: 0
  tls: { cert: server.crt, key: server.key, clientCA: ca.crt, minVersion: TLSv1.3 }
registries:
  - host: "${registry.host}"
    insecure: true
    auth: { username: ${credentials.username}, password: ${credentials.password} }
`;
  }

  beforeAll(async () => {
    dir = await makeTempDir('serve-config');
    registry = await startDistributionRegistry({ htpasswd: credentials });
    ca = await makeCa(dir, 'ca');
    await issueCert(dir, ca, 'server', 'server');
    client = await issueCert(dir, ca, 'gatekeeper', 'client');
    configPath = path.join(dir, 'provenant.yaml');
    await writeFile(configPath, configYaml());
    provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
  });
  afterAll(async () => {
    // SIGTERM is a graceful shutdown: in-flight requests finish and the process exits 0. Everything is
    // stopped before the assertion, so a failing exit code never leaks the registry process.
    const exitCode = await provenant?.stop();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    expect(exitCode).toBe(0);
  });

  it('answers probes to a client without a certificate, and refuses it /v1/verify with a coded 403', async () => {
    const anonymous = new Agent({ connect: { ca: ca.certPem } });
    const health = await request(`${provenant.url}/healthz`, { dispatcher: anonymous });
    expect(health.statusCode).toBe(200);
    await health.body.dump();
    const reply = await post(
      `${provenant.url}/v1/verify`,
      anonymous,
      providerRequest([`${registry.host}/denied/app:probe`]),
      {
        'content-type': 'application/json',
      },
    );
    await anonymous.close();
    expect(reply.status).toBe(403);
    expect(reply.body.response.items).toEqual([]);
    expect(reply.body.response.systemError).toMatch(/^REQUEST_CLIENT_CERTIFICATE_REQUIRED: /);
  });

  it('speaks TLS 1.3 and refuses TLS 1.2 when minVersion is TLSv1.3', async () => {
    const { port } = new URL(provenant.url);
    const negotiate = (maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(
          {
            host: '127.0.0.1',
            port: Number(port),
            ca: ca.certPem,
            cert: client.certPem,
            key: client.keyPem,
            maxVersion,
          },
          () => {
            resolve(socket.getProtocol() ?? '');
            socket.end();
          },
        );
        socket.once('error', reject);
      });
    expect(await negotiate('TLSv1.3')).toBe('TLSv1.3');
    await expect(negotiate('TLSv1.2')).rejects.toThrow();
  });

  it('pins an image from a registry that requires basic auth, and denies one a static rule denies', async () => {
    const image = await pushRandomImage(registry.url, 'allowed/app', '1.0', { auth: credentials });
    const allowed = `${registry.host}/allowed/app:1.0`;
    const denied = `${registry.host}/denied/app:1.0`;
    const dispatcher = mtls();
    const reply = await post(
      `${provenant.url}/v1/verify`,
      dispatcher,
      providerRequest([allowed, denied]),
      {},
    );
    await dispatcher.close();
    const [ok, no] = reply.body.response.items;
    expect(ok).toEqual({
      key: allowed,
      error: '',
      value: {
        image: `${allowed}@${image.digest}`,
        digest: image.digest,
        validator: 'allow',
        signers: [],
        rule: `${registry.host}/allowed/*`,
      },
    });
    expect(no?.error).toContain(
      `POLICY_STATIC_DENY: static deny for image ${denied} using rule "${registry.host}/denied/*"`,
    );
  });

  it('serves a rotated certificate to new connections without a restart', async () => {
    const { port } = new URL(provenant.url);
    const fingerprint = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(
          { host: '127.0.0.1', port: Number(port), ca: ca.certPem, cert: client.certPem, key: client.keyPem },
          () => {
            resolve(socket.getPeerCertificate().fingerprint256);
            socket.end();
          },
        );
        socket.once('error', reject);
      });
    const before = await fingerprint();
    const rotated = await issueCert(dir, ca, 'server-rotated', 'server');
    await writeFile(path.join(dir, 'server.key'), rotated.keyPem);
    await writeFile(path.join(dir, 'server.crt'), rotated.certPem);
    await expect.poll(fingerprint, { timeout: 10_000, interval: 250 }).not.toBe(before);
    expect(await fingerprint()).toBe(new X509Certificate(rotated.certPem).fingerprint256);
  });

  it('reloads a changed config without a restart, and keeps the last good one when the new one is broken', async () => {
    await writeFile(configPath, configYaml('\n    validator: allow'));
    const key = `${registry.host}/denied/app@sha256:${'a'.repeat(64)}`;
    const verdict = async (): Promise<string> => {
      const dispatcher = mtls();
      const reply = await post(`${provenant.url}/v1/mutate`, dispatcher, providerRequest([key]));
      await dispatcher.close();
      return reply.body.response.items[0]?.error || String(reply.body.response.items[0]?.value);
    };
    await expect.poll(verdict, { timeout: 10_000, interval: 250 }).toBe(key);
    await writeFile(configPath, 'validators: [}');
    await expect
      .poll(() => provenant.output(), { timeout: 10_000 })
      .toContain('config reload refused, keeping the last good config');
    expect(await verdict()).toBe(key);
  });
});

describe('provenant serve shutting down on SIGTERM (server.drainSeconds)', () => {
  const DRAIN_SECONDS = 3;
  /** After the drain: answering the requests in flight, closing the registry client, exiting. */
  const EXIT_GRACE_MS = 5000;
  const MANIFEST = manifestBytes('drain');
  let dir: string;
  let registry: HostileServer;
  let provenant: RunningProvenant;
  let releaseRegistry: () => void;
  const registryReleased = new Promise<void>((resolve) => (releaseRegistry = resolve));

  beforeAll(async () => {
    // A registry that holds every answer until the test releases it: verifications stay in flight.
    registry = await startHostileServer((req, res) => {
      void registryReleased.then(() => serveManifest(req, res, MANIFEST));
    });
    dir = await makeTempDir('serve-drain');
    const configPath = path.join(dir, 'provenant.yaml');
    await writeFile(
      configPath,
      `
validators:
  - { name: allow, type: static, approve: true }
policy:
  - { pattern: "${registry.host}/*", validator: allow }
registries:
  - { host: "${registry.host}", insecure: true }
network: { requestTimeoutMs: 15000, maxRetries: 0 }
server: { host: 127.0.0.1, port: 0, drainSeconds: ${DRAIN_SECONDS}, requestDeadlineMs: 15000 }
`,
    );
    provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
  });
  afterAll(async () => {
    releaseRegistry();
    await provenant?.stop();
    await registry?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('reports not-ready at once, answers in-flight and arriving requests, then exits 0', async () => {
    const dispatcher = devCertAgent(provenant);
    const { port } = new URL(provenant.url);
    const mutate = (key: string): Promise<ProviderReply> =>
      post(`${provenant.url}/v1/mutate`, dispatcher, providerRequest([key]));
    const registryAsked = (repo: string): boolean => registry.requests.some((r) => r.path.includes(repo));
    const readyz = async (): Promise<number> => {
      const res = await request(`${provenant.url}/readyz`, { dispatcher });
      await res.body.dump();
      return res.statusCode;
    };

    expect(await readyz()).toBe(200);
    const inFlight = mutate(`${registry.host}/team/before:v1`);
    await expect.poll(() => registryAsked('team/before'), { timeout: 10_000 }).toBe(true);

    const signalledAt = performance.now();
    const exited = provenant.stop({
      signal: 'SIGTERM',
      killAfterMs: DRAIN_SECONDS * 1000 + 2 * EXIT_GRACE_MS,
    });
    await expect.poll(readyz, { timeout: 2000, interval: 50 }).toBe(503);
    const arriving = mutate(`${registry.host}/team/during:v1`);
    await expect.poll(() => registryAsked('team/during'), { timeout: 2000 }).toBe(true);
    // The listener closes once the drain is over; both requests are still in flight then.
    await expect
      .poll(() => canConnect('127.0.0.1', Number(port)), {
        timeout: DRAIN_SECONDS * 1000 + 2000,
        interval: 100,
      })
      .toBe(false);
    expect(performance.now() - signalledAt).toBeGreaterThanOrEqual(DRAIN_SECONDS * 1000 - 100);
    releaseRegistry();

    const digest = sha256Digest(MANIFEST);
    for (const [reply, key] of [
      [await inFlight, `${registry.host}/team/before:v1`],
      [await arriving, `${registry.host}/team/during:v1`],
    ] as const) {
      expect(reply.status).toBe(200);
      expect(reply.body.response).toEqual({
        idempotent: true,
        systemError: '',
        items: [{ key, value: `${key}@${digest}`, error: '' }],
      });
    }
    expect(await exited).toBe(0);
    expect(performance.now() - signalledAt).toBeLessThan(DRAIN_SECONDS * 1000 + EXIT_GRACE_MS);
    expect(provenant.output()).toContain(`not ready, still answering for ${DRAIN_SECONDS} s`);
    await dispatcher.close();
  });
});
