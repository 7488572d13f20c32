/**
 * Faults no honest registry produces, from a hand-built server: redirect loops and chains, storage
 * redirects that must not receive credentials, blobs that lie about their digest, bodies that trickle.
 */
import { describe, expect, it } from 'vitest';
import { parseReference } from '../../src/reference/index.ts';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/index.ts';
import type { RegistryConfig } from '../../src/config/index.ts';
import { failureOf, hostileServers, sha256Digest, type HostileServer } from '../helpers/hostile-server.ts';

const SLACK_MS = 1000;

describe('registry client against lying registries', () => {
  const { hostile, onCleanup } = hostileServers();

  function client(
    registries: RegistryConfig[],
    options: Partial<RegistryClientOptions> = {},
  ): RegistryClient {
    const c = new RegistryClient({
      registries,
      requestTimeoutMs: 2000,
      maxRetries: 0,
      maxManifestBytes: 64 * 1024,
      maxBlobBytes: 64 * 1024,
      ...options,
    });
    onCleanup(() => c.close());
    return c;
  }

  const deadline = (): AbortSignal => AbortSignal.timeout(10_000);
  /** Asks `server` for the test blob, expecting a coded failure. */
  const blobFailure = (server: HostileServer): ReturnType<typeof failureOf> =>
    failureOf(() =>
      client([server.registry]).fetchBlob(
        parseReference(`${server.host}/team/app:v1`),
        { digest: blobDigest },
        deadline(),
      ),
    );
  const blob = Buffer.from('{"critical":{"type":"cosign container image signature"}}');
  const blobDigest = sha256Digest(blob);

  it('refuses a redirect loop with REGISTRY_TOO_MANY_REDIRECTS, at once', async () => {
    const server = await hostile((req, res) => {
      res.writeHead(307, { location: req.url?.endsWith('/a') === true ? '/b' : '/a' });
      res.end();
    });
    const { error, elapsedMs } = await blobFailure(server);
    expect(error.code).toBe('REGISTRY_TOO_MANY_REDIRECTS');
    expect(error.message).toContain('in a loop');
    expect(error.message).toContain(`${server.host}/team/app:v1`);
    expect(elapsedMs).toBeLessThan(SLACK_MS);
    expect(server.requests.length).toBeLessThanOrEqual(4);
  });

  it('follows at most five redirects', async () => {
    const server = await hostile((_req, res, i) => {
      res.writeHead(302, { location: `/hop/${i + 1}` });
      res.end();
    });
    const { error } = await blobFailure(server);
    expect(error.code).toBe('REGISTRY_TOO_MANY_REDIRECTS');
    expect(error.message).toContain('expected at most 5 redirects, found 6');
    expect(server.requests).toHaveLength(6);
  });

  it('follows a blob redirect to storage without sending it the registry credentials', async () => {
    const storage = await hostile((_req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      res.end(blob);
    });
    const registry = await hostile((req, res) => {
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
        return void res.end();
      }
      res.writeHead(307, { location: `http://${storage.host}/bucket/blob?signature=abc` });
      res.end();
    });
    const c = client([{ ...registry.registry, auth: { username: 'u', password: 'p' } }, storage.registry]);
    const got = await c.fetchBlob(
      parseReference(`${registry.host}/team/app:v1`),
      { digest: blobDigest },
      deadline(),
    );
    expect(got).toEqual(blob);
    expect(registry.requests.at(-1)?.headers.authorization).toMatch(/^Basic /);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]?.path).toBe('/bucket/blob?signature=abc');
    expect(storage.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('refuses a redirect to plain HTTP on a host not marked insecure', async () => {
    const server = await hostile((_req, res) => {
      res.writeHead(307, { location: 'http://198.51.100.7/blob' });
      res.end();
    });
    const { error } = await blobFailure(server);
    expect(error.code).toBe('REGISTRY_BAD_RESPONSE');
    expect(error.message).toContain('expected https, found http://198.51.100.7');
  });

  it('refuses a blob whose bytes do not hash to its digest', async () => {
    const server = await hostile((_req, res) => {
      res.writeHead(200);
      res.end(Buffer.from('{"critical":{"type":"something else"}}'));
    });
    const { error } = await blobFailure(server);
    expect(error.code).toBe('REGISTRY_DIGEST_MISMATCH');
    expect(error.message).toContain(`a blob for ${server.host}/team/app:v1`);
    expect(error.message).toContain(`expected ${blobDigest}`);
  });

  it('refuses a blob whose descriptor declares more than the limit, before asking for it', async () => {
    const server = await hostile((_req, res) => res.end());
    const { error } = await failureOf(() =>
      client([server.registry]).fetchBlob(
        parseReference(`${server.host}/team/app:v1`),
        { digest: blobDigest, size: 100 * 1024 * 1024 },
        deadline(),
      ),
    );
    expect(error.code).toBe('REGISTRY_RESPONSE_TOO_LARGE');
    expect(server.requests).toHaveLength(0);
  });

  it('gives up on a body that trickles forever within the request timeout', async () => {
    const server = await hostile((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(' ')), 50);
    });
    const { error, elapsedMs } = await failureOf(() =>
      client([server.registry], { requestTimeoutMs: 500 }).fetchManifest(
        parseReference(`${server.host}/team/app:v1`),
        'v1',
        deadline(),
      ),
    );
    expect(error.code).toBe('REGISTRY_TIMEOUT');
    expect(elapsedMs).toBeLessThan(500 + SLACK_MS);
  });

  it('reports a missing blob as REGISTRY_BLOB_UNKNOWN', async () => {
    const server = await hostile((_req, res) => {
      res.writeHead(404);
      res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    });
    const { error } = await blobFailure(server);
    expect(error.code).toBe('REGISTRY_BLOB_UNKNOWN');
    expect(error.transient).toBe(false);
  });
});
