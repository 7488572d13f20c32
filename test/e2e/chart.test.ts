/**
 * The Helm chart against real tools: `helm lint`, kubeconform (strict) with schemas generated from the
 * test kube-apiserver's OpenAPI (built-in kinds plus Gatekeeper's, cert-manager's and
 * prometheus-operator's CRDs), then `helm install`, `upgrade` and `uninstall` into that API server.
 * Without a kubelet no pod runs: test/integration/image/ is where the image runs the chart's config.
 */
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { applyCrds } from '../harness/gatekeeper.ts';
import {
  CHART_DIR,
  applyIntegrationCrds,
  helm,
  helmOk,
  kubeconform,
  type HelmBinary,
  manifestObjects,
  writeKubeconformSchemas,
} from '../harness/helm.ts';
import { applyKyvernoCrds } from '../harness/kyverno.ts';
import { RESOURCES, startKubeCluster, waitFor, type KubeCluster, type KubeObject } from '../harness/kube.ts';
import { makeCa } from '../harness/pki.ts';
import { makeTempDir } from '../harness/process.ts';

const NAMESPACE = 'provenant';
const RELEASE = 'pv';
const FULLNAME = 'pv-provenant';
const SERVICE_ACCOUNT = `system:serviceaccount:${NAMESPACE}:${FULLNAME}`;

