/**
 * A real Kubernetes API on loopback: etcd and kube-apiserver built from the Go module proxy
 * (test/tools/install.sh e2e), static-token auth for an admin in system:masters, RBAC. There is no
 * kubelet or controller-manager: objects are stored, not run, which is all admission needs.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { issueCert, makeCa, type CertFiles } from './pki.ts';
import { LOOPBACK_HOST, freePort, makeTempDir, startProcess, type ServerProcess } from './process.ts';
import { toolPath } from './tools.ts';

const run = promisify(execFile);
const API_READY_TIMEOUT_MS = 90_000;
const POLL_INTERVAL_MS = 250;

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [field: string]: unknown;
}

export interface KubeResponse {
  status: number;
  body: Record<string, unknown>;
  /** The Warning headers' texts (admission warnings, e.g. from enforcementAction: warn). */
  warnings: string[];
}

export interface KubeCluster {
  readonly url: string;
  /** PEM of the CA that signed the API server's certificate. */
  readonly caPem: string;
  readonly token: string;
  /** A kubeconfig file for the admin, for other processes (Gatekeeper). */
  readonly kubeconfig: string;
  create(obj: KubeObject, opts?: { dryRun?: boolean }): Promise<KubeResponse>;
  get(obj: KubeObject): Promise<KubeResponse>;
  /** PUT: replaces the stored object (an update, which watchers see as MODIFIED). */
  replace(obj: KubeObject): Promise<KubeResponse>;
  /**
   * PATCH with a strategic merge patch (what kubectl sends), of the object or of one of its
   * subresources: `kubectl debug` adds a container with one to `pods/NAME/ephemeralcontainers`.
   */
  patch(
    obj: KubeObject,
    patch: object,
    opts?: { subresource?: string; dryRun?: boolean },
  ): Promise<KubeResponse>;
  remove(obj: KubeObject): Promise<KubeResponse>;
  /** GET of any API path (e.g. /openapi/v2). */
  getPath(path: string): Promise<KubeResponse>;
  /** Creates the object; fails with the API's message unless it is created (or already exists). */
  apply(obj: KubeObject): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/** Plural and scope of the kinds the tests create; CRD kinds are added by the suites that need them. */
export const RESOURCES: Record<string, { plural: string; namespaced: boolean }> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  Secret: { plural: 'secrets', namespaced: true },
  Pod: { plural: 'pods', namespaced: true },
  ReplicationController: { plural: 'replicationcontrollers', namespaced: true },
  Deployment: { plural: 'deployments', namespaced: true },
  StatefulSet: { plural: 'statefulsets', namespaced: true },
  DaemonSet: { plural: 'daemonsets', namespaced: true },
  ReplicaSet: { plural: 'replicasets', namespaced: true },
  Job: { plural: 'jobs', namespaced: true },
  CronJob: { plural: 'cronjobs', namespaced: true },
  CustomResourceDefinition: { plural: 'customresourcedefinitions', namespaced: false },
  ValidatingWebhookConfiguration: { plural: 'validatingwebhookconfigurations', namespaced: false },
  MutatingWebhookConfiguration: { plural: 'mutatingwebhookconfigurations', namespaced: false },
};

