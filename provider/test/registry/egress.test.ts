/**
 * The egress policy (SSRF): which hosts and addresses the registry client may connect to, whether the
 * address comes from the image, a DNS answer, a redirect or a token realm, and where credentials go.
 */
import type { LookupAddress } from 'node:dns';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

import selfsigned from 'selfsigned';

import { describe, expect, it } from 'vitest';

import { embeddedConfig } from '../../src/config/embedded.ts';
import type { RegistryConfig } from '../../src/config/index.ts';
import { parseReference } from '../../src/reference/index.ts';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/index.ts';
import { addressProblem, EgressPolicy, patternHosts } from '../../src/registry/egress.ts';
import { NotaryClient } from '../../src/trust/notaryv1/client.ts';
import {
  failureOf,
  hostileServers,
  manifestBytes,
  serveManifest,
  sha256Digest,
  type HostileServer,
} from '../helpers/hostile-server.ts';

const SLACK_MS = 1000;

/** A self-signed certificate for 127.0.0.1, for a TLS token server. */
function loopbackCertificate(): { cert: string; key: string } {
  const pems = selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keySize: 2048,
    days: 1,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A dns.lookup that answers from a table, as an attacker's DNS server would. */
function fakeDns(table: Record<string, readonly string[]>): RegistryClientOptions['lookup'] {
  const lookup = (
    hostname: string,
    _options: unknown,
    callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
  ): void => {
    const answers = table[hostname];
    if (answers === undefined) {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      return void setImmediate(() => callback(err, []));
    }
    setImmediate(() =>
      callback(
        null,
        answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      ),
    );
  };
  return lookup as unknown as RegistryClientOptions['lookup'];
}

describe('addressProblem', () => {
  it.each([
    ['169.254.169.254', 'linkLocal'],
    ['169.254.170.2', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100.100.100.200', 'cloud metadata'],
    ['224.0.0.1', 'multicast'],
  ])('refuses %s to a listed host (%s)', (address, says) => {
    expect(addressProblem(address, 'private')).toContain(says);
    expect(addressProblem(address, 'public')).toContain(says);
  });

  it.each(['10.0.0.5', '172.16.3.4', '192.168.1.1', 'fd12::1', '100.64.0.1'])(
    'lets a listed host resolve to the private address %s, but not an unlisted one',
    (address) => {
      expect(addressProblem(address, 'private')).toBeUndefined();
      expect(addressProblem(address, 'public')).toContain('only public ones are allowed');
    },
  );

  it.each(['8.8.8.8', '2606:4700::1111'])('lets any host resolve to the public address %s', (address) => {
    expect(addressProblem(address, 'public')).toBeUndefined();
  });

  it('lets a host a registries: entry names reach loopback and metadata addresses', () => {
    expect(addressProblem('127.0.0.1', 'any')).toBeUndefined();
    expect(addressProblem('169.254.169.254', 'any')).toBeUndefined();
  });
});

describe('patternHosts', () => {
  it('lists literal registries, `host:*` ports and `*.` suffixes with a dot', () => {
    expect(
      patternHosts([
        'reg.example.com/team/*',
        '127.0.0.1:*/*',
        'reg.example.com:5000/app:*',
        '*.gcr.io/*',
        '[::1]:5000/*',
      ]),
    ).toEqual([
      { hostname: 'reg.example.com', suffix: false, port: undefined },
      { hostname: '127.0.0.1', suffix: false, port: '*' },
      { hostname: 'reg.example.com', suffix: false, port: '5000' },
      { hostname: 'gcr.io', suffix: true, port: undefined },
      { hostname: '[::1]', suffix: false, port: '5000' },
    ]);
  });

  it('lists nothing for patterns whose registry part could be any host', () => {
    expect(
      patternHosts(['*:*', '*', '*/*', '*.io/*', 'reg-?.example.com/*', '{a,b}.example.com/*', 're*.com/*']),
    ).toEqual([]);
  });
});

describe('EgressPolicy.admit', () => {
  const policy = new EgressPolicy({
    registries: [
      { host: 'named.example.com', insecure: false },
      { host: '127.0.0.1:*', insecure: true },
      { host: '*.corp.example', insecure: false },
    ],
    policyPatterns: ['docker.io/library/*', '*.gcr.io/*', 'pattern.example.com:5000/*', '*:*'],
  });

  it.each([
    ['named.example.com', 'any'],
    ['127.0.0.1:8443', 'any'],
    ['build.corp.example', 'private'],
    ['eu.gcr.io', 'private'],
    ['registry-1.docker.io', 'private'],
    ['pattern.example.com:5000', 'private'],
  ])('grades %s as %s', (host, reach) => {
    expect(policy.admit(host, 'registry')).toBe(reach);
  });

  it('refuses an image on a host nothing lists, even with a `*:*` pattern', () => {
    expect(() => policy.admit('elsewhere.example.com', 'registry')).toThrow(
      /no registries: entry and no policy pattern/,
    );
    expect(() => policy.admit('pattern.example.com:5001', 'registry')).toThrow(/no registries: entry/);
  });

  it('lets redirects and token realms go to unlisted hosts, at public addresses only', () => {
    expect(policy.admit('storage.example.net', 'redirect')).toBe('public');
    expect(policy.admit('auth.example.net', 'token')).toBe('public');
    expect(() => policy.admit('10.1.2.3', 'redirect')).toThrow(/only public ones/);
  });

  it('lets no catch-all registries: glob open egress to every host', () => {
    const catchAll = new EgressPolicy({
      registries: [
        { host: '*', insecure: false },
        { host: '*:*', insecure: false },
        { host: '*.io', insecure: false },
        { host: 'reg-?.example.com', insecure: false },
      ],
    });
    for (const host of ['10.0.0.1', 'redis.cluster.local:6379', 'quay.io', 'reg-1.example.com']) {
      expect(() => catchAll.admit(host, 'registry')).toThrow(/no registries: entry/);
    }
  });

  it('refuses IP literals in forbidden ranges on listed hosts', () => {
    const listed = new EgressPolicy({
      registries: [],
      policyPatterns: ['169.254.169.254/*', '[::1]:5000/*'],
    });
    expect(() => listed.admit('169.254.169.254', 'registry')).toThrow(/linkLocal/);
    expect(() => listed.admit('[::1]:5000', 'registry')).toThrow(/loopback/);
  });

  it('keeps the embedded development config (npm start) able to reach loopback registries, and nothing else', () => {
    const config = embeddedConfig();
    const dev = new EgressPolicy({
      registries: config.registries,
      policyPatterns: config.policy.map((r) => r.pattern),
      allowUnlistedRegistries: config.network.egress.allowUnlistedRegistries,
    });
    expect(dev.admit('127.0.0.1:5000', 'registry')).toBe('any');
    expect(dev.admit('localhost:5000', 'registry')).toBe('any');
    expect(() => dev.admit('registry.example.com', 'registry')).toThrow(/no registries: entry/);
    expect(() => dev.admit('169.254.169.254', 'registry')).toThrow(/no registries: entry/);
  });

  it('opens unlisted public hosts only when allowUnlistedRegistries is set', () => {
    const open = new EgressPolicy({ registries: [], allowUnlistedRegistries: true });
    expect(open.admit('registry.example.org', 'registry')).toBe('public');
    expect(() => open.admit('127.0.0.1:5000', 'registry')).toThrow(/loopback/);
  });
});

describe('registry client egress', () => {
  const { hostile, onCleanup } = hostileServers();
  const deadline = (): AbortSignal => AbortSignal.timeout(10_000);

  function client(
    registries: RegistryConfig[],
    options: Partial<RegistryClientOptions> = {},
  ): RegistryClient {
    const c = new RegistryClient({
      registries,
      requestTimeoutMs: 2000,
      maxRetries: 0,
      maxManifestBytes: 64 * 1024,
      ...options,
    });
    onCleanup(() => c.close());
    return c;
  }

  const manifest = manifestBytes('egress');
  const serving = (req: IncomingMessage, res: ServerResponse): void => serveManifest(req, res, manifest);

  it('refuses an image naming the cloud metadata address, without connecting', async () => {
    const c = client([], { policyPatterns: ['*:*', '169.254.169.254/*'] });
    const { error, elapsedMs } = await failureOf(() =>
      c.resolveDigest(parseReference('169.254.169.254/latest/meta-data:v1'), deadline()),
    );
    expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
    expect(error.transient).toBe(false);
    expect(error.message).toBe(
      'registry 169.254.169.254 may not be contacted for 169.254.169.254/latest/meta-data:v1: it resolves to a linkLocal address',
    );
    expect(elapsedMs).toBeLessThan(SLACK_MS);
  });

  it("refuses an image naming Provenant's own port on loopback, which no registries: entry names", async () => {
    const provenant = await hostile(serving);
    const registry = await hostile(serving);
    const c = client([registry.registry], { policyPatterns: [`127.0.0.1:*/*`] });
    const { error } = await failureOf(() =>
      c.resolveDigest(parseReference(`${provenant.host}/team/app:v1`), deadline()),
    );
    expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
    expect(error.message).toContain('loopback');
    expect(provenant.requests).toHaveLength(0);
  });

  it('refuses an image on a registry nothing lists, and contacts it once allowUnlistedRegistries is set (public addresses only)', async () => {
    const server = await hostile(serving);
    const image = parseReference(`unlisted.example.com:${server.port}/team/app:v1`);
    const dns = fakeDns({ 'unlisted.example.com': ['127.0.0.1'] });
    const closed = await failureOf(() => client([], { lookup: dns }).resolveDigest(image, deadline()));
    expect(closed.error.code).toBe('REGISTRY_EGRESS_DENIED');
    expect(closed.error.message).toContain('network.egress.allowUnlistedRegistries is off');
    const open = await failureOf(() =>
      client([], { lookup: dns, egress: { allowUnlistedRegistries: true } }).resolveDigest(image, deadline()),
    );
    expect(open.error.code).toBe('REGISTRY_EGRESS_DENIED');
    expect(open.error.message).toContain('it resolves to a loopback address');
    expect(server.requests).toHaveLength(0);
  });

  it('checks DNS answers: a listed name resolving to 127.0.0.1 is refused, and so is an answer mixing in one', async () => {
    const server = await hostile(serving);
    const host = `listed.example.com:${server.port}`;
    for (const answers of [['127.0.0.1'], ['203.0.113.9', '127.0.0.1'], ['::1']]) {
      const c = client([], {
        policyPatterns: [`${host}/*`],
        lookup: fakeDns({ 'listed.example.com': answers }),
      });
      const { error } = await failureOf(() =>
        c.resolveDigest(parseReference(`${host}/team/app:v1`), deadline()),
      );
      expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
      expect(error.message).toContain(`registry ${host} may not be contacted`);
      // The client never learns which address: it would map the internal network for whoever asked.
      expect(error.message).not.toContain('127.0.0.1');
    }
    expect(server.requests).toHaveLength(0);
  });

  it('connects to the address it checked: a name a registries: entry names reaches loopback through the lookup', async () => {
    const server = await hostile(serving);
    const host = `named.example.com:${server.port}`;
    const c = client([{ host, insecure: true }], { lookup: fakeDns({ 'named.example.com': ['127.0.0.1'] }) });
    expect(await c.resolveDigest(parseReference(`${host}/team/app:v1`), deadline())).toBe(
      sha256Digest(manifest),
    );
    expect(server.requests).toHaveLength(1);
  });

  it('reports a name that does not resolve as REGISTRY_UNREACHABLE without the resolver error', async () => {
    const c = client([{ host: 'missing.example.com:5000', insecure: true }], { lookup: fakeDns({}) });
    const { error } = await failureOf(() =>
      c.resolveDigest(parseReference('missing.example.com:5000/team/app:v1'), deadline()),
    );
    expect(error.code).toBe('REGISTRY_UNREACHABLE');
    expect(error.message).not.toContain('ENOTFOUND');
  });

  it('refuses a redirect to the metadata address or to an unnamed loopback port', async () => {
    for (const location of [
      'https://169.254.169.254/latest/meta-data',
      'https://127.0.0.1:1/x',
      'https://[::ffff:a9fe:a9fe]/x',
    ]) {
      const registry = await hostile((_req, res) => res.writeHead(307, { location }).end());
      const c = client([registry.registry]);
      const { error } = await failureOf(() =>
        c.fetchBlob(
          parseReference(`${registry.host}/team/app:v1`),
          { digest: sha256Digest('x') },
          deadline(),
        ),
      );
      expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
    }
  });

  it('keeps credentials on a redirect to the same origin', async () => {
    const blob = Buffer.from('a blob behind a same-origin redirect');
    const registry = await hostile((req, res) => {
      if (req.headers.authorization === undefined) {
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
      }
      if (req.url?.startsWith('/v2/') === true) {
        return void res.writeHead(307, { location: '/storage/blob' }).end();
      }
      res.writeHead(200, { 'content-length': blob.length }).end(blob);
    });
    const c = client([{ ...registry.registry, auth: { username: 'u', password: 'p' } }]);
    const got = await c.fetchBlob(
      parseReference(`${registry.host}/team/app:v1`),
      { digest: sha256Digest(blob) },
      deadline(),
    );
    expect(got).toEqual(blob);
    const storage = registry.requests.filter((r) => r.path === '/storage/blob');
    expect(storage).toHaveLength(1);
    expect(storage[0]?.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  describe('token realms', () => {
    const TOKEN = 'a-token';

    async function realmOn(): Promise<HostileServer> {
      return hostile((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token: TOKEN }));
      });
    }

    async function registryWithRealm(realm: () => string): Promise<HostileServer> {
      return hostile((req, res) => {
        if (req.headers.authorization !== `Bearer ${TOKEN}`) {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm()}",service="svc"` });
          return void res.end();
        }
        serveManifest(req, res, manifest);
      });
    }

    it("sends a realm on another origin none of the registry's credentials", async () => {
      const tokens = await realmOn();
      const registry = await registryWithRealm(() => `http://${tokens.host}/token`);
      const c = client([
        { ...registry.registry, auth: { username: 'registry-user', password: 'registry-secret' } },
        { host: tokens.host, insecure: true },
      ]);
      expect(await c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), deadline())).toBe(
        sha256Digest(manifest),
      );
      expect(tokens.requests).toHaveLength(1);
      expect(tokens.requests[0]?.headers.authorization).toBeUndefined();
    });

    it("sends a realm on another origin the credentials of its own registries: entry, never the registry's", async () => {
      const tokens = await realmOn();
      const registry = await registryWithRealm(() => `http://${tokens.host}/token`);
      const c = client([
        { ...registry.registry, auth: { username: 'registry-user', password: 'registry-secret' } },
        { host: tokens.host, insecure: true, auth: { username: 'token-user', password: 'token-secret' } },
      ]);
      await c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), deadline());
      expect(tokens.requests[0]?.headers.authorization).toBe(
        `Basic ${Buffer.from('token-user:token-secret').toString('base64')}`,
      );
    });

    it('sends a realm on the same origin the registry credentials', async () => {
      let realm = '';
      const registry = await hostile((req, res) => {
        if (req.url?.startsWith('/token') === true) {
          res.writeHead(200, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ token: TOKEN }));
        }
        if (req.headers.authorization !== `Bearer ${TOKEN}`) {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}"` });
          return void res.end();
        }
        serveManifest(req, res, manifest);
      });
      realm = `http://${registry.host}/token`;
      const c = client([{ ...registry.registry, auth: { username: 'u', password: 'p' } }]);
      await c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), deadline());
      const tokenRequest = registry.requests.find((r) => r.path.startsWith('/token'));
      expect(tokenRequest?.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    });

    it('refuses a realm on a loopback port no registries: entry names, without contacting it', async () => {
      const tokens = await realmOn();
      const registry = await registryWithRealm(() => `http://${tokens.host}/token`);
      const c = client([{ ...registry.registry, auth: { username: 'u', password: 'p' } }]);
      const { error } = await failureOf(() =>
        c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), deadline()),
      );
      expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
      expect(error.message).toContain(`registry ${tokens.host} may not be contacted`);
      expect(tokens.requests).toHaveLength(0);
    });

    it('refuses a realm at the metadata address', async () => {
      const registry = await registryWithRealm(() => 'http://169.254.169.254/token');
      const c = client([registry.registry]);
      const { error } = await failureOf(() =>
        c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), deadline()),
      );
      expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
    });
  });
});