Object.assign(RESOURCES, {
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Service: { plural: 'services', namespaced: true },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  PodDisruptionBudget: { plural: 'poddisruptionbudgets', namespaced: true },
  NetworkPolicy: { plural: 'networkpolicies', namespaced: true },
  Role: { plural: 'roles', namespaced: true },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  ClusterRole: { plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { plural: 'clusterrolebindings', namespaced: false },
  SubjectAccessReview: { plural: 'subjectaccessreviews', namespaced: false },
  ConstraintTemplate: { plural: 'constrainttemplates', namespaced: false },
  Provider: { plural: 'providers', namespaced: false },
  Assign: { plural: 'assign', namespaced: false },
  ServiceMonitor: { plural: 'servicemonitors', namespaced: true },
  PrometheusRule: { plural: 'prometheusrules', namespaced: true },
  Certificate: { plural: 'certificates', namespaced: true },
});

/** Every optional part on, except the constraint (its CRD comes from Gatekeeper's manager). */
const ALL_ON = {
  gatekeeper: { policies: { template: true, mutations: { enabled: true } } },
  redis: { enabled: true },
  metrics: {
    serviceMonitor: { enabled: true },
    prometheusRule: { enabled: true },
    grafanaDashboard: { enabled: true },
  },
};

/** The API server's verdict on whether Provenant's service account may do something. */
async function allowed(
  cluster: KubeCluster,
  attributes: { verb: string; resource: string; group?: string; namespace?: string; name?: string },
): Promise<boolean> {
  const res = await cluster.create({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    metadata: {} as KubeObject['metadata'], // a review is not stored: no name
    spec: { user: SERVICE_ACCOUNT, resourceAttributes: { group: '', ...attributes } },
  });
  if (res.status !== 201) throw new Error(`SubjectAccessReview: ${res.status} ${JSON.stringify(res.body)}`);
  return (res.body.status as { allowed?: boolean } | undefined)?.allowed === true;
}

describe('the Helm chart', () => {
  let cluster: KubeCluster;
  let dir: string;
  let gatekeeperCaPem: string;
  const valuesFile = (name: string, values: object): Promise<string> =>
    writeFile(path.join(dir, name), stringify(values)).then(() => path.join(dir, name));

  beforeAll(async () => {
    dir = await makeTempDir('chart');
    cluster = await startKubeCluster();
    await applyCrds(cluster);
    await applyKyvernoCrds(cluster);
    await applyIntegrationCrds(cluster);
    // Gatekeeper's chart keeps its CA in this Secret; the chart reads it (lookup) to trust Gatekeeper.
    gatekeeperCaPem = (await makeCa(dir, 'gatekeeper-ca')).certPem;
    await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gatekeeper-system' } });
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'gatekeeper-webhook-server-cert', namespace: 'gatekeeper-system' },
      data: { 'ca.crt': Buffer.from(gatekeeperCaPem).toString('base64') },
    });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it.each<HelmBinary>(['helm', 'helm4'])(
    'passes %s lint --strict (helm is Helm 3, helm4 Helm 4)',
    async (binary) => {
      const values = await valuesFile('lint.yaml', {
        ...ALL_ON,
        gatekeeper: { clientCA: { pem: gatekeeperCaPem } },
      });
      const out = await helmOk(['lint', '--strict', CHART_DIR, '-f', values], undefined, binary);
      expect(out).toContain('1 chart(s) linted, 0 chart(s) failed');
    },
  );

  it('renders only objects kubeconform accepts, strictly, against the API server schemas and the CRDs', async () => {
    const schemas = path.join(dir, 'schemas');
    expect(await writeKubeconformSchemas(cluster, schemas)).toBeGreaterThan(100);
    const renders = [
      {
        ...ALL_ON,
        gatekeeper: {
          clientCA: { pem: gatekeeperCaPem },
          policies: { template: true, constraint: { enabled: true } },
        },
      },
      {
        gatekeeper: { enabled: false },
        kyverno: { enabled: true, tokenAuth: { enabled: true }, policies: { enabled: true } },
        tls: { certManager: { enabled: true, issuerRef: { name: 'ca' }, caBundle: gatekeeperCaPem } },
        registries: [{ host: 'registry.acme.test', auth: { secret: { namespace: 'team', name: 'pull' } } }],
        redis: { external: { url: 'rediss://redis.acme.test:6380', passwordSecret: { name: 'redis-auth' } } },
        metrics: { prometheusRule: { enabled: true } },
      },
      {
        gatekeeper: { enabled: false },
        kyverno: {
          enabled: true,
          tokenAuth: { enabled: true },
          policies: { enabled: true, generation: 'clusterpolicy' },
        },
      },
    ];
    for (const [i, values] of renders.entries()) {
      const manifest = await helmOk([
        'template',
        RELEASE,
        CHART_DIR,
        '-n',
        NAMESPACE,
        '-f',
        await valuesFile(`render-${i}.yaml`, values),
      ]);
      // The constraint's kind is a CRD that Gatekeeper's manager creates from the template: no schema here.
      const result = await kubeconform(manifest, schemas, ['ProvenantVerifiedImages']);
      expect(result.stdout, result.stderr).toMatch(
        /Summary: \d+ resources found .* - Valid: \d+, Invalid: 0, Errors: 0, Skipped: [01]/,
      );
      expect(result.code, result.stdout).toBe(0);
    }
  });

  describe('installed into the API server', () => {
    let installed: KubeObject[];
    const tlsSecret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `${FULLNAME}-tls`, namespace: NAMESPACE },
    };
    const secretData = async (name: string): Promise<Record<string, string>> =>
      (await cluster.get({ ...tlsSecret, metadata: { name, namespace: NAMESPACE } })).body.data as Record<
        string,
        string
      >;
    const tlsData = (): Promise<Record<string, string>> => secretData(tlsSecret.metadata.name);
    /** What the chart generates and must keep: the certificate, Redis's password, the cache HMAC key. */
    const generated = async (): Promise<Record<string, string>[]> =>
      Promise.all([`${FULLNAME}-tls`, `${FULLNAME}-redis`, `${FULLNAME}-cache-hmac`].map(secretData));

    beforeAll(async () => {
      const values = await valuesFile('install.yaml', ALL_ON);
      await helmOk(
        ['install', RELEASE, CHART_DIR, '-n', NAMESPACE, '--create-namespace', '-f', values],
        cluster,
      );
      installed = manifestObjects(await helmOk(['get', 'manifest', RELEASE, '-n', NAMESPACE], cluster));
    });

    it('creates every object, and the API server keeps each as rendered', async () => {
      expect(installed.map((o) => o.kind).sort()).toEqual(
        expect.arrayContaining([
          'Deployment',
          'Service',
          'ServiceAccount',
          'PodDisruptionBudget',
          'NetworkPolicy',
          'ConfigMap',
          'Secret',
          'Provider',
          'ConstraintTemplate',
          'Assign',
          'ServiceMonitor',
          'PrometheusRule',
        ]),
      );
      for (const obj of installed) {
        const res = await cluster.get({
          ...obj,
          metadata: { ...obj.metadata, namespace: obj.metadata.namespace ?? NAMESPACE },
        });
        expect(res.status, `${obj.kind} ${obj.metadata.name}`).toBe(200);
      }
    });

    it('runs Provenant hardened: non-root, read-only, no capabilities, no token, a grace period covering the drain', async () => {
      const res = await cluster.get({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: FULLNAME, namespace: NAMESPACE },
      });
      const spec = (res.body as { spec: { replicas: number; template: { spec: Record<string, unknown> } } })
        .spec;
      const pod = spec.template.spec as {
        automountServiceAccountToken: boolean;
        terminationGracePeriodSeconds: number;
        securityContext: Record<string, unknown>;
        containers: {
          securityContext: Record<string, unknown>;
          lifecycle: { preStop: { sleep: { seconds: number } } };
          volumeMounts: { name: string; subPath?: string }[];
        }[];
      };
      expect(spec.replicas).toBe(3);
      expect(pod.automountServiceAccountToken).toBe(false);
      // preStop 5 + drainSeconds 10 + (bodyTimeoutMs 10000 + requestDeadlineMs 2500) / 1000 rounded up + 2.
      expect(pod.terminationGracePeriodSeconds).toBe(30);
      expect(pod.containers[0]?.lifecycle.preStop.sleep.seconds).toBe(5);
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      // Config and certificates are mounted as whole volumes (a subPath mount never sees the kubelet's
      // updates), and no checksum annotation restarts the pods: changes are reloaded in place.
      for (const mount of pod.containers[0]?.volumeMounts ?? [])
        expect(mount.subPath, mount.name).toBeUndefined();
      expect(JSON.stringify(spec.template)).not.toMatch(/checksum/);
      expect(pod.containers[0]?.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
    });

    it("serves a certificate for the Service, whose CA is the Providers' caBundle, and trusts Gatekeeper's CA", async () => {
      const data = await tlsData();
      const ca = new X509Certificate(Buffer.from(data['ca.crt'] ?? '', 'base64'));
      const cert = new X509Certificate(Buffer.from(data['tls.crt'] ?? '', 'base64'));
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.subjectAltName).toContain(`DNS:${FULLNAME}.${NAMESPACE}.svc`);
      for (const name of ['provenant', 'provenant-mutate']) {
        const provider = await cluster.get({
          apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
          kind: 'Provider',
          metadata: { name },
        });
        const providerSpec = (provider.body as { spec: { caBundle: string; url: string } }).spec;
        expect(providerSpec.caBundle).toBe(data['ca.crt']);
        expect(providerSpec.url).toMatch(
          new RegExp(`^https://${FULLNAME}\\.${NAMESPACE}\\.svc:8443/v1/(verify|mutate)$`),
        );
      }
      const clientCa = await cluster.get({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${FULLNAME}-client-ca`, namespace: NAMESPACE },
      });
      expect(((clientCa.body.data as Record<string, string>)['ca.crt'] ?? '').trim()).toBe(
        gatekeeperCaPem.trim(),
      );
      const config = await cluster.get({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${FULLNAME}-config`, namespace: NAMESPACE },
      });
      const server = (
        parse((config.body.data as Record<string, string>)['config.yaml'] ?? '') as {
          server: { tls: object };
        }
      ).server;
      expect(server.tls).toMatchObject({
        clientCA: '/etc/provenant/client-ca/ca.crt',
        cert: '/etc/provenant/tls/tls.crt',
      });
    });

    it('grants nothing while no registry Secret is named, and get/watch on exactly the named ones after an upgrade that keeps the generated certificate, Redis password and HMAC key', async () => {
      expect(
        await allowed(cluster, { verb: 'get', resource: 'secrets', namespace: 'team', name: 'pull' }),
      ).toBe(false);
      expect(
        await allowed(cluster, { verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io' }),
      ).toBe(false);
      const before = await generated();
      expect(before.map((data) => Object.keys(data).length)).toEqual([3, 1, 1]);
      const values = await valuesFile('upgrade.yaml', {
        ...ALL_ON,
        registries: [{ host: 'registry.acme.test', auth: { secret: { namespace: 'team', name: 'pull' } } }],
        kyverno: { enabled: true, tokenAuth: { enabled: true } },
      });
      await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } });
      await helmOk(['upgrade', RELEASE, CHART_DIR, '-n', NAMESPACE, '-f', values], cluster);
      expect(await generated()).toEqual(before);
      // The authorizer sees new Roles through an informer: wait for the grant, then check its limits.
      await waitFor('the registry Secret grant', 30_000, async () =>
        (await allowed(cluster, { verb: 'get', resource: 'secrets', namespace: 'team', name: 'pull' }))
          ? true
          : undefined,
      );
      expect(
        await allowed(cluster, { verb: 'watch', resource: 'secrets', namespace: 'team', name: 'pull' }),
      ).toBe(true);
      expect(
        await allowed(cluster, { verb: 'get', resource: 'secrets', namespace: 'team', name: 'other' }),
      ).toBe(false);
      expect(await allowed(cluster, { verb: 'list', resource: 'secrets', namespace: 'team' })).toBe(false);
      expect(
        await allowed(cluster, {
          verb: 'get',
          resource: 'secrets',
          namespace: NAMESPACE,
          name: `${FULLNAME}-tls`,
        }),
      ).toBe(false);
      expect(
        await allowed(cluster, { verb: 'create', resource: 'tokenreviews', group: 'authentication.k8s.io' }),
      ).toBe(true);
      const deployment = await cluster.get({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: FULLNAME, namespace: NAMESPACE },
      });
      expect(
        (deployment.body as { spec: { template: { spec: { automountServiceAccountToken: boolean } } } }).spec
          .template.spec.automountServiceAccountToken,
      ).toBe(true);
    });

    it('refuses invalid values at install, naming each one, and creates nothing', async () => {
      const cases: [object, RegExp][] = [
        [{ cache: { ttlSeconds: -1 } }, /\/cache\/ttlSeconds.*minimum/s],
        [{ validators: [{ name: 'v', type: 'gpg' }] }, /\/validators\/0/],
        [
          { registries: [{ host: 'docker.io', mirror: 'mirror.local/UPPER case' }] },
          /\/registries\/0\/mirror.*does not match pattern/s,
        ],
        [{ policy: [{ pattern: '', validator: 'deny' }] }, /\/policy\/0\/pattern/],
      ];
      for (const [i, [values, message]] of cases.entries()) {
        const file = await valuesFile(`invalid-${i}.yaml`, {
          ...values,
          gatekeeper: { clientCA: { pem: gatekeeperCaPem } },
        });
        const result = await helm(
          ['install', `bad-${i}`, CHART_DIR, '-n', 'bad', '--create-namespace', '-f', file],
          cluster,
        );
        expect(result.code, JSON.stringify(values)).not.toBe(0);
        expect(result.stderr).toMatch(message);
      }
      const releases = await helmOk(['list', '-A', '-q'], cluster);
      expect(releases.trim().split('\n')).toEqual([RELEASE]);
    });

    it('removes everything it created on helm uninstall', async () => {
      const current = manifestObjects(await helmOk(['get', 'manifest', RELEASE, '-n', NAMESPACE], cluster));
      await helmOk(['uninstall', RELEASE, '-n', NAMESPACE], cluster);
      for (const obj of current) {
        const res = await cluster.get({
          ...obj,
          metadata: { ...obj.metadata, namespace: obj.metadata.namespace ?? NAMESPACE },
        });
        expect(res.status, `${obj.kind} ${obj.metadata.name}`).toBe(404);
      }
    });
  });

  it('installs, upgrades keeping its certificate, and uninstalls with Helm 4 as well', async () => {
    const namespace = 'provenant-helm4';
    const values = await valuesFile('helm4.yaml', { gatekeeper: { clientCA: { pem: gatekeeperCaPem } } });
    const tls = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'h4-provenant-tls', namespace } };
    await helmOk(
      ['install', 'h4', CHART_DIR, '-n', namespace, '--create-namespace', '-f', values],
      cluster,
      'helm4',
    );
    const first = (await cluster.get(tls)).body.data as Record<string, string>;
    expect(first['tls.crt']).toBeDefined();
    await helmOk(
      ['upgrade', 'h4', CHART_DIR, '-n', namespace, '--reuse-values', '--set', 'replicaCount=2'],
      cluster,
      'helm4',
    );
    expect((await cluster.get(tls)).body.data).toEqual(first);
    await helmOk(['uninstall', 'h4', '-n', namespace], cluster, 'helm4');
    expect((await cluster.get(tls)).status).toBe(404);
  });
});
