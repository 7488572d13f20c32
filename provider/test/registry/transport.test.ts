import type { ServerResponse } from 'node:http';

import { describe, expect, it } from 'vitest';

import { parseReference } from '../../src/reference/index.ts';
import { RegistryClient, retryDelayMs, type RegistryClientOptions } from '../../src/registry/index.ts';
import {
  failureOf,
  hostileServers,
  manifestBytes,
  serveManifest,
  sha256Digest,
  type HostileServer,
} from '../helpers/hostile-server.ts';

const RETRY_BASE_DELAY_MS = 100;
const MAX_MANIFEST_BYTES = 64 * 1024;
const CALLER_DEADLINE_MS = 10_000;
const TIMING_SLACK_MS = 1000;

describe('retryDelayMs', () => {
  const now = Date.parse('Sun, 22 Nov 2026 04:00:00 GMT');

  it('reads Retry-After in seconds', () => {
    expect(retryDelayMs('3', 0, now)).toBe(3000);
    expect(retryDelayMs('0', 2, now)).toBe(0);
  });

  it('reads Retry-After as an HTTP date', () => {
    expect(retryDelayMs('Sun, 22 Nov 2026 04:00:05 GMT', 0, now)).toBe(5000);
  });

  it('retries at once when the HTTP date has passed', () => {
    expect(retryDelayMs('Sun, 22 Nov 2026 03:59:00 GMT', 0, now)).toBe(0);
  });

  it('backs off exponentially without a usable Retry-After', () => {
    expect([0, 1, 2].map((attempt) => retryDelayMs(undefined, attempt, now))).toEqual([
      RETRY_BASE_DELAY_MS,
      2 * RETRY_BASE_DELAY_MS,
      4 * RETRY_BASE_DELAY_MS,
    ]);
    expect(retryDelayMs('', 1, now)).toBe(2 * RETRY_BASE_DELAY_MS);
    expect(retryDelayMs('soon', 0, now)).toBe(RETRY_BASE_DELAY_MS);
  });

  it('waits up to ten seconds but refuses to wait longer', () => {
    expect(retryDelayMs('10', 0, now)).toBe(10_000);
    expect(retryDelayMs('11', 0, now)).toBeUndefined();
    expect(retryDelayMs('3600', 0, now)).toBeUndefined();
    expect(retryDelayMs('Sun, 22 Nov 2026 05:00:00 GMT', 0, now)).toBeUndefined();
  });
});

/** Resolves when the server side of a response is closed (finished, or hung up on by the client). */
function closed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => res.on('close', resolve));
}

