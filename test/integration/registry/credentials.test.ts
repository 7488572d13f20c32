/**
 * Credentials from a Docker config file and from `docker-credential-*` helpers, against a real
 * htpasswd registry: read when first needed, re-read when they change, never needing a restart.
 */
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { basicToken } from '../../harness/oci-push.ts';
import { codedFailure, testRegistryClient, testSignal } from '../../harness/registry-client.ts';
import { makeTempDir } from '../../harness/process.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const puller = { username: 'puller', password: 'rotate me' };

describe('registry credentials from Docker config files and helpers', () => {
  let dir: string;
  let registry: RegistryServer;
  let pushed: PushedManifest;

  beforeAll(async () => {
    dir = await makeTempDir('credentials-test');
    registry = await startDistributionRegistry({ htpasswd: puller });
    pushed = await pushRandomImage(registry.url, 'team/app', 'v1', { auth: puller });
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const writeConfig = async (file: string, config: unknown): Promise<void> => {
    await writeFile(file, JSON.stringify(config), { mode: 0o600 });
  };

  it('reads auths from a Docker config file, and re-reads it after it changes', async () => {
    const file = path.join(dir, 'rotating.json');
    const key = `http://${registry.host}`;
    await writeConfig(file, { auths: { [key]: { auth: basicToken({ ...puller, password: 'stale' }) } } });
    const c = testRegistryClient([{ host: registry.host, insecure: true, auth: { dockerConfig: file } }]);
    const ref = parseReference(`${registry.host}/team/app:v1`);
    try {
      const stale = await codedFailure(c.resolveDigest(ref, testSignal()));
      expect(stale.code).toBe('REGISTRY_UNAUTHORIZED');
      // Rotated on disk (a Secret volume update, a refresh job): the same client picks it up.
      await writeConfig(file, { auths: { [key]: { username: puller.username, password: puller.password } } });
      expect(await c.resolveDigest(ref, testSignal())).toBe(pushed.digest);
    } finally {
      await c.close();
    }
  });

  it('runs the credHelpers program for the registry with the registry on stdin', async () => {
    const bin = path.join(dir, 'bin');
    const seen = path.join(dir, 'helper-stdin');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(bin, { recursive: true });
    const helper = path.join(bin, 'docker-credential-provenant-test');
    await writeFile(
      helper,
      `#!/bin/sh\n[ "$1" = get ] || exit 3\ncat > '${seen}'\nprintf '%s' '${JSON.stringify({ ServerURL: registry.host, Username: puller.username, Secret: puller.password })}'\n`,
    );
    await chmod(helper, 0o755);
    const file = path.join(dir, 'helpers.json');
    await writeConfig(file, { credHelpers: { [registry.host]: 'provenant-test' } });
    const savedPath = process.env['PATH'];
    process.env['PATH'] = `${bin}:${savedPath ?? ''}`;
    const c = testRegistryClient([{ host: registry.host, insecure: true, auth: { dockerConfig: file } }]);
    try {
      expect(await c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), testSignal())).toBe(
        pushed.digest,
      );
      const { readFile } = await import('node:fs/promises');
      expect(await readFile(seen, 'utf8')).toBe(registry.host);
    } finally {
      process.env['PATH'] = savedPath;
      await c.close();
    }
  });

  it('reports a missing helper as REGISTRY_CREDENTIALS_UNAVAILABLE, a transient failure', async () => {
    const file = path.join(dir, 'missing-helper.json');
    await writeConfig(file, { credsStore: 'does-not-exist' });
    const c = testRegistryClient([{ host: registry.host, insecure: true, auth: { dockerConfig: file } }]);
    const error = await codedFailure(
      c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), testSignal()),
    );
    await c.close();
    expect(error.code).toBe('REGISTRY_CREDENTIALS_UNAVAILABLE');
    expect(error.transient).toBe(true);
    expect(error.message).toContain('docker-credential-does-not-exist');
    expect(error.message).toContain(`${registry.host}/team/app:v1`);
  });

  it('reports an unreadable config file as REGISTRY_CREDENTIALS_UNAVAILABLE without echoing its content', async () => {
    const file = path.join(dir, 'broken.json');
    await writeFile(file, '{"auths": {"x": {"auth": "c2VjcmV0LXBhc3N3b3Jk"}');
    const c = testRegistryClient([{ host: registry.host, insecure: true, auth: { dockerConfig: file } }]);
    const error = await codedFailure(
      c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), testSignal()),
    );
    await c.close();
    expect(error.code).toBe('REGISTRY_CREDENTIALS_UNAVAILABLE');
    expect(error.message).toContain(file);
    expect(error.message).not.toContain('c2VjcmV0');
  });
});
