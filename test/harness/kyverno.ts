/**
 * The real Kyverno admission controller (`kyverno-controller`, Kyverno's cmd/kyverno), out of cluster:
 * its CRDs from the module's config/crds/, the `kyverno` namespace, its ConfigMaps, the admission
 * controller's service account, its own webhook certificates (it writes the Secrets and registers the
 * webhooks at --serverIP), and the scoped token it adds to service calls read from
 * KYVERNO_SCOPED_TOKEN_PATH, a token the test requests from the test kube-apiserver.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { parseAllDocuments } from 'yaml';
import { waitForCrd } from './gatekeeper.ts';
import { RESOURCES, type KubeCluster, type KubeObject } from './kube.ts';
import { LOOPBACK_HOST, freePort, makeTempDir, startProcess, type ServerProcess } from './process.ts';
import { toolPath } from './tools.ts';

const run = promisify(execFile);

/** Keep in step with GO_REPLACE_TOOLS in test/tools/install.sh. */
export const KYVERNO_MODULE = 'github.com/kyverno/kyverno@v1.19.1';
export const KYVERNO_NAMESPACE = 'kyverno';
export const KYVERNO_SERVICE_ACCOUNT = 'kyverno-admission-controller';
/** Kyverno's chart default for apiCallToken.audience. */
export const KYVERNO_TOKEN_AUDIENCE = 'kyverno-svc.kyverno.io';
const KYVERNO_READY_TIMEOUT_MS = 120_000;

/** The kinds the Kyverno suites create. */
Object.assign(RESOURCES, {
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Role: { plural: 'roles', namespaced: true },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  ValidatingPolicy: { plural: 'validatingpolicies', namespaced: false },
  MutatingPolicy: { plural: 'mutatingpolicies', namespaced: false },
  ClusterPolicy: { plural: 'clusterpolicies', namespaced: false },
  GlobalContextEntry: { plural: 'globalcontextentries', namespaced: false },
});

export interface KyvernoOptions {
  /** The file Kyverno reads its service-call token from (KYVERNO_SCOPED_TOKEN_PATH). */
  readonly tokenFile: string;
  /** PEM bundle Kyverno's CEL http client trusts (SSL_CERT_FILE): http.Client(caBundle) is unusable in 1.19.1. */
  readonly trustedCaFile: string;
}

export interface RunningKyverno {
  output(): string;
  stop(): Promise<void>;
}

export async function startKyverno(cluster: KubeCluster, opts: KyvernoOptions): Promise<RunningKyverno> {
  await applyKyvernoCrds(cluster);
  await cluster.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: KYVERNO_NAMESPACE } });
  for (const name of ['kyverno', 'kyverno-metrics']) {
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: KYVERNO_NAMESPACE },
    });
  }
  await cluster.apply(serviceAccount(KYVERNO_NAMESPACE, KYVERNO_SERVICE_ACCOUNT));
  const dir = await makeTempDir('kyverno');
  const [port, metricsPort] = [await freePort(), await freePort()];
  const server: ServerProcess = await startProcess({
    name: 'kyverno',
    command: toolPath('kyverno-controller'),
    args: [
      `--kubeconfig=${cluster.kubeconfig}`,
      `--serverIP=${LOOPBACK_HOST}:${port}`,
      `--webhookServerHost=${LOOPBACK_HOST}`,
      `--webhookServerPort=${port}`,
      '--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca',
      '--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair',
      '--disableMetrics',
      `--metricsPort=${metricsPort}`,
      '--controllerRuntimeMetricsAddress=0',
      '--admissionReports=false',
      // Since 1.19 service calls to loopback are refused by default; Provenant listens on 127.0.0.1 here.
      '--httpBlocklist=169.254.169.254/32',
      '--v=2',
    ],
    env: {
      ...process.env,
      KYVERNO_NAMESPACE,
      KYVERNO_SERVICEACCOUNT_NAME: KYVERNO_SERVICE_ACCOUNT,
      KYVERNO_DEPLOYMENT: 'kyverno-admission-controller',
      KYVERNO_POD_NAME: 'kyverno-admission-controller-e2e',
      INIT_CONFIG: 'kyverno',
      METRICS_CONFIG: 'kyverno-metrics',
      KYVERNO_SCOPED_TOKEN_PATH: opts.tokenFile,
      FLAG_HTTP_BLOCKLIST: '169.254.169.254/32',
      SSL_CERT_FILE: opts.trustedCaFile,
    },
    ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
    readyTimeoutMs: KYVERNO_READY_TIMEOUT_MS,
    ownedDirs: [dir],
  });
  return { output: () => server.output(), stop: () => server.stop() };
}

export function serviceAccount(namespace: string, name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } };
}

/** A TokenRequest (authentication.k8s.io/v1) for a service account, bound to `audience`. */
export async function requestToken(
  cluster: KubeCluster,
  namespace: string,
  name: string,
  audience: string,
): Promise<string> {
  const agent = new Agent({ connect: { ca: cluster.caPem } });
  try {
    const res = await request(`${cluster.url}/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      method: 'POST',
      dispatcher: agent,
      headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: [audience], expirationSeconds: 3600 },
      }),
    });
    const body = (await res.body.json()) as { status?: { token?: string } };
    const token = body.status?.token;
    if (res.statusCode !== 201 || token === undefined)
      throw new Error(`TokenRequest for ${namespace}/${name}: ${res.statusCode} ${JSON.stringify(body)}`);
    return token;
  } finally {
    await agent.close();
  }
}

/** Requests a token for Kyverno's admission controller and writes it where Kyverno reads it. */
export async function writeKyvernoToken(cluster: KubeCluster, file: string): Promise<void> {
  await writeFile(
    file,
    await requestToken(cluster, KYVERNO_NAMESPACE, KYVERNO_SERVICE_ACCOUNT, KYVERNO_TOKEN_AUDIENCE),
    { mode: 0o600 },
  );
}

async function crdDir(): Promise<string> {
  const { stdout } = await run('go', ['env', 'GOMODCACHE']);
  const [module, version] = KYVERNO_MODULE.split('@') as [string, string];
  return path.join(stdout.trim(), `${module}@${version}`, 'config', 'crds');
}

/** Kyverno's CRDs (from its module, which the tools installer downloads), applied and established. */
export async function applyKyvernoCrds(cluster: KubeCluster): Promise<void> {
  const root = await crdDir();
  let files: string[];
  try {
    files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.yaml'));
  } catch (err) {
    throw new Error(`Kyverno's CRDs are not at ${root}: run \`bash test/tools/install.sh e2e\``, {
      cause: err,
    });
  }
  const crds: KubeObject[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(path.join(root, file), 'utf8'))) {
      const obj = doc.toJS() as KubeObject | null;
      if (obj?.kind === 'CustomResourceDefinition') crds.push(obj);
    }
  }
  for (const crd of crds) await cluster.apply(crd);
  for (const crd of crds) await waitForCrd(cluster, crd.metadata.name);
}
