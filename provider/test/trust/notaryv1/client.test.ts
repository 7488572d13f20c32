import { afterEach, describe, expect, it } from 'vitest';

import { NotaryClient, notaryBaseUrl } from '../../../src/trust/notaryv1/client.ts';
import { ProvenantError } from '../../../src/types/errors.ts';
import { startHostileServer, type Handler, type HostileServer } from '../../helpers/hostile-server.ts';

const GUN = 'registry.example/team/app';
const IMAGE = `${GUN}:v1`;

describe('notary client', () => {
  let server: HostileServer | undefined;
  let client: NotaryClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.close();
    client = server = undefined;
  });

  async function start(handler: Handler, credentials?: { username: string; password: string }) {
    server = await startHostileServer(handler);
    client = new NotaryClient({
      host: `http://${server.host}`,
      maxRetries: 0,
      requestTimeoutMs: 1000,
      credentials,
    });
    return { server, source: client.source(GUN, IMAGE, AbortSignal.timeout(5000)) };
  }

  async function failure(p: Promise<unknown>): Promise<ProvenantError> {
    const err: unknown = await p.then(
      () => new Error('expected a rejection'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProvenantError);
    expect((err as ProvenantError).message).toContain(IMAGE);
    return err as ProvenantError;
  }

  it('adds https:// to a host without a scheme, as Connaisseur does', () => {
    expect(notaryBaseUrl('notary.example:4443').href).toBe('https://notary.example:4443/');
    expect(() => notaryBaseUrl('ftp://x')).toThrow(/unsupported scheme/);
  });

  it('fetches the newest and the checksum-addressed files of a role under /v2/<gun>/_trust/tuf/', async () => {
    const { server, source } = await start((_req, res) => res.end('{}'));
    await source.fetch('timestamp', undefined, 1024);
    await source.fetch('targets/releases', 'ab'.repeat(32), 1024);
    expect(server.requests.map((r) => r.path)).toEqual([
      `/v2/${GUN}/_trust/tuf/timestamp.json`,
      `/v2/${GUN}/_trust/tuf/targets/releases.${'ab'.repeat(32)}.json`,
    ]);
  });

  it("answers a Bearer challenge with a token from the challenge's realm, scoped to the GUN", async () => {
    const { server, source } = await start((req, res) => {
      if (req.url?.startsWith('/token')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ token: 'tok-123', expires_in: 300 }));
      } else if (req.headers.authorization === 'Bearer tok-123') {
        res.end('trust data');
      } else {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${server?.host ?? ''}/token",service="notary"`,
        });
        res.end();
      }
    });
    expect((await source.fetch('root', undefined, 1024)).toString()).toBe('trust data');
    await source.fetch('timestamp', undefined, 1024);
    const paths = server.requests.map((r) => r.path);
    expect(paths[1]).toBe(`/token?service=notary&scope=${encodeURIComponent(`repository:${GUN}:pull`)}`);
    // The token is reused: the second role needs no new challenge.
    expect(paths.slice(3)).toEqual([`/v2/${GUN}/_trust/tuf/timestamp.json`]);
  });

  it('never sends credentials to a token realm over plain HTTP', async () => {
    const { server, source } = await start(
      (req, res) => {
        if (req.url?.startsWith('/token')) res.end(JSON.stringify({ token: 't' }));
        else if (req.headers.authorization === 'Bearer t') res.end('ok');
        else
          res
            .writeHead(401, { 'www-authenticate': `Bearer realm="http://${server?.host ?? ''}/token"` })
            .end();
      },
      { username: 'u', password: 'p' },
    );
    await source.fetch('root', undefined, 1024);
    expect(server.requests[1]?.headers.authorization).toBeUndefined();
  });

  it('reports a repository without trust data as not signed, not as a server failure', async () => {
    const { source } = await start((_req, res) => res.writeHead(404).end());
    const e = await failure(source.fetch('root', undefined, 1024));
    expect(e.code).toBe('NOTARY_NO_TRUST_DATA');
    expect(e.transient).toBe(false);
  });

  it('reports 5xx as a transient server error', async () => {
    const { source } = await start((_req, res) => res.writeHead(503).end());
    const e = await failure(source.fetch('root', undefined, 1024));
    expect(e.code).toBe('NOTARY_SERVER_ERROR');
    expect(e.transient).toBe(true);
  });

  it('reports 401 without a usable challenge as unauthorized', async () => {
    const { source } = await start((_req, res) => res.writeHead(401).end());
    const e = await failure(source.fetch('root', undefined, 1024));
    expect(e.code).toBe('NOTARY_UNAUTHORIZED');
    expect(e.message).toContain('no credentials are configured');
  });

  it('refuses a body larger than the role may be without reading it', async () => {
    let hungUp: Promise<void> | undefined;
    const { source } = await start((_req, res) => {
      hungUp = new Promise((resolve) => res.once('close', () => resolve()));
      res.writeHead(200, { 'content-length': 100 * 1024 * 1024 });
      res.write(Buffer.alloc(1024));
    });
    const e = await failure(source.fetch('root', undefined, 1024));
    expect(e.code).toBe('NOTARY_BAD_METADATA');
    expect(e.message).toContain('expected at most 1024 bytes');
    await hungUp;
  });

  it('reports a server that does not answer in time as a transient timeout', async () => {
    const { source } = await start(() => undefined);
    const e = await failure(source.fetch('root', undefined, 1024));
    expect(e.code).toBe('NOTARY_TIMEOUT');
    expect(e.transient).toBe(true);
  });
});