describe('registry client over a hostile server', () => {
  const { hostile, onCleanup } = hostileServers();

  function clientFor(server: HostileServer, options: Partial<RegistryClientOptions> = {}): RegistryClient {
    const client = new RegistryClient({
      registries: [server.registry],
      requestTimeoutMs: 2000,
      maxRetries: 2,
      maxManifestBytes: MAX_MANIFEST_BYTES,
      ...options,
    });
    onCleanup(() => client.close());
    return client;
  }

  const deadline = (): AbortSignal => AbortSignal.timeout(CALLER_DEADLINE_MS);
  const imageOn = (server: HostileServer): ReturnType<typeof parseReference> =>
    parseReference(`${server.host}/team/app:v1`);

  describe('retries', () => {
    it('resolves after two 503s, on the third attempt', async () => {
      const manifest = manifestBytes('after 503s');
      const server = await hostile((req, res, index) => {
        if (index < 2) res.writeHead(503).end();
        else serveManifest(req, res, manifest);
      });
      const digest = await clientFor(server).resolveDigest(imageOn(server), deadline());
      expect(digest).toBe(sha256Digest(manifest));
      expect(server.requests).toHaveLength(3);
    });

    it('gives up with REGISTRY_SERVER_ERROR once the retries are spent', async () => {
      const server = await hostile((_req, res) => res.writeHead(502).end());
      const { error } = await failureOf(() => clientFor(server).resolveDigest(imageOn(server), deadline()));
      expect(error.code).toBe('REGISTRY_SERVER_ERROR');
      expect(error.transient).toBe(true);
      expect(error.message).toContain('502');
      expect(server.requests).toHaveLength(3);
    });

    it('honours a 429 asking to retry after one second', async () => {
      const manifest = manifestBytes('after 429');
      const server = await hostile((req, res, index) => {
        if (index === 0) res.writeHead(429, { 'retry-after': '1' }).end();
        else serveManifest(req, res, manifest);
      });
      const started = performance.now();
      const digest = await clientFor(server).resolveDigest(imageOn(server), deadline());
      expect(digest).toBe(sha256Digest(manifest));
      expect(performance.now() - started).toBeGreaterThanOrEqual(950);
      expect(server.requests).toHaveLength(2);
    });

    it('does not wait an hour for a 429: it reports REGISTRY_RATE_LIMITED at once', async () => {
      const server = await hostile((_req, res) => res.writeHead(429, { 'retry-after': '3600' }).end());
      const { error, elapsedMs } = await failureOf(() =>
        clientFor(server).resolveDigest(imageOn(server), deadline()),
      );
      expect(error.code).toBe('REGISTRY_RATE_LIMITED');
      expect(error.transient).toBe(true);
      expect(elapsedMs).toBeLessThan(TIMING_SLACK_MS);
      expect(server.requests).toHaveLength(1);
    });

    it("never sleeps past the caller's deadline", async () => {
      const server = await hostile((_req, res) => res.writeHead(503, { 'retry-after': '5' }).end());
      const { error, elapsedMs } = await failureOf(() =>
        clientFor(server).resolveDigest(imageOn(server), AbortSignal.timeout(300)),
      );
      expect(error.code).toBe('REGISTRY_SERVER_ERROR');
      expect(elapsedMs).toBeLessThan(300 + TIMING_SLACK_MS);
      expect(server.requests).toHaveLength(1);
    });
  });

  describe('bounded bodies', () => {
    it('refuses a 100 MB Content-Length without waiting for the body', async () => {
      let hungUp: Promise<void> | undefined;
      const server = await hostile((_req, res) => {
        hungUp = closed(res);
        res.writeHead(200, { 'content-length': 100 * 1024 * 1024 });
        res.write(Buffer.alloc(1024)); // then nothing: a client reading it all would time out
      });
      const client = clientFor(server, { requestTimeoutMs: 5000 });
      const { error, elapsedMs } = await failureOf(() =>
        client.fetchManifest(imageOn(server), 'v1', deadline()),
      );
      expect(error.code).toBe('REGISTRY_RESPONSE_TOO_LARGE');
      expect(error.message).toContain(`expected at most ${MAX_MANIFEST_BYTES} bytes`);
      expect(elapsedMs).toBeLessThan(TIMING_SLACK_MS);
      await hungUp;
    });

    it('stops reading an endless chunked body just past the limit', async () => {
      let written = 0;
      let hungUp: Promise<void> | undefined;
      const server = await hostile((_req, res) => {
        hungUp = closed(res);
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        const chunk = Buffer.alloc(16 * 1024, 0x20);
        const pump = (): void => {
          while (!res.destroyed) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
        };
        pump();
      });
      const client = clientFor(server, { requestTimeoutMs: 5000 });
      const { error, elapsedMs } = await failureOf(() =>
        client.fetchManifest(imageOn(server), 'v1', deadline()),
      );
      expect(error.code).toBe('REGISTRY_RESPONSE_TOO_LARGE');
      expect(error.message).toContain(`more than ${MAX_MANIFEST_BYTES} bytes`);
      expect(elapsedMs).toBeLessThan(TIMING_SLACK_MS);
      await hungUp;
      // More than the limit was on offer; what was written is what socket buffers absorbed, not a full read.
      expect(written).toBeGreaterThan(MAX_MANIFEST_BYTES);
      expect(written).toBeLessThan(64 * 1024 * 1024);
    });
  });

  describe('timeouts', () => {
    it('reports REGISTRY_TIMEOUT when the body stalls after the headers', async () => {
      const server = await hostile((_req, res) => {
        res.writeHead(200, { 'content-length': 1000 });
        res.write('{"schemaVersion":'); // and never the rest
      });
      const { error, elapsedMs } = await failureOf(() =>
        clientFor(server, { requestTimeoutMs: 300 }).fetchManifest(imageOn(server), 'v1', deadline()),
      );
      expect(error.code).toBe('REGISTRY_TIMEOUT');
      expect(error.transient).toBe(true);
      expect(error.message).toContain(server.host);
      expect(elapsedMs).toBeGreaterThanOrEqual(250);
      expect(elapsedMs).toBeLessThan(300 + TIMING_SLACK_MS);
    });

    it('reports REGISTRY_TIMEOUT when no headers ever come', async () => {
      const server = await hostile(() => undefined);
      const { error, elapsedMs } = await failureOf(() =>
        clientFor(server, { requestTimeoutMs: 300 }).resolveDigest(imageOn(server), deadline()),
      );
      expect(error.code).toBe('REGISTRY_TIMEOUT');
      expect(elapsedMs).toBeLessThan(300 + TIMING_SLACK_MS);
    });

    it('reports REGISTRY_UNREACHABLE when the connection is refused, without the socket error (a port-scan oracle)', async () => {
      const client = new RegistryClient({
        registries: [{ host: '127.0.0.1:1', insecure: true }],
        requestTimeoutMs: 2000,
        maxRetries: 2,
        maxManifestBytes: MAX_MANIFEST_BYTES,
      });
      onCleanup(() => client.close());
      const { error } = await failureOf(() =>
        client.resolveDigest(parseReference('127.0.0.1:1/team/app:v1'), deadline()),
      );
      expect(error.code).toBe('REGISTRY_UNREACHABLE');
      expect(error.message).toBe(
        'registry 127.0.0.1:1 could not be connected to for 127.0.0.1:1/team/app:v1',
      );
      // The detail stays server-side, in the cause.
      expect(JSON.stringify(error.cause, Object.getOwnPropertyNames(error.cause))).toContain('ECONNREFUSED');
    });
  });

  describe('content checks', () => {
    it('refuses a manifest whose bytes do not hash to the requested digest', async () => {
      const served = manifestBytes('what the registry serves');
      const requested = sha256Digest(manifestBytes('what was asked for'));
      const server = await hostile((req, res) => serveManifest(req, res, served));
      const { error } = await failureOf(() =>
        clientFor(server).fetchManifest(imageOn(server), requested, deadline()),
      );
      expect(error.code).toBe('REGISTRY_DIGEST_MISMATCH');
      expect(error.message).toContain(`expected ${requested}, found ${sha256Digest(served)}`);
      expect(server.requests[0]?.path).toBe(`/v2/team/app/manifests/${requested}`);
    });

    it('hashes the manifest itself when there is no Docker-Content-Digest', async () => {
      const manifest = manifestBytes('no digest header');
      const server = await hostile((req, res) => {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        res.end(req.method === 'HEAD' ? undefined : manifest);
      });
      const digest = await clientFor(server).resolveDigest(imageOn(server), deadline());
      expect(digest).toBe(sha256Digest(manifest));
      expect(server.requests.map((r) => r.method)).toEqual(['GET']);
    });

    it('pins a tag to the digest of the bytes served, never to a Docker-Content-Digest header alone', async () => {
      const served = manifestBytes('what the registry serves');
      const claimed = sha256Digest(manifestBytes('what the registry claims'));
      const server = await hostile((req, res) => {
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': claimed,
        });
        res.end(req.method === 'HEAD' ? undefined : served);
      });
      const { error } = await failureOf(() => clientFor(server).resolveDigest(imageOn(server), deadline()));
      expect(error.code).toBe('REGISTRY_DIGEST_MISMATCH');
      expect(error.message).toContain(`expected ${sha256Digest(served)}, found "${claimed}"`);
      expect(error.message).toContain(`${server.host}/team/app:v1`);
    });

    it('reports a referrers-tag index whose Docker-Content-Digest disagrees with its bytes as tampering, not as absent', async () => {
      const served = manifestBytes('a swapped referrers index');
      const subject = sha256Digest(manifestBytes('the image'));
      const server = await hostile((req, res) => {
        if (req.url?.includes('/referrers/') === true) return void res.writeHead(404).end();
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.index.v1+json',
          'docker-content-digest': sha256Digest('the index that was pushed'),
        });
        res.end(served);
      });
      const { error } = await failureOf(() =>
        clientFor(server).listReferrers(imageOn(server), subject, deadline()),
      );
      expect(error.code).toBe('REGISTRY_DIGEST_MISMATCH');
    });

    it('reports an unknown tag as REGISTRY_MANIFEST_UNKNOWN, not a transient failure', async () => {
      const server = await hostile((_req, res) => res.writeHead(404).end());
      const { error } = await failureOf(() => clientFor(server).resolveDigest(imageOn(server), deadline()));
      expect(error.code).toBe('REGISTRY_MANIFEST_UNKNOWN');
      expect(error.transient).toBe(false);
    });
  });

  describe('token authentication', () => {
    const TOKEN = 'token-from-the-realm';

    async function tokenRegistry(manifest: Buffer): Promise<HostileServer> {
      let realm = '';
      const server = await hostile((req, res) => {
        if (req.url?.startsWith('/token') === true) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ token: TOKEN, expires_in: 300 }));
        } else if (req.headers.authorization !== `Bearer ${TOKEN}`) {
          res.writeHead(401, {
            'www-authenticate': `Bearer realm="${realm}",service="hostile.test",scope="repository:team/app:pull"`,
          });
          res.end();
        } else {
          serveManifest(req, res, manifest);
        }
      });
      realm = `http://${server.host}/token`;
      return server;
    }

    it('fetches a bearer token from the challenge realm once and reuses it', async () => {
      const manifest = manifestBytes('behind a token');
      const server = await tokenRegistry(manifest);
      const client = clientFor(server);
      expect(await client.resolveDigest(imageOn(server), deadline())).toBe(sha256Digest(manifest));
      expect(await client.resolveDigest(imageOn(server), deadline())).toBe(sha256Digest(manifest));

      const tokenRequests = server.requests.filter((r) => r.path.startsWith('/token'));
      expect(tokenRequests).toHaveLength(1);
      const query = new URL(tokenRequests[0]?.path ?? '', 'http://x').searchParams;
      expect(query.get('service')).toBe('hostile.test');
      expect(query.get('scope')).toBe('repository:team/app:pull');
      // 401, then the retry with the token; the second lookup sends the cached token straight away.
      const manifestAuth = server.requests
        .filter((r) => r.path.startsWith('/v2/'))
        .map((r) => r.headers.authorization);
      expect(manifestAuth).toEqual([undefined, `Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
    });

    it('reports a 404 from the token realm as REGISTRY_TOKEN_FAILED (transient), never as an unknown manifest', async () => {
      let realm = '';
      const server = await hostile((req, res) => {
        if (req.url?.startsWith('/token') === true) return void res.writeHead(404).end();
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="hostile.test"` });
        res.end();
      });
      realm = `http://${server.host}/token`;
      const { error } = await failureOf(() => clientFor(server).resolveDigest(imageOn(server), deadline()));
      expect(error.code).toBe('REGISTRY_TOKEN_FAILED');
      expect(error.transient).toBe(true);
      expect(error.message).toContain(`the token server ${server.host} for ${server.host} answered 404`);
      expect(error.message).toContain(`${server.host}/team/app:v1`);
    });

    it('reports REGISTRY_UNAUTHORIZED for a basic challenge when no credentials are configured', async () => {
      const server = await hostile((_req, res) => {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="Registry Realm"' }).end();
      });
      const { error } = await failureOf(() => clientFor(server).resolveDigest(imageOn(server), deadline()));
      expect(error.code).toBe('REGISTRY_UNAUTHORIZED');
      expect(error.message).toContain(`refused access to ${server.host}/team/app:v1`);
      expect(server.requests).toHaveLength(1);
    });
  });
});
