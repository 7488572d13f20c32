/**
 * Gatekeeper end to end: etcd, kube-apiserver and the Gatekeeper manager built from the Go module
 * proxy, Provenant serving /v1/verify and /v1/mutate with mTLS against Gatekeeper's client
 * certificate, images in a real registry, and the shipped gatekeeper/ manifests (Providers pointed at
 * this Provenant). Pods are created, not run: there is no kubelet.
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatekeeper, waitForCrd, type RunningGatekeeper } from '../harness/gatekeeper.ts';
import { pushRandomImage, type PushedManifest } from '../harness/images.ts';
import {
  RESOURCES,
  startKubeCluster,
  waitFor,
  type KubeCluster,
  type KubeObject,
  type KubeResponse,
} from '../harness/kube.ts';
import { issueCert, makeCa } from '../harness/pki.ts';
import { makeTempDir } from '../harness/process.ts';
import { PROJECT_ROOT, startProvenant, type RunningProvenant } from '../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../harness/registry.ts';
import { toolPath } from '../harness/tools.ts';

const run = promisify(execFile);
const SUITE = 'policies/gatekeeper/verified-images/suite.yaml';
const TEMPLATE = 'gatekeeper/templates/provenantverifiedimages.yaml';
const ENFORCED_TIMEOUT_MS = 60_000;

RESOURCES['ProvenantVerifiedImages'] = { plural: 'provenantverifiedimages', namespaced: false };

async function manifests(file: string): Promise<KubeObject[]> {
  return parseAllDocuments(await readFile(path.join(PROJECT_ROOT, file), 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

async function manifest(file: string): Promise<KubeObject> {
  const [first] = await manifests(file);
  if (first === undefined) throw new Error(`${file} holds no object`);
  return first;
}

function pod(name: string, image: string, namespace = 'default'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: { containers: [{ name: 'app', image }] },
  };
}

function deployment(name: string, image: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } },
    },
  };
}

const podImage = (o: Record<string, unknown>): unknown =>
  (o as { spec?: { containers?: { image?: string }[] } }).spec?.containers?.[0]?.image;
const templateImage = (o: Record<string, unknown>): unknown =>
  (o as { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } }).spec?.template?.spec
    ?.containers?.[0]?.image;
const message = (body: Record<string, unknown>): string =>
  typeof body.message === 'string' ? body.message : JSON.stringify(body);

describe('Gatekeeper with Provenant', () => {
  let registry: RegistryServer;
  let cluster: KubeCluster;
  let gatekeeper: RunningGatekeeper;
  let provenant: RunningProvenant;
  let config: string;
  let trusted: PushedManifest;
  let untrusted: PushedManifest;
  let constraints: Record<'deny' | 'warn', KubeObject>;
  let dir: string;
  let provenantCaPem: string;

  let active: KubeObject | undefined;

  /** Replaces the active constraint with `next` and waits until Gatekeeper enforces it. */
  async function useConstraint(next: KubeObject, enforced: () => Promise<boolean>): Promise<void> {
    if (active !== undefined) await cluster.remove(active);
    await cluster.remove(next);
    active = next;
    await waitFor(`constraint ${next.metadata.name} to be created`, ENFORCED_TIMEOUT_MS, async () => {
      const res = await cluster.create(next);
      return res.status === 201 ? true : undefined;
    });
    await waitFor(`constraint ${next.metadata.name} to be enforced`, ENFORCED_TIMEOUT_MS, async () =>
      (await enforced()) ? true : undefined,
    );
  }

  /** What the API server does with `obj` (dry run): the verdict names policy test uses. */
  async function liveVerdict(obj: KubeObject): Promise<string> {
    const res = await cluster.create(obj, { dryRun: true });
    if (res.status === 201) return res.warnings.length > 0 ? 'warned' : 'allowed';
    return res.status === 403 ? 'denied' : `${res.status} ${message(res.body)}`;
  }

  const untrustedDenied = async (): Promise<boolean> =>
    (await cluster.create(pod('probe', untrusted.reference), { dryRun: true })).status === 403;

  beforeAll(async () => {
    dir = await makeTempDir('e2e-gatekeeper');
    registry = await startDistributionRegistry();
    trusted = await pushRandomImage(registry.url, 'trusted/app', 'v1');
    untrusted = await pushRandomImage(registry.url, 'untrusted/app', 'v1');
    cluster = await startKubeCluster();
    gatekeeper = await startGatekeeper(cluster);

    const ca = await makeCa(dir, 'provenant-ca');
    provenantCaPem = ca.certPem;
    const serving = await issueCert(dir, ca, 'provenant', 'server');
    await writeFile(path.join(dir, 'gatekeeper-ca.crt'), gatekeeper.ca.certPem);
    config = path.join(dir, 'provenant.yaml');
    await writeFile(
      config,
      `validators:
  - { name: deny, type: static, approve: false }
  - { name: allow, type: static, approve: true }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/trusted/*", validator: allow }
  - { pattern: "registry.example.com/trusted/*", validator: allow }
registries:
  - { host: "${registry.host}", insecure: true }
server:
  host: 127.0.0.1
  tls: { cert: ${serving.cert}, key: ${serving.key}, clientCA: ${path.join(dir, 'gatekeeper-ca.crt')} }
`,
    );
    provenant = await startProvenant([
      'node',
      'bin/provenant.mjs',
      'serve',
      '--config',
      config,
      '--port',
      '0',
    ]);

    // The shipped manifests, with the Providers pointed at this Provenant and its CA.
    for (const provider of await manifests('gatekeeper/provider.yaml')) {
      const spec = provider.spec as { url: string; caBundle: string; timeout: number };
      spec.url = spec.url.replace(/^https:\/\/[^/]+/, provenant.url);
      spec.caBundle = Buffer.from(ca.certPem).toString('base64');
      await cluster.apply(provider);
    }
    await cluster.apply(await manifest(TEMPLATE));
    await waitForCrd(cluster, 'provenantverifiedimages.constraints.gatekeeper.sh');
    for (const m of [
      'gatekeeper/mutations/pods/assign-pod-images.yaml',
      'gatekeeper/mutations/workloads/assign-workload-images.yaml',
    ]) {
      for (const assign of await manifests(m)) await cluster.apply(assign);
    }
    constraints = {
      deny: await manifest('gatekeeper/constraints/verified-images.yaml'),
      warn: await manifest('gatekeeper/constraints/verified-images-warn.yaml'),
    };
    await useConstraint(constraints.deny, untrustedDenied);
    // Mutators are ready when a dry-run Pod comes back pinned.
    await waitFor('the Pod mutators', ENFORCED_TIMEOUT_MS, async () => {
      const res = await cluster.create(pod('probe', trusted.reference), { dryRun: true });
      return podImage(res.body) === `${trusted.reference}@${trusted.digest}` ? true : undefined;
    });
  }, 600_000);

  afterAll(async () => {
    await provenant?.stop();
    await gatekeeper?.stop();
    await cluster?.stop();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("serves verifications only to clients with a certificate from Gatekeeper's CA, probes to anyone", async () => {
    const body = JSON.stringify({ kind: 'ProviderRequest', request: { keys: [trusted.reference] } });
    const withoutCert = new Agent({ connect: { ca: provenantCaPem } });
    try {
      const refused = await request(`${provenant.url}/v1/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        dispatcher: withoutCert,
      });
      expect(refused.statusCode).toBe(403);
      expect(await refused.body.text()).toContain('REQUEST_CLIENT_CERTIFICATE_REQUIRED');
      // kubelet probes present no client certificate.
      const probe = await request(`${provenant.url}/readyz`, { dispatcher: withoutCert });
      expect(probe.statusCode).toBe(200);
      await probe.body.dump();
    } finally {
      await withoutCert.close();
    }
    expect(provenant.output()).toMatch(/client certificates required for \/v1\//);
  });

  it('admits a Pod with a trusted tag and stores it pinned to the registry digest', async () => {
    const created = await cluster.create(pod('e2e-trusted', trusted.reference));
    expect(created.status, message(created.body)).toBe(201);
    const stored = await cluster.get(pod('e2e-trusted', trusted.reference));
    expect(podImage(stored.body)).toBe(`${registry.host}/trusted/app:v1@${trusted.digest}`);
  });

  it('pins the Pod template of a Deployment', async () => {
    const created = await cluster.create(deployment('e2e-trusted', trusted.reference));
    expect(created.status, message(created.body)).toBe(201);
    const stored = await cluster.get(deployment('e2e-trusted', trusted.reference));
    expect(templateImage(stored.body)).toBe(`${trusted.reference}@${trusted.digest}`);
  });

  it('denies a Pod with an untrusted image, naming the container and the image', async () => {
    const res = await cluster.create(pod('e2e-untrusted', untrusted.reference));
    expect(res.status).toBe(403);
    expect(message(res.body)).toContain('[verified-images]');
    expect(message(res.body)).toContain(`containers "app" has an untrusted image "${untrusted.reference}"`);
    expect(message(res.body)).toContain('POLICY_STATIC_DENY');
    expect((await cluster.get(pod('e2e-untrusted', untrusted.reference))).status).toBe(404);
  });

  it('gives the verdicts provenant policy test gives on every case of the samples suite', async () => {
    const { stdout } = await run(
      'node',
      ['bin/provenant.mjs', 'policy', 'test', '--json', '--config', config, '--suite', SUITE],
      { cwd: PROJECT_ROOT, env: { ...process.env, PROVENANT_OPA: toolPath('opa') } },
    );
    const offline = JSON.parse(stdout) as { test: string; passed: boolean; result: { verdict: string } }[];
    expect(offline.filter((c) => !c.passed)).toEqual([]);
    const suite = parse(await readFile(path.join(PROJECT_ROOT, SUITE), 'utf8')) as {
      tests: { name: string; constraint: string; cases: { object: string }[] }[];
    };
    const suiteFile = (f: string): string => path.join(path.dirname(SUITE), f);
    for (const test of suite.tests) {
      const expected = offline.filter((c) => c.test === test.name).map((c) => c.result.verdict);
      const objects = await Promise.all(test.cases.map((c) => manifest(suiteFile(c.object))));
      let live: string[] = [];
      // Gatekeeper ingests a constraint asynchronously: the verdicts must converge, then agree.
      await useConstraint(await manifest(suiteFile(test.constraint)), async () => {
        live = await Promise.all(objects.map((o) => liveVerdict(o)));
        return JSON.stringify(live) === JSON.stringify(expected);
      }).catch(() => undefined);
      expect(live, `live verdicts of suite test ${test.name}`).toEqual(expected);
    }
    expect(offline.map((c) => c.result.verdict)).toEqual(
      expect.arrayContaining(['allowed', 'denied', 'warned']),
    );
    await useConstraint(constraints.deny, untrustedDenied);
  });

  it('admits an untrusted Pod with a warning under a warn constraint', async () => {
    await useConstraint(
      constraints.warn,
      async () => (await liveVerdict(pod('probe', untrusted.reference))) === 'warned',
    );
    const res = await cluster.create(pod('untrusted-warned', untrusted.reference));
    expect(res.status, message(res.body)).toBe(201);
    expect(res.warnings.join('\n')).toContain(
      `[verified-images-warn] containers "app" has an untrusted image "${untrusted.reference}"`,
    );
    await useConstraint(constraints.deny, untrustedDenied);
  });

  it('leaves Deployments as written in pods-only mode, and still pins Pods', async () => {
    const workloads = await manifests('gatekeeper/mutations/workloads/assign-workload-images.yaml');
    for (const assign of workloads) await cluster.remove(assign);
    const unpinned = await waitFor('the workload mutators to be removed', ENFORCED_TIMEOUT_MS, async () => {
      const res = await cluster.create(deployment('pods-only', trusted.reference), { dryRun: true });
      return templateImage(res.body) === trusted.reference ? res : undefined;
    });
    expect(unpinned.status).toBe(201);
    const created = await cluster.create(deployment('pods-only', trusted.reference));
    expect(templateImage(created.body)).toBe(trusted.reference);
    const p = await cluster.create(pod('pods-only', trusted.reference));
    expect(podImage(p.body)).toBe(`${trusted.reference}@${trusted.digest}`);
    for (const assign of workloads) await cluster.apply(assign);
  });

  /** Requests Provenant answered on /v1/verify so far (its Prometheus counter). */
  async function verifyRequests(): Promise<number> {
    const agent = new Agent({ connect: { ca: provenantCaPem } });
    try {
      const res = await request(`${provenant.url}/metrics`, { dispatcher: agent });
      const text = await res.body.text();
      return [...text.matchAll(/^provenant_http_requests_total\{route="\/v1\/verify"[^}]*\} (\d+)/gm)]
        .map((m) => Number(m[1]))
        .reduce((a, b) => a + b, 0);
    } finally {
      await agent.close();
    }
  }

  it("keeps Connaisseur's features after provenant migrate connaisseur: detection mode, ignored namespaces, unchanged images", async () => {
    const values = path.join(dir, 'connaisseur-values.yaml');
    await writeFile(
      values,
      `application:
  validators: [{ name: deny, type: static, approve: false }]
  policy: [{ pattern: "*:*", validator: deny }]
  features:
    detectionMode: true
    automaticUnchangedApproval: true
    namespacedValidation: { mode: ignore }
`,
    );
    const out = path.join(dir, 'migrated');
    await run('node', ['bin/provenant.mjs', 'migrate', 'connaisseur', values, '--out', out], {
      cwd: PROJECT_ROOT,
    }).catch((err: { stdout: string }) => err);
    const [migrated] = parseAllDocuments(await readFile(path.join(out, 'gatekeeper.yaml'), 'utf8')).map(
      (d) => d.toJS() as KubeObject,
    );
    if (migrated === undefined) throw new Error('the migration wrote no constraint');
    expect(migrated.spec).toMatchObject({
      enforcementAction: 'warn',
      parameters: { automaticUnchangedApproval: true },
    });

    // Detection mode: a Pod Provenant denies is admitted, with the violation as a warning.
    await useConstraint(
      migrated,
      async () => (await liveVerdict(pod('probe', untrusted.reference))) === 'warned',
    );
    const detected = await cluster.create(pod('detected', untrusted.reference));
    expect(detected.status, message(detected.body)).toBe(201);
    expect(detected.warnings.join('\n')).toContain(
      `containers "app" has an untrusted image "${untrusted.reference}"`,
    );

    // A namespace labelled as Connaisseur's users label it is not validated at all.
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'ignored', labels: { 'securesystemsengineering.connaisseur/webhook': 'ignore' } },
    });
    const ignored = await cluster.create(pod('ignored', untrusted.reference, 'ignored'));
    expect(ignored.status, message(ignored.body)).toBe(201);
    expect(ignored.warnings.filter((w) => w.includes('verified-images'))).toEqual([]);

    // Enforced again: an UPDATE that keeps the (untrusted) image is admitted without asking Provenant,
    // one that changes it is verified and denied.
    const enforced = structuredClone(migrated);
    (enforced.spec as { enforcementAction: string }).enforcementAction = 'deny';
    await useConstraint(enforced, untrustedDenied);
    const stored = (await cluster.get(pod('detected', untrusted.reference))).body as KubeObject;
    const before = await verifyRequests();
    stored.metadata.labels = { touched: 'yes' };
    const unchanged = await cluster.replace(stored);
    expect(unchanged.status, message(unchanged.body)).toBe(200);
    expect(await verifyRequests()).toBe(before);
    const other = await pushRandomImage(registry.url, 'untrusted/app', 'update');
    const updated = unchanged.body as KubeObject;
    ((updated.spec as { containers: { image: string }[] }).containers[0] as { image: string }).image =
      other.reference;
    const changed = await cluster.replace(updated);
    expect(changed.status).toBe(403);
    expect(message(changed.body)).toContain(other.reference);
    expect(await verifyRequests()).toBeGreaterThan(before);
    await useConstraint(constraints.deny, untrustedDenied);
  });

  it('verifies and pins image volumes like container images', async () => {
    const withVolume = (name: string, image: string): KubeObject => {
      const p = pod(name, trusted.reference);
      (p.spec as Record<string, unknown>).volumes = [
        { name: 'models', image: { reference: image } },
        { name: 'scratch', emptyDir: {} },
      ];
      return p;
    };
    const pinned = await cluster.create(withVolume('volume-trusted', trusted.reference));
    expect(pinned.status, message(pinned.body)).toBe(201);
    const volumes = (pinned.body as { spec: { volumes: { name: string; image?: { reference?: string } }[] } })
      .spec.volumes;
    expect(volumes.map((v) => [v.name, v.image?.reference])).toEqual([
      ['models', `${trusted.reference}@${trusted.digest}`],
      ['scratch', undefined],
    ]);
    const denied = await cluster.create(withVolume('volume-untrusted', untrusted.reference));
    expect(denied.status).toBe(403);
    expect(message(denied.body)).toContain(
      `volumes "models" has an untrusted image "${untrusted.reference}"`,
    );
  });

  it('verifies and pins the containers kubectl debug adds to a running Pod (pods/ephemeralcontainers)', async () => {
    const created = await cluster.create(pod('debugged', trusted.reference));
    expect(created.status, message(created.body)).toBe(201);
    const debug = (name: string, image: string): Promise<KubeResponse> =>
      cluster.patch(
        pod('debugged', trusted.reference),
        { spec: { ephemeralContainers: [{ name, image, stdin: true, tty: true }] } },
        { subresource: 'ephemeralcontainers' },
      );
    const refused = await debug('shell', untrusted.reference);
    expect(refused.status, message(refused.body)).toBe(403);
    expect(message(refused.body)).toContain(
      `[verified-images] ephemeralContainers "shell" has an untrusted image "${untrusted.reference}": POLICY_STATIC_DENY`,
    );
    // A second one too: the first, already pinned, is left as it is (the API server refuses any change).
    for (const name of ['debugger', 'second']) {
      const added = await debug(name, trusted.reference);
      expect(added.status, message(added.body)).toBe(200);
    }
    const stored = (await cluster.get(pod('debugged', trusted.reference))).body as {
      spec: { ephemeralContainers?: { name: string; image: string }[] };
    };
    expect(Object.fromEntries((stored.spec.ephemeralContainers ?? []).map((c) => [c.name, c.image]))).toEqual(
      {
        debugger: `${trusted.reference}@${trusted.digest}`,
        second: `${trusted.reference}@${trusted.digest}`,
      },
    );
  });

  it('fails closed when Provenant is unreachable, and open with failurePolicy Ignore', async () => {
    // A tag never asked for, so no Gatekeeper cache entry can answer for Provenant.
    const fresh = await pushRandomImage(registry.url, 'trusted/app', 'outage');
    await provenant.stop();
    const closed = await cluster.create(pod('outage-closed', fresh.reference));
    expect(closed.status).toBe(403);
    expect(message(closed.body)).toContain(
      `containers "app": image "${fresh.reference}" could not be verified, Provenant is unavailable`,
    );
    const open = structuredClone(constraints.deny);
    (open.spec as { parameters: { failurePolicy: string } }).parameters.failurePolicy = 'Ignore';
    await useConstraint(
      open,
      async () => (await cluster.create(pod('probe', fresh.reference), { dryRun: true })).status === 201,
    );
    const admitted = await cluster.create(pod('outage-open', fresh.reference));
    expect(admitted.status, message(admitted.body)).toBe(201);
    // Nothing could pin it: the mutators' failurePolicy Ignore leaves the tag.
    expect(podImage(admitted.body)).toBe(fresh.reference);
  });
});
