/**
 * Registry credentials from a Kubernetes `kubernetes.io/dockerconfigjson` Secret, read through a real
 * kube-apiserver with `@kubernetes/client-node` and watched: a rotated Secret is used without a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../provider/src/reference/index.ts';
import { RegistryClient } from '../../provider/src/registry/index.ts';
import { ProvenantError } from '../../provider/src/types/errors.ts';
import { pushRandomImage, type PushedManifest } from '../harness/images.ts';
import { startKubeCluster, waitFor, type KubeCluster, type KubeObject } from '../harness/kube.ts';
import { basicToken } from '../harness/oci-push.ts';
import { startDistributionRegistry, type RegistryServer } from '../harness/registry.ts';

const puller = { username: 'puller', password: 'fresh-token' };

function pullSecret(registry: string, password: string): KubeObject {
  const config = { auths: { [registry]: { auth: basicToken({ ...puller, password }) } } };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'registry-pull', namespace: 'default' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify(config)).toString('base64') },
  };
}

describe('registry credentials from a watched Kubernetes Secret', () => {
  let cluster: KubeCluster;
  let registry: RegistryServer;
  let pushed: PushedManifest;
  let savedKubeconfig: string | undefined;

  beforeAll(async () => {
    [cluster, registry] = await Promise.all([
      startKubeCluster(),
      startDistributionRegistry({ htpasswd: puller }),
    ]);
    pushed = await pushRandomImage(registry.url, 'team/app', 'v1', { auth: puller });
    // client-node's default loading, as in a cluster without a service account: KUBECONFIG.
    savedKubeconfig = process.env['KUBECONFIG'];
    process.env['KUBECONFIG'] = cluster.kubeconfig;
  });
  afterAll(async () => {
    if (savedKubeconfig === undefined) delete process.env['KUBECONFIG'];
    else process.env['KUBECONFIG'] = savedKubeconfig;
    await Promise.all([cluster?.stop(), registry?.stop()]);
  });

  it('uses the Secret, and picks up a rotated Secret without a restart', async () => {
    await cluster.apply(pullSecret(registry.host, 'expired-token'));
    const client = new RegistryClient({
      registries: [
        {
          host: registry.host,
          insecure: true,
          auth: { secret: { namespace: 'default', name: 'registry-pull' } },
        },
      ],
      requestTimeoutMs: 3000,
      maxRetries: 0,
      maxManifestBytes: 4 << 20,
    });
    const ref = parseReference(`${registry.host}/team/app:v1`);
    try {
      const stale = await client.resolveDigest(ref, AbortSignal.timeout(8000)).catch((e: unknown) => e);
      expect(stale).toBeInstanceOf(ProvenantError);
      expect((stale as ProvenantError).code).toBe('REGISTRY_UNAUTHORIZED');
      expect((stale as ProvenantError).message).toContain(`registry ${registry.host} refused access`);

      // Rotate the Secret in place (an update, as a token refresher does); the watch delivers it.
      const res = await cluster.replace(pullSecret(registry.host, puller.password));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const digest = await waitFor('the rotated Secret to be used', 10_000, async () =>
        client.resolveDigest(ref, AbortSignal.timeout(5000)).catch(() => undefined),
      );
      expect(digest).toBe(pushed.digest);
    } finally {
      await client.close();
    }
  });

  it('reports a missing Secret as REGISTRY_CREDENTIALS_UNAVAILABLE, a transient failure', async () => {
    const client = new RegistryClient({
      registries: [
        { host: registry.host, insecure: true, auth: { secret: { namespace: 'default', name: 'nope' } } },
      ],
      requestTimeoutMs: 3000,
      maxRetries: 0,
      maxManifestBytes: 4 << 20,
    });
    try {
      const error = await client
        .resolveDigest(parseReference(`${registry.host}/team/app:v1`), AbortSignal.timeout(8000))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProvenantError);
      expect((error as ProvenantError).code).toBe('REGISTRY_CREDENTIALS_UNAVAILABLE');
      expect((error as ProvenantError).transient).toBe(true);
      expect((error as ProvenantError).message).toContain('Secret default/nope');
      expect((error as ProvenantError).message).toContain('does not exist');
    } finally {
      await client.close();
    }
  });
});
