/**
 * TUF refresh of the trusted root against a TUF repository generated here (ed25519 keys, TUF spec 1.0
 * metadata signed over canonical JSON) and served on loopback: a good repository replaces the root, a
 * tampered target or an unreachable mirror leaves the last good one in place.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SigstoreTrust } from '../../../src/trust/sigstore/index.ts';
import { TufRefresher } from '../../../src/trust/sigstore/tuf.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const PUBLIC_GOOD_ROOT = path.resolve(
  PROJECT_ROOT,
  '../shared/fixtures/sigstore/trust/public-good/trusted_root.json',
);

/** OLPC canonical JSON as TUF uses it, for the plain strings, integers and objects written here. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

interface Repo {
  files: Map<string, Buffer>;
  root: Buffer;
}

/** One key signs every role; enough to exercise the client's signature, hash and expiry checks. */
function tufRepository(target: Buffer, servedTarget = target): Repo {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex');
  const key = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: raw } };
  const keyid = createHash('sha256').update(canonical(key)).digest('hex');
  const expires = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const common = { spec_version: '1.0.31', version: 1, expires };
  const role = { keyids: [keyid], threshold: 1 };
  const signed = (s: object, k: KeyObject = privateKey): Buffer =>
    Buffer.from(
      JSON.stringify({
        signed: s,
        signatures: [{ keyid, sig: sign(null, Buffer.from(canonical(s)), k).toString('hex') }],
      }),
    );
  const root = signed({
    _type: 'root',
    ...common,
    consistent_snapshot: false,
    keys: { [keyid]: key },
    roles: { root: role, targets: role, snapshot: role, timestamp: role },
  });
  const targets = signed({
    _type: 'targets',
    ...common,
    targets: {
      'trusted_root.json': {
        length: target.length,
        hashes: { sha256: createHash('sha256').update(target).digest('hex') },
      },
    },
  });
  const snapshot = signed({ _type: 'snapshot', ...common, meta: { 'targets.json': { version: 1 } } });
  const timestamp = signed({ _type: 'timestamp', ...common, meta: { 'snapshot.json': { version: 1 } } });
  const files = new Map([
    ['/1.root.json', root],
    ['/targets.json', targets],
    ['/snapshot.json', snapshot],
    ['/timestamp.json', timestamp],
    ['/targets/trusted_root.json', servedTarget],
  ]);
  return { files, root };
}

function serve(repo: Repo): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const body = repo.files.get(req.url ?? '');
    res.writeHead(body === undefined ? 404 : 200).end(body);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${address.port}`, server });
    }),
  );
}

describe('TUF refresh of the Sigstore trusted root', () => {
  const target = readFileSync(PUBLIC_GOOD_ROOT);
  let dir: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'provenant-tuf-test-'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  async function refresher(
    repo: Repo,
    name: string,
    trust: SigstoreTrust,
  ): Promise<{ refresh: () => Promise<Error | undefined> }> {
    const { url, server } = await serve(repo);
    servers.push(server);
    const rootPath = path.join(dir, `${name}-root.json`);
    await writeFile(rootPath, repo.root);
    let last: Error | undefined;
    const r = new TufRefresher(trust, {
      mirror: url,
      rootPath,
      cacheDir: path.join(dir, name),
      onRefresh: (e) => (last = e),
    });
    return { refresh: async () => (await r.refresh(), last) };
  }

  it('replaces the trusted root with the one the TUF repository signs for', async () => {
    const trust = new SigstoreTrust();
    const before = trust.current();
    const { refresh } = await refresher(tufRepository(target), 'good', trust);
    expect(await refresh()).toBeUndefined();
    expect(trust.current()).not.toBe(before);
    expect(trust.current().tlogs.map((t) => t.baseUrl)).toContain('https://rekor.sigstore.dev');
  });

  it('keeps the last good root when the served target does not match its signed hash', async () => {
    const trust = new SigstoreTrust();
    const before = trust.current();
    const tampered = Buffer.from(target.toString('utf8').replace('rekor.sigstore.dev', 'rekor.evilstor.dev'));
    const { refresh } = await refresher(tufRepository(target, tampered), 'tampered', trust);
    expect(tampered.length).toBe(target.length);
    const error = await refresh();
    expect(error?.message).toMatch(/hash|target/i);
    expect(trust.current()).toBe(before);
  });

  it('keeps the last good root when the mirror is unreachable, without throwing', async () => {
    const trust = new SigstoreTrust();
    const before = trust.current();
    const rootPath = path.join(dir, 'unreachable-root.json');
    await writeFile(rootPath, tufRepository(target).root);
    let last: Error | undefined;
    const r = new TufRefresher(trust, {
      mirror: 'http://127.0.0.1:1',
      rootPath,
      cacheDir: path.join(dir, 'unreachable'),
      onRefresh: (e) => (last = e),
    });
    await r.refresh();
    expect(last).toBeInstanceOf(Error);
    expect(trust.current()).toBe(before);
  });
});
