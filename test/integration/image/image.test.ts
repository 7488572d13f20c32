/**
 * Provenant's container image, end to end: built by image/build.ts (buildah, cached by the hash of its
 * inputs), pushed to a real registry, signed and its SBOM attested with the real cosign, verified by
 * Provenant itself, then run under crun (podman) read-only, as non-root, with every capability
 * dropped, on the config and certificates the Helm chart renders, answering /healthz and a
 * verification over mTLS.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { IMAGE_UID, buildImage, type BuiltImage } from '../../../image/build.ts';
import type { CycloneDxBom } from '../../supply-chain/sbom.ts';
import { cosignAttest, cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { CHART_DIR, helmOk, manifestObjects } from '../../harness/helm.ts';
import { craneDigest } from '../../harness/images.ts';
import { waitFor } from '../../harness/kube.ts';
import { issueCert, makeCa, type CertFiles } from '../../harness/pki.ts';
import { podman, runContainer, type RunningContainer } from '../../harness/podman.ts';
import { LOOPBACK_HOST, freePort, makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { toolPath } from '../../harness/tools.ts';

const run = promisify(execFile);
/** A cold build (Debian packages, Node, npm ci, tsc) takes minutes on a loaded 2-core machine. */
const BUILD_TIMEOUT_MS = 15 * 60_000;
const SBOM_PREDICATE = 'https://cyclonedx.org/bom';
const SERVICE_NAME = 'pv-provenant.provenant.svc';