describe('Notary client egress (the same transport and rules)', () => {
  const { hostile, onCleanup } = hostileServers();

  async function notaryWithRealm(realm: () => string): Promise<HostileServer> {
    return hostile((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm()}",service="notary"` }).end();
    });
  }

  function fetchRoot(client: NotaryClient): Promise<unknown> {
    return client
      .source('reg.example.com/team/app', 'reg.example.com/team/app:v1', AbortSignal.timeout(10_000))
      .fetch('root', undefined, 1024);
  }

  it('refuses a token realm on a loopback port no registries: entry names, without contacting it', async () => {
    const tokens = await hostile((_req, res) => res.writeHead(200).end('{"token":"t"}'));
    const notary = await notaryWithRealm(() => `http://${tokens.host}/token`);
    const client = new NotaryClient({ host: `http://${notary.host}`, maxRetries: 0 });
    onCleanup(() => client.close());
    const { error } = await failureOf(() => fetchRoot(client));
    expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
    expect(error.message).toContain(`notary server ${tokens.host} may not be contacted`);
    expect(tokens.requests).toHaveLength(0);
  });

  it("never sends the Notary server's credentials to an https realm on another origin", async () => {
    const { cert, key } = loopbackCertificate();
    const seen: (string | undefined)[] = [];
    const tokens = createHttpsServer({ cert, key }, (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
    });
    await new Promise<void>((resolve) => tokens.listen(0, '127.0.0.1', resolve));
    onCleanup(() => new Promise<void>((resolve) => tokens.close(() => resolve())));
    const tokenHost = `127.0.0.1:${(tokens.address() as AddressInfo).port}`;
    const notary = await notaryWithRealm(() => `https://${tokenHost}/token`);
    const client = new NotaryClient({
      host: `http://${notary.host}`,
      ca: cert,
      maxRetries: 0,
      credentials: { username: 'notary-user', password: 'notary-secret' },
      registries: [{ host: tokenHost, insecure: false }],
    });
    onCleanup(() => client.close());
    // The Notary server answers 401 even with the token: what matters is what the realm was sent.
    await failureOf(() => fetchRoot(client));
    expect(seen).toEqual([undefined]);
  });
});
