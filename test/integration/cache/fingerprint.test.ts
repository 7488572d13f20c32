/**
 * Cached verdicts follow the contents of the files a config names: a registry CA edited in place (same
 * path) and a reload, and the old verdict is no longer served; the image is verified against the new CA.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../provider/src/config/index.ts';
import { Runtime } from '../../../provider/src/service/index.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { issueCert, makeCa, type CertFiles } from '../../harness/pki.ts';
import { makeTempDir } from '../../harness/process.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

describe('cache fingerprint over file contents', () => {
  let dir: string;
  let ca: CertFiles;
  let otherCa: CertFiles;
  let registry: RegistryServer;
  let runtime: Runtime | undefined;

  beforeAll(async () => {
    dir = await makeTempDir('fingerprint');
    ca = await makeCa(dir, 'ca');
    otherCa = await makeCa(dir, 'other-ca');
    const server = await issueCert(dir, ca, 'registry', 'server');
    registry = await startDistributionRegistry({ tls: { cert: server.certPem, key: server.keyPem } });
  });
  afterAll(async () => {
    await runtime?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('stops serving a cached verdict once the registry CA file changes and the config reloads', async () => {
    const image = await pushRandomImage(registry.url, 'team/app', 'v1', { ca: ca.certPem });
    const caFile = path.join(dir, 'registry-ca.pem');
    const configFile = path.join(dir, 'provenant.yaml');
    await writeFile(caFile, ca.certPem);
    await writeFile(
      configFile,
      `validators: [{ name: allow, type: static, approve: true }]
policy: [{ pattern: "${registry.host}/*", validator: allow }]
registries: [{ host: "${registry.host}", ca: registry-ca.pem }]
cache: { ttlSeconds: 600 }
`,
    );
    const loaded = loadConfigFile(configFile);
    runtime = new Runtime(loaded.config, loaded.source);
    const first = await runtime.verifier.verify(image.reference);
    expect(first.ok && first.verdict.digest).toBe(image.digest);

    // Same path, another CA: the registry's certificate is no longer trusted.
    await writeFile(caFile, otherCa.certPem);
    const reloaded = loadConfigFile(configFile);
    await runtime.replace(reloaded.config, reloaded.source);
    const second = await runtime.verifier.verify(image.reference);
    expect(second.ok).toBe(false);
    expect(!second.ok && second.error.code).toMatch(/^REGISTRY_/);
  });
});
