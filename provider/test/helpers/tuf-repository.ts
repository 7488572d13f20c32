/**
 * A TUF repository generated here (ed25519 keys, TUF spec 1.0 metadata signed over canonical JSON)
 * whose one target is `trusted_root.json`, and a loopback HTTP server for it: enough to exercise a TUF
 * client's signature, hash and expiry checks against a mirror that the test controls.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';

/** OLPC canonical JSON as TUF uses it, for the plain strings, integers and objects written here. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export interface Repo {
  files: Map<string, Buffer>;
  root: Buffer;
  /** The key that signs every role. */
  signer: KeyObject;
}

export interface RepoOptions {
  /** Sign with this ed25519 key (another version of the same repository); default a new key. */
  readonly signer?: KeyObject;
  /** The metadata version of every role; default 1. */
  readonly version?: number;
  /** When every role expires; default a day from now. */
  readonly expires?: Date;
}

/** One key signs every role; enough to exercise the client's signature, hash and expiry checks. */
export function tufRepository(target: Buffer, servedTarget = target, options: RepoOptions = {}): Repo {
  const privateKey = options.signer ?? generateKeyPairSync('ed25519').privateKey;
  const publicKey = createPublicKey(privateKey);
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex');
  const key = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: raw } };
  const keyid = createHash('sha256').update(canonical(key)).digest('hex');
  const expires = (options.expires ?? new Date(Date.now() + 86_400_000))
    .toISOString()
    .replace(/\.\d+Z$/, 'Z');
  const version = options.version ?? 1;
  const common = { spec_version: '1.0.31', version, expires };
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
  const snapshot = signed({ _type: 'snapshot', ...common, meta: { 'targets.json': { version } } });
  const timestamp = signed({ _type: 'timestamp', ...common, meta: { 'snapshot.json': { version } } });
  const files = new Map([
    [`/${version}.root.json`, root],
    ['/targets.json', targets],
    ['/snapshot.json', snapshot],
    ['/timestamp.json', timestamp],
    ['/targets/trusted_root.json', servedTarget],
  ]);
  return { files, root, signer: privateKey };
}

export function serveTufRepository(repo: Pick<Repo, 'files'>): Promise<{ url: string; server: Server }> {
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
