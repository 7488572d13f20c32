/**
 * The harness is what every integration suite stands on, so it is tested against the real tools:
 * the digests it computes must be the ones an independent client (crane) sees, auth must really be
 * enforced, and stopped servers must really be gone.
 */
import selfsigned from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { craneDigest, pushIndex, pushRandomImage } from '../../harness/images.ts';
import {
  authorization,
  pushBlob,
  pushManifest,
  RegistryHttpError,
  sha256Digest,
} from '../../harness/oci-push.ts';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { notationChainSigner, startOcspResponder } from '../../harness/notation.ts';
import { canConnect, freePort, LOOPBACK_HOST, makeTempDir, startProcess } from '../../harness/process.ts';
import {
  startDistributionRegistry,
  startReferrersRegistry,
  type BasicCredentials,
  type RegistryServer,
} from '../../harness/registry.ts';
import { toolPath } from '../../harness/tools.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CREDENTIALS: BasicCredentials = { username: 'tester', password: 'correct horse battery staple' };

describe('a distribution registry', () => {
  let registry: RegistryServer;
  beforeAll(async () => {
    registry = await startDistributionRegistry();
  });
  afterAll(() => registry.stop());

  it('listens on 127.0.0.1 on an ephemeral port', () => {
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(registry.url).toBe(`http://${registry.host}`);
  });

  it('stores a pushed OCI image under the digest crane reports', async () => {
    const image = await pushRandomImage(registry.url, 'app/oci', 'v1');
    expect(image.reference).toBe(`${registry.host}/app/oci:v1`);
    expect(await craneDigest(image.reference, { insecure: true })).toBe(image.digest);
  });

  it('stores a pushed Docker schema 2 image under the digest crane reports', async () => {
    const image = await pushRandomImage(registry.url, 'app/docker', 'v1', { mediaType: 'docker' });
    expect(image.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(await craneDigest(image.reference, { insecure: true })).toBe(image.digest);
  });

  it('gives two pushes of the same tag different digests, because every image is random', async () => {
    const first = await pushRandomImage(registry.url, 'app/random', 'latest');
    const second = await pushRandomImage(registry.url, 'app/random', 'latest');
    expect(second.digest).not.toBe(first.digest);
    expect(await craneDigest(second.reference, { insecure: true })).toBe(second.digest);
  });

  it('stores an image index under the digest crane reports, with both platform images', async () => {
    const index = await pushIndex(registry.url, 'app/multi', 'v1');
    expect(await craneDigest(index.reference, { insecure: true })).toBe(index.digest);
    const listed = (JSON.parse(index.manifest.toString('utf8')) as IndexJson).manifests;
    expect(listed.map((m) => `${m.platform?.os}/${m.platform?.architecture}`)).toEqual([
      'linux/amd64',
      'linux/arm64',
    ]);
    for (const image of index.images) {
      expect(await craneDigest(image.reference, { insecure: true })).toBe(image.digest);
    }
  });

  it('has no referrers API: GET /v2/<name>/referrers/<digest> is 404', async () => {
    const image = await pushRandomImage(registry.url, 'app/referrers', 'v1');
    const response = await fetch(`${registry.url}/v2/app/referrers/referrers/${image.digest}`);
    expect(response.status).toBe(404);
  });
});

describe('a distribution registry with basic auth', () => {
  let registry: RegistryServer;
  beforeAll(async () => {
    registry = await startDistributionRegistry({ htpasswd: CREDENTIALS });
  });
  afterAll(() => registry.stop());

  it('refuses an anonymous push with 401', async () => {
    const push = pushRandomImage(registry.url, 'private/app', 'v1');
    await expect(push).rejects.toBeInstanceOf(RegistryHttpError);
    await expect(push).rejects.toMatchObject({ status: 401 });
  });

  it('refuses a push with the wrong password with 401', async () => {
    const auth = { ...CREDENTIALS, password: 'wrong' };
    await expect(pushRandomImage(registry.url, 'private/app', 'v1', { auth })).rejects.toMatchObject({
      status: 401,
    });
  });

  it('accepts a push with the right credentials, and serves the pull only to them', async () => {
    const image = await pushRandomImage(registry.url, 'private/app', 'v1', { auth: CREDENTIALS });
    const manifestUrl = `${registry.url}/v2/private/app/manifests/v1`;
    const accept = { accept: OCI_MANIFEST };

    const anonymous = await fetch(manifestUrl, { headers: accept });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm="provenant-test"/);

    const authorized = await fetch(manifestUrl, { headers: { ...accept, ...authorization(CREDENTIALS) } });
    expect(authorized.status).toBe(200);
    expect(Buffer.from(await authorized.arrayBuffer())).toEqual(image.manifest);
  });

  it('lets crane read a digest with the credentials', async () => {
    const image = await pushRandomImage(registry.url, 'private/crane', 'v1', { auth: CREDENTIALS });
    expect(await craneDigest(image.reference, { insecure: true, auth: CREDENTIALS })).toBe(image.digest);
    await expect(craneDigest(image.reference, { insecure: true })).rejects.toThrow(/UNAUTHORIZED|401/);
  });
});