describe('the container image', () => {
  let image: BuiltImage;
  let registry: RegistryServer;
  let dir: string;
  let key: CosignKey;
  let repository: string;
  let digest: string;
  let buildSeconds: number;

  beforeAll(async () => {
    const started = Date.now();
    image = await buildImage();
    buildSeconds = (Date.now() - started) / 1000;
    [registry, dir] = await Promise.all([startDistributionRegistry(), makeTempDir('image')]);
    repository = `${registry.host}/provenant`;
    await run(toolPath('crane'), ['push', '--insecure', image.layout, `${repository}:0.1.0`]);
    digest = await craneDigest(`${repository}:0.1.0`, { insecure: true });
    key = await cosignKeyPair(dir, 'release');
    await cosignSign(`${repository}@${digest}`, key);
    await cosignAttest(`${repository}@${digest}`, key, image.sbom, 'cyclonedx');
  }, BUILD_TIMEOUT_MS);
  afterAll(async () => {
    console.log(`image build: ${buildSeconds.toFixed(1)} s${image?.cached ? ' (cached)' : ''}`);
    await registry?.stop();
  });

  /** Provenant's config for this image: its release key's signature and signed SBOM, nothing else. */
  const provenantValues = (): Record<string, unknown> => ({
    validators: [
      {
        name: 'release',
        type: 'cosign',
        trustRoots: [{ name: 'release', key: key.publicKey }],
        attestation: { predicateType: SBOM_PREDICATE },
      },
    ],
    policy: [
      {
        pattern: `${repository}`,
        validator: 'release',
        with: { trustRoot: 'release', verifyInTransparencyLog: false },
      },
    ],
    registries: [{ host: registry.host, insecure: true }],
    // A key, not keyless: no public-good trust root to refresh (and no network in tests).
    sigstore: { offline: true },
  });

  it('is built from a Containerfile hadolint finds nothing wrong with', async () => {
    const findings = await run(toolPath('hadolint'), ['--failure-threshold', 'info', 'image/Containerfile'], {
      cwd: PROJECT_ROOT,
    }).then(
      ({ stdout }) => stdout,
      (err: Error & { stdout?: string }) => `${err.stdout ?? ''}${err.message}`,
    );
    expect(findings).toBe('');
  });

  it('is verified by Provenant: the release signature and the signed SBOM attestation', async () => {
    const config = path.join(dir, 'verify.yaml');
    await writeFile(config, stringify(provenantValues()));
    const { stdout } = await run(
      'node',
      ['bin/provenant.mjs', 'verify', `${repository}:0.1.0`, '--config', config, '--json'],
      {
        cwd: PROJECT_ROOT,
      },
    );
    expect(stdout).toContain(digest);
    expect(JSON.parse(stdout)).toMatchObject([{ trusted: true, digest, signers: ['release'] }]);
  });

  it('holds compiled JavaScript and production dependencies only: no shell, no TypeScript, no tsx', async () => {
    const { stdout } = await run(
      'sh',
      ['-c', `"$0" export --insecure "$1" - | tar -t`, toolPath('crane'), `${repository}@${digest}`],
      {
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    const files = new Set(stdout.split('\n').map((f) => f.replace(/^\.?\//, '').replace(/\/$/, '')));
    for (const f of [
      'app/dist/cli/main.js',
      'app/dist/registry/json-worker-entry.js',
      'app/bin/provenant.mjs',
      'usr/local/bin/node',
      'app/sbom.cdx.json',
      'app/node_modules/fastify/package.json',
    ]) {
      expect(files, f).toContain(f);
    }
    for (const f of [
      'bin/sh',
      'bin/bash',
      'usr/bin/dpkg',
      'usr/bin/apt',
      'app/provider',
      'app/node_modules/tsx',
      'app/node_modules/typescript',
      'app/node_modules/vitest',
    ]) {
      expect(files, f).not.toContain(f);
    }
  });

  it('carries OCI labels, a numeric non-root user and an SBOM of every runtime component', async () => {
    const { stdout } = await run(toolPath('crane'), ['config', '--insecure', `${repository}@${digest}`]);
    const config = (
      JSON.parse(stdout) as { config: { User: string; Labels: Record<string, string>; Entrypoint: string[] } }
    ).config;
    expect(config.User).toBe(`${IMAGE_UID}:${IMAGE_UID}`);
    expect(config.Entrypoint).toEqual(['/usr/local/bin/node', '/app/bin/provenant.mjs']);
    expect(config.Labels).toMatchObject({
      'org.opencontainers.image.title': 'provenant',
      'org.opencontainers.image.version': '0.1.0',
      'org.opencontainers.image.licenses': 'Apache-2.0',
    });
    expect(config.Labels['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}$/);
    const sbom = JSON.parse(await readFile(image.sbom, 'utf8')) as CycloneDxBom;
    const names = new Set(sbom.components.map((c) => c.name));
    const pkg = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const name of ['node', 'libc6', 'libstdc++6', ...Object.keys(pkg.dependencies)])
      expect(names, name).toContain(name);
    expect(names).not.toContain('tsx');
  });

  describe('running under crun, read-only, non-root, without capabilities, on the config the chart renders', () => {
    let container: RunningContainer;
    let client: CertFiles;
    let ca: string;
    let port: number;
    const name = `provenant-image-test-${process.pid}`;
    const agent = (withClientCert: boolean): Agent =>
      new Agent({
        connect: {
          ca,
          servername: SERVICE_NAME,
          ...(withClientCert ? { cert: client.certPem, key: client.keyPem } : {}),
        },
      });

    beforeAll(async () => {
      port = await freePort();
      const gatekeeperCa = await makeCa(dir, 'gatekeeper-ca');
      client = await issueCert(dir, gatekeeperCa, 'gatekeeper', 'client');
      const values = path.join(dir, 'values.yaml');
      await writeFile(
        values,
        stringify({
          ...provenantValues(),
          server: { port, drainSeconds: 1 },
          gatekeeper: { clientCA: { pem: gatekeeperCa.certPem } },
        }),
      );
      const objects = manifestObjects(
        await helmOk(['template', 'pv', CHART_DIR, '-n', 'provenant', '-f', values]),
      );
      const data = (kind: string, suffix: string): Record<string, string> =>
        (objects.find((o) => o.kind === kind && o.metadata.name === `pv-provenant-${suffix}`)?.data ??
          {}) as Record<string, string>;
      const tls = data('Secret', 'tls');
      ca = Buffer.from(tls['ca.crt'] ?? '', 'base64').toString();
      // The volumes as the kubelet mounts them: files readable by the pod's user (fsGroup 65532).
      const volumes = {
        config: { 'config.yaml': data('ConfigMap', 'config')['config.yaml'] ?? '' },
        tls: Object.fromEntries(
          Object.entries(tls).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
        ),
        'client-ca': { 'ca.crt': data('ConfigMap', 'client-ca')['ca.crt'] ?? '' },
      };
      // The container as the chart's Deployment describes it: its args, its volumes at its mount paths.
      const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as {
        spec: {
          template: {
            spec: { containers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[] };
          };
        };
      };
      const container0 = deployment.spec.template.spec.containers[0];
      const mounts: string[] = [];
      for (const mount of container0?.volumeMounts ?? []) {
        const files = volumes[mount.name as keyof typeof volumes] as Record<string, string> | undefined;
        if (files === undefined) {
          mounts.push('--tmpfs', mount.mountPath); // the emptyDirs
          continue;
        }
        const volumeDir = path.join(dir, 'volumes', mount.name);
        await mkdir(volumeDir, { recursive: true });
        await chmod(volumeDir, 0o755);
        for (const [file, text] of Object.entries(files)) {
          await writeFile(path.join(volumeDir, file), text, { mode: 0o440 });
          await chown(path.join(volumeDir, file), 0, IMAGE_UID);
        }
        mounts.push('-v', `${volumeDir}:${mount.mountPath}:ro`);
      }
      await podman(['pull', '--quiet', '--tls-verify=false', `${repository}@${digest}`]);
      container = runContainer([
        '--name',
        name,
        '--read-only',
        '--cap-drop=ALL',
        '--security-opt',
        'no-new-privileges',
        '--network',
        'host',
        ...mounts,
        `${repository}@${digest}`,
        ...(container0?.args ?? []),
      ]);
      await waitFor('the container to answer /healthz', 60_000, async () => {
        const res = await request(`https://${LOOPBACK_HOST}:${port}/healthz`, {
          dispatcher: agent(false),
        }).catch(() => undefined);
        if (res === undefined) return undefined;
        await res.body.dump();
        return res.statusCode === 200 ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${container.output()}`);
      });
    }, BUILD_TIMEOUT_MS);
    afterAll(async () => {
      await container?.stop('SIGKILL', 1000);
      await podman(['rm', '--force', '--ignore', name]).catch(() => undefined);
    });

    it('runs as uid 65532 with no capabilities and a read-only root filesystem', async () => {
      const inspect = JSON.parse(await podman(['inspect', name])) as {
        State: { Pid: number };
        HostConfig: { ReadonlyRootfs: boolean };
      }[];
      expect(inspect[0]?.HostConfig.ReadonlyRootfs).toBe(true);
      const status = await readFile(`/proc/${inspect[0]?.State.Pid ?? 0}/status`, 'utf8');
      expect(status).toMatch(
        new RegExp(`^Uid:\\s+${IMAGE_UID}\\s+${IMAGE_UID}\\s+${IMAGE_UID}\\s+${IMAGE_UID}$`, 'm'),
      );
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      expect(status).toMatch(/^CapBnd:\s+0+$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    });

    it("verifies its own image for a client holding Gatekeeper's certificate, and refuses one without", async () => {
      const body = JSON.stringify({
        apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
        kind: 'ProviderRequest',
        request: { keys: [`${repository}:0.1.0`] },
      });
      const verify = (withClientCert: boolean) =>
        request(`https://${LOOPBACK_HOST}:${port}/v1/verify`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
          dispatcher: agent(withClientCert),
        });
      const refused = await verify(false);
      expect(refused.statusCode).toBe(403);
      await refused.body.dump();
      const res = await verify(true);
      const answer = (await res.body.json()) as {
        response: { items: { value: { digest: string }; error: string }[] };
      };
      expect(res.statusCode, JSON.stringify(answer)).toBe(200);
      expect(answer.response.items[0]).toMatchObject({ error: '', value: { digest } });
    });

    it('drains and exits 0 on SIGTERM', async () => {
      expect(await container.stop('SIGTERM', 30_000)).toBe(0);
    });
  });
});