export function resourcePath(obj: KubeObject): string {
  const resource = RESOURCES[obj.kind];
  if (resource === undefined) throw new Error(`kube harness: no resource known for kind ${obj.kind}`);
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${obj.metadata.namespace ?? 'default'}` : '';
  return `${base}${ns}/${resource.plural}`;
}

export async function startKubeCluster(): Promise<KubeCluster> {
  const dir = await makeTempDir('kube');
  const etcd = await startEtcd(dir);
  let apiserver: ServerProcess | undefined;
  try {
    const ca = await makeCa(dir, 'kube-ca');
    const serving = await issueCert(dir, ca, 'kube-apiserver', 'server');
    const token = `admin-${Date.now()}`;
    const port = await freePort();
    apiserver = await startApiServer(dir, etcd.url, serving, token, port);
    const url = `https://${LOOPBACK_HOST}:${port}`;
    const agent = new Agent({ connect: { ca: ca.certPem } });
    const call = async (
      method: string,
      p: string,
      body?: unknown,
      contentType = 'application/json',
    ): Promise<KubeResponse> => {
      const res = await request(`${url}${p}`, {
        method: method as 'GET',
        dispatcher: agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.body.text();
      const warning = res.headers['warning'];
      const warnings = (Array.isArray(warning) ? warning : warning === undefined ? [] : [warning]).map((w) =>
        // RFC 7234 warn-text: 299 - "quoted text", with \" and \\ escaped.
        w.replace(/^\d{3} \S+ "(.*)"$/s, '$1').replace(/\\(.)/g, '$1'),
      );
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { text };
      }
      return { status: res.statusCode, body: parsed, warnings };
    };
    await waitForApi(call, () => apiserver?.output() ?? '');
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(url, ca.certPem, token));
    const server = apiserver;
    const cluster: KubeCluster = {
      url,
      caPem: ca.certPem,
      token,
      kubeconfig,
      create: (obj, opts) =>
        call('POST', `${resourcePath(obj)}${opts?.dryRun === true ? '?dryRun=All' : ''}`, obj),
      get: (obj) => call('GET', `${resourcePath(obj)}/${obj.metadata.name}`),
      replace: (obj) => call('PUT', `${resourcePath(obj)}/${obj.metadata.name}`, obj),
      patch: (obj, patch, opts) =>
        call(
          'PATCH',
          `${resourcePath(obj)}/${obj.metadata.name}${opts?.subresource === undefined ? '' : `/${opts.subresource}`}${opts?.dryRun === true ? '?dryRun=All' : ''}`,
          patch,
          'application/strategic-merge-patch+json',
        ),
      remove: (obj) => call('DELETE', `${resourcePath(obj)}/${obj.metadata.name}`),
      getPath: (p) => call('GET', p),
      apply: async (obj) => {
        const res = await cluster.create(obj);
        if (res.status !== 201 && res.status !== 409) {
          throw new Error(
            `creating ${obj.kind} ${obj.metadata.name}: ${res.status} ${JSON.stringify(res.body)}`,
          );
        }
      },
      output: () => `--- etcd ---\n${etcd.process.output()}\n--- kube-apiserver ---\n${server.output()}`,
      stop: async () => {
        await agent.close();
        await server.stop();
        await etcd.process.stop();
      },
    };
    return cluster;
  } catch (err) {
    await apiserver?.stop();
    await etcd.process.stop();
    throw err;
  }
}

async function startEtcd(dir: string): Promise<{ url: string; process: ServerProcess }> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://${LOOPBACK_HOST}:${clientPort}`;
  const peer = `http://${LOOPBACK_HOST}:${peerPort}`;
  const server = await startProcess({
    name: 'etcd',
    command: toolPath('etcd'),
    args: [
      '--data-dir',
      path.join(dir, 'etcd'),
      '--listen-client-urls',
      url,
      '--advertise-client-urls',
      url,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `default=${peer}`,
      '--unsafe-no-fsync',
      '--log-level',
      'warn',
    ],
    ready: { kind: 'http', url: `${url}/health` },
    readyTimeoutMs: 30_000,
    ownedDirs: [dir],
  });
  return { url, process: server };
}

async function startApiServer(
  dir: string,
  etcdUrl: string,
  serving: CertFiles,
  token: string,
  port: number,
): Promise<ServerProcess> {
  const saKey = path.join(dir, 'sa.key');
  await run('openssl', ['genrsa', '-out', saKey, '2048']);
  const tokens = path.join(dir, 'tokens.csv');
  await writeFile(tokens, `${token},admin,admin,"system:masters"\n`);
  return startProcess({
    name: 'kube-apiserver',
    command: toolPath('kube-apiserver'),
    args: [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${LOOPBACK_HOST}`,
      `--advertise-address=${LOOPBACK_HOST}`,
      `--secure-port=${port}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--token-auth-file=${tokens}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.96.0.0/24',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${saKey}`,
      `--service-account-signing-key-file=${saKey}`,
      // No controller-manager creates the "default" service account the ServiceAccount plugin wants.
      '--disable-admission-plugins=ServiceAccount',
      // Image volumes (spec.volumes[].image) are beta and off by default in 1.34 (pkg/features): without
      // the gate the API server drops the field, and the e2e suite could not show them verified.
      '--feature-gates=ImageVolume=true',
      '--v=1',
    ],
    ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
    readyTimeoutMs: API_READY_TIMEOUT_MS,
  });
}

async function waitForApi(
  call: (method: string, p: string) => Promise<KubeResponse>,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + API_READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await call('GET', '/readyz');
      const ns = res.status === 200 ? await call('GET', '/api/v1/namespaces/default') : undefined;
      if (ns?.status === 200) return;
      last = `readyz ${res.status}, default namespace ${ns?.status ?? '-'}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(POLL_INTERVAL_MS);
  }
  throw new Error(`kube-apiserver not ready within ${API_READY_TIMEOUT_MS} ms (${last})\n${output()}`);
}

function kubeconfigYaml(url: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: { server: "${url}", certificate-authority-data: "${ca}" }
users:
  - name: admin
    user: { token: "${token}" }
contexts:
  - name: e2e
    context: { cluster: e2e, user: admin }
current-context: e2e
`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than undefined, or fails naming what it waited for. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(POLL_INTERVAL_MS);
  }
}