describe('a distribution registry with TLS', () => {
  const pems = selfsigned.generate([{ name: 'commonName', value: LOOPBACK_HOST }], {
    keySize: 2048,
    days: 1,
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: LOOPBACK_HOST }] }],
  });
  let registry: RegistryServer;
  beforeAll(async () => {
    registry = await startDistributionRegistry({ tls: { cert: pems.cert, key: pems.private } });
  });
  afterAll(() => registry.stop());

  it('serves HTTPS with the given certificate to a client that trusts it', async () => {
    expect(registry.url).toBe(`https://${registry.host}`);
    const image = await pushRandomImage(registry.url, 'secure/app', 'v1', { ca: pems.cert });
    expect(await craneDigest(image.reference, { insecure: true })).toBe(image.digest);
  });

  it('is refused by a client that does not trust the certificate', async () => {
    await expect(pushRandomImage(registry.url, 'secure/app', 'v1')).rejects.toMatchObject({
      cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
    });
  });
});

describe('olareg, the registry with the referrers API', () => {
  let registry: RegistryServer;
  beforeAll(async () => {
    registry = await startReferrersRegistry();
  });
  afterAll(() => registry.stop());

  it('stores a pushed image under the digest crane reports', async () => {
    const image = await pushRandomImage(registry.url, 'app/oci', 'v1');
    expect(await craneDigest(image.reference, { insecure: true })).toBe(image.digest);
  });

  it('answers GET /v2/<name>/referrers/<digest> with an empty OCI index for an image without referrers', async () => {
    const image = await pushRandomImage(registry.url, 'app/plain', 'v1');
    const response = await fetch(`${registry.url}/v2/app/plain/referrers/${image.digest}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(OCI_INDEX);
    const index = (await response.json()) as { schemaVersion: number; mediaType: string; manifests: unknown };
    expect(index).toMatchObject({ schemaVersion: 2, mediaType: OCI_INDEX });
    // olareg 0.1.2 sends `"manifests": null` for "no referrers" (image-spec asks for an array), so a
    // referrers client has to read null as empty; this pins the quirk in case a tool upgrade changes it.
    expect(index.manifests).toBeNull();
  });

  it('lists a manifest whose subject is the image among its referrers', async () => {
    const image = await pushRandomImage(registry.url, 'app/signed', 'v1');
    const referrer = await pushReferrer(registry.url, 'app/signed', image);
    const response = await fetch(`${registry.url}/v2/app/signed/referrers/${image.digest}`);
    expect(response.status).toBe(200);
    const index = (await response.json()) as IndexJson;
    expect(index.manifests).toEqual([
      expect.objectContaining({ digest: referrer, artifactType: ARTIFACT_TYPE }),
    ]);
  });

  it('stores an image index under the digest crane reports', async () => {
    const index = await pushIndex(registry.url, 'app/multi', 'v1');
    expect(await craneDigest(index.reference, { insecure: true })).toBe(index.digest);
  });
});

describe('stopping a server', () => {
  it('closes the port of a stopped distribution registry', async () => {
    const registry = await startDistributionRegistry();
    const port = portOf(registry);
    expect(await canConnect(LOOPBACK_HOST, port)).toBe(true);
    await registry.stop();
    expect(await canConnect(LOOPBACK_HOST, port)).toBe(false);
  });

  it('closes the port of a stopped olareg', async () => {
    const registry = await startReferrersRegistry();
    const port = portOf(registry);
    expect(await canConnect(LOOPBACK_HOST, port)).toBe(true);
    await registry.stop();
    expect(await canConnect(LOOPBACK_HOST, port)).toBe(false);
  });

  it('can be asked twice', async () => {
    const registry = await startDistributionRegistry();
    await registry.stop();
    await expect(registry.stop()).resolves.toBeUndefined();
  });
});

describe('starting a process', () => {
  it('fails fast with the output of a process that exits before it is ready', async () => {
    const port = await freePort();
    const start = startProcess({
      name: 'doomed',
      command: 'bash',
      args: ['-c', 'echo "bad config: no storage" >&2; exit 3'],
      ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
    });
    await expect(start).rejects.toThrow(/doomed did not start: process exited with code 3[\s\S]*bad config/);
  });

  it('gives up after the ready timeout and kills the process', async () => {
    const port = await freePort();
    const started = Date.now();
    const start = startProcess({
      name: 'silent',
      command: 'sleep',
      args: ['30'],
      ready: { kind: 'http', url: `http://${LOOPBACK_HOST}:${port}/` },
      readyTimeoutMs: 300,
    });
    await expect(start).rejects.toThrow(/silent did not start: .* did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('names the missing tool and how to install it', () => {
    // A cast on purpose: the point is a tool that install.sh does not provide.
    expect(() => toolPath('no-such-tool' as Parameters<typeof toolPath>[0])).toThrow(
      /"no-such-tool" is not installed.*npm run tools/,
    );
  });
});

const ARTIFACT_TYPE = 'application/vnd.provenant.test.signature';

interface IndexJson {
  manifests: { digest: string; artifactType?: string; platform?: { os: string; architecture: string } }[];
}

/** An artifact manifest (image-spec 1.1 "artifact" guidance) whose `subject` points at `image`. */
async function pushReferrer(
  registryUrl: string,
  repository: string,
  image: { digest: string; manifest: Buffer },
) {
  const target = { registryUrl, repository };
  const emptyConfig = await pushBlob(target, Buffer.from('{}'));
  const payload = await pushBlob(target, Buffer.from('not really a signature'));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: ARTIFACT_TYPE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...emptyConfig },
      layers: [{ mediaType: 'application/octet-stream', ...payload }],
      subject: { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length },
    }),
  );
  return pushManifest(target, sha256Digest(manifest), manifest, OCI_MANIFEST);
}

describe('a server that forks workers into its own process group (openssl ocsp -multi)', () => {
  it('leaves no worker running once stopped', async () => {
    const dir = await makeTempDir('ocsp-group');
    try {
      const signer = await notationChainSigner(dir, 'group');
      const responder = await startOcspResponder(signer, await freePort());
      await expect.poll(() => groupMembers(responder.pid), { timeout: 10_000 }).toHaveLength(5);
      await responder.stop();
      // SIGKILLed workers are reaped by init a moment later; a leaked one would stay for good.
      await expect.poll(() => groupMembers(responder.pid), { timeout: 5_000 }).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The pids in process group `pgid` (pgrep exits 1 when there are none). */
async function groupMembers(pgid: number): Promise<string[]> {
  try {
    const { stdout } = await promisify(execFile)('pgrep', ['-g', String(pgid)]);
    return stdout.split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}

function portOf(registry: RegistryServer): number {
  return Number(new URL(registry.url).port);
}
