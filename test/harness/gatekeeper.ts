/**
 * The real Gatekeeper manager, out of cluster: its CRDs from the module's deploy/gatekeeper.yaml, its
 * own serving certificate (also the client certificate it presents to external data providers),
 * `--disable-cert-rotation`, and webhook configurations that reach it by `clientConfig.url`.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { RESOURCES, waitFor, type KubeCluster, type KubeObject } from './kube.ts';
import { issueCert, makeCa, type CertFiles } from './pki.ts';
import { LOOPBACK_HOST, freePort, makeTempDir, startProcess, type ServerProcess } from './process.ts';
import { toolPath } from './tools.ts';

const run = promisify(execFile);

/** Keep in step with GO_REPLACE_TOOLS in test/tools/install.sh. */
export const GATEKEEPER_MODULE = 'github.com/open-policy-agent/gatekeeper/v3@v3.20.1';
const GATEKEEPER_READY_TIMEOUT_MS = 90_000;
/** Generous for a loaded 2-core CI machine; Gatekeeper's chart uses 3 s (validating) and 1 s (mutating). */
const WEBHOOK_TIMEOUT_S = 10;

export interface RunningGatekeeper {
  /** The CA of Gatekeeper's certificate: what a provider's server.tls.clientCA must trust. */
  readonly ca: CertFiles;
  output(): string;
  stop(): Promise<void>;
}

/** Gatekeeper's custom resources the suites create. */
Object.assign(RESOURCES, {
  ConstraintTemplate: { plural: 'constrainttemplates', namespaced: false },
  Provider: { plural: 'providers', namespaced: false },
  Assign: { plural: 'assign', namespaced: false },
  Config: { plural: 'configs', namespaced: true },
});

export async function startGatekeeper(cluster: KubeCluster): Promise<RunningGatekeeper> {
  await applyCrds(cluster);
  await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gatekeeper-system' } });
  const dir = await makeTempDir('gatekeeper');
  const ca = await makeCa(dir, 'gatekeeper-ca');
  const cert = await issueCert(dir, ca, 'gatekeeper-webhook', 'server-and-client');
  const certDir = path.join(dir, 'certs');
  await mkdir(certDir);
  await copyFile(cert.cert, path.join(certDir, 'tls.crt'));
  await copyFile(cert.key, path.join(certDir, 'tls.key'));
  const [port, healthPort] = [await freePort(), await freePort()];
  const server: ServerProcess = await startProcess({
    name: 'gatekeeper',
    command: toolPath('gatekeeper'),
    args: [
      `--port=${port}`,
      `--host=${LOOPBACK_HOST}`,
      `--cert-dir=${certDir}`,
      '--disable-cert-rotation',
      // Gatekeeper names its status objects after its Pod; out of cluster it has none.
      '--debug-use-fake-pod',
      `--health-addr=${LOOPBACK_HOST}:${healthPort}`,
      '--metrics-addr=0',
      '--operation=webhook',
      '--operation=mutation-webhook',
      // generate: the constraint CRD of each ConstraintTemplate is created by this operation.
      '--operation=generate',
      '--external-data-provider-response-cache-ttl=1s',
      '--enable-k8s-native-validation=false',
      '--shutdown-delay=0',
      '--log-denies',
    ],
    env: { ...process.env, KUBECONFIG: cluster.kubeconfig, POD_NAMESPACE: 'gatekeeper-system' },
    ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
    readyTimeoutMs: GATEKEEPER_READY_TIMEOUT_MS,
    ownedDirs: [dir],
  });
  try {
    await registerWebhooks(cluster, `https://${LOOPBACK_HOST}:${port}`, ca.certPem);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { ca, output: () => server.output(), stop: () => server.stop() };
}

async function gatekeeperDeployYaml(): Promise<string> {
  const { stdout } = await run('go', ['env', 'GOMODCACHE']);
  const [module, version] = GATEKEEPER_MODULE.split('@') as [string, string];
  const file = path.join(stdout.trim(), `${module}@${version}`, 'deploy', 'gatekeeper.yaml');
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`Gatekeeper's manifests are not at ${file}: run \`bash test/tools/install.sh e2e\``, {
      cause: err,
    });
  }
}

/** Gatekeeper's CRDs (Provider, ConstraintTemplate, Assign...), established, without the manager. */
export async function applyCrds(cluster: KubeCluster): Promise<void> {
  const crds = parseAllDocuments(await gatekeeperDeployYaml())
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o?.kind === 'CustomResourceDefinition');
  for (const crd of crds) await cluster.apply(crd);
  for (const crd of crds) await waitForCrd(cluster, crd.metadata.name);
}

export async function waitForCrd(cluster: KubeCluster, name: string): Promise<void> {
  const crd = { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } };
  await waitFor(`CRD ${name} to be established`, 60_000, async () => {
    const res = await cluster.get(crd);
    const conditions = ((res.body.status as { conditions?: { type: string; status: string }[] } | undefined)
      ?.conditions ?? []) as { type: string; status: string }[];
    return conditions.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
  });
}

/**
 * Pods and workloads only: enough for these suites, and nothing else waits on Gatekeeper. Containers
 * `kubectl debug` adds come through the pods/ephemeralcontainers subresource, which a `pods` rule does
 * not match: Gatekeeper's chart lists it in validatingWebhookSubResources and
 * mutatingWebhookSubResources by default, and so does this.
 */
const RULES = [
  {
    apiGroups: [''],
    apiVersions: ['v1'],
    resources: ['pods', 'pods/ephemeralcontainers', 'replicationcontrollers'],
  },
  {
    apiGroups: ['apps'],
    apiVersions: ['v1'],
    resources: ['deployments', 'statefulsets', 'daemonsets', 'replicasets'],
  },
  { apiGroups: ['batch'], apiVersions: ['v1'], resources: ['jobs', 'cronjobs'] },
].map((r) => ({ ...r, operations: ['CREATE', 'UPDATE'], scope: '*' }));

async function registerWebhooks(cluster: KubeCluster, base: string, caPem: string): Promise<void> {
  const caBundle = Buffer.from(caPem).toString('base64');
  const webhook = (name: string, p: string): object => ({
    name,
    clientConfig: { url: `${base}${p}`, caBundle },
    rules: RULES,
    failurePolicy: 'Fail',
    sideEffects: 'None',
    admissionReviewVersions: ['v1', 'v1beta1'],
    timeoutSeconds: WEBHOOK_TIMEOUT_S,
  });
  await cluster.apply({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'gatekeeper-mutating-webhook-configuration' },
    webhooks: [{ ...webhook('mutation.gatekeeper.sh', '/v1/mutate'), reinvocationPolicy: 'Never' }],
  });
  await cluster.apply({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'gatekeeper-validating-webhook-configuration' },
    webhooks: [webhook('validation.gatekeeper.sh', '/v1/admit')],
  });
}
