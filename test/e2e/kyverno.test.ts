/**
 * Kyverno end to end: etcd, kube-apiserver and Kyverno's admission controller built from the Go module
 * proxy, Provenant with Kyverno token authentication (TokenReview against this kube-apiserver), images
 * in a real registry, and the shipped policies/kyverno/ policies pointed at this Provenant: first the
 * ValidatingPolicy and MutatingPolicy (Kyverno >= 1.17), then the ClusterPolicies (Kyverno < 1.17).
 * Pods are created, not run: there is no kubelet.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushRandomImage, type PushedManifest } from '../harness/images.ts';
import {
  KYVERNO_NAMESPACE,
  KYVERNO_TOKEN_AUDIENCE,
  requestToken,
  serviceAccount,
  startKyverno,
  writeKyvernoToken,
  type RunningKyverno,
} from '../harness/kyverno.ts';
import {
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

const ENFORCED_TIMEOUT_MS = 90_000;
const SHIPPED_URL = 'https://provenant.provenant.svc:8443';

type Generation = 'cel' | 'clusterpolicy';
const POLICIES: Record<Generation, { verify: string; pin: string }> = {
  cel: {
    verify: 'policies/kyverno/provenant-verify-images/provenant-verify-images.yaml',
    pin: 'policies/kyverno/provenant-pin-images/provenant-pin-images.yaml',
  },
  clusterpolicy: {
    verify:
      'policies/kyverno/provenant-verify-images-clusterpolicy/provenant-verify-images-clusterpolicy.yaml',
    pin: 'policies/kyverno/provenant-pin-images-clusterpolicy/provenant-pin-images-clusterpolicy.yaml',
  },
};

async function manifests(file: string): Promise<KubeObject[]> {
  return parseAllDocuments(await readFile(path.join(PROJECT_ROOT, file), 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

function pod(
  name: string,
  containers: Record<string, string>,
  init: Record<string, string> = {},
): KubeObject {
  const list = (m: Record<string, string>): object[] =>
    Object.entries(m).map(([n, image]) => ({ name: n, image }));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      containers: list(containers),
      ...(Object.keys(init).length > 0 ? { initContainers: list(init) } : {}),
    },
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

type Spec = { containers?: { image: string }[]; initContainers?: { image: string }[] };
const images = (spec: Spec | undefined): string[] => [
  ...(spec?.containers ?? []).map((c) => c.image),
  ...(spec?.initContainers ?? []).map((c) => c.image),
];
const podImages = (o: Record<string, unknown>): string[] => images((o as { spec?: Spec }).spec);
const templateImages = (o: Record<string, unknown>): string[] =>
  images((o as { spec?: { template?: { spec?: Spec } } }).spec?.template?.spec);
const message = (body: Record<string, unknown>): string =>
  typeof body.message === 'string' ? body.message : JSON.stringify(body);
/** Kyverno answers a denial with 400 (ValidatingPolicy) or 403, the message naming its webhook. */
const denied = (res: { status: number; body: Record<string, unknown> }): boolean =>
  (res.status === 400 || res.status === 403) && message(res.body).includes('denied the request');

describe('Kyverno with Provenant', () => {
  let dir: string;
  let registry: RegistryServer;
  let cluster: KubeCluster;
  let kyverno: RunningKyverno;
  let provenant: RunningProvenant;
  let providerCaPem: string;
  let trusted: PushedManifest;
  let untrusted: PushedManifest;
  let configFile: string;
  let active: KubeObject[] = [];

  /**
   * The shipped policies of a file (the CEL files hold a second one for pods/ephemeralcontainers),
   * pointed at this Provenant (its URL; the ClusterPolicies' caBundle).
   */
  async function shipped(file: string, failurePolicy?: 'Ignore'): Promise<KubeObject[]> {
    const policies = await manifests(file);
    if (policies.length === 0) throw new Error(`${file} holds no object`);
    return policies.map((policy) => {
      const text = JSON.stringify(policy)
        .replaceAll(SHIPPED_URL, provenant.url)
        .replaceAll('"caBundle":""', `"caBundle":${JSON.stringify(providerCaPem)}`);
      const out = JSON.parse(text) as KubeObject & { spec: { failurePolicy?: string } };
      if (failurePolicy !== undefined) out.spec.failurePolicy = failurePolicy;
      return out;
    });
  }

  const verdict = async (obj: KubeObject): Promise<number> =>
    (await cluster.create(obj, { dryRun: true })).status;

  /** Replaces the active policies and waits until Kyverno enforces them. */
  async function usePolicies(next: KubeObject[], enforced: () => Promise<boolean>): Promise<void> {
    for (const p of active) await cluster.remove(p);
    active = next;
    for (const p of next) {
      await waitFor(`${p.kind} ${p.metadata.name} to be created`, ENFORCED_TIMEOUT_MS, async () => {
        const res = await cluster.create(p);
        return res.status === 201 ? true : undefined;
      });
    }
    await waitFor(
      `${next.map((p) => p.metadata.name).join(', ')} to be enforced`,
      ENFORCED_TIMEOUT_MS,
      async () => ((await enforced()) ? true : undefined),
    ).catch((err: unknown) => {
      throw new Error(
        `${(err as Error).message}; last probe: ${lastProbe}\n--- kyverno ---\n${kyverno.output().slice(-6000)}\n--- provenant ---\n${provenant.output().slice(-3000)}`,
      );
    });
  }

  let lastProbe = '';
  const enforcing = async (): Promise<boolean> => {
    const refused = await cluster.create(pod('probe', { app: untrusted.reference }), { dryRun: true });
    const res = await cluster.create(pod('probe', { app: trusted.reference }), { dryRun: true });
    lastProbe = `untrusted: ${refused.status} ${message(refused.body)}; trusted: ${res.status} ${JSON.stringify(podImages(res.body))} ${res.status === 201 ? '' : message(res.body)}`;
    return denied(refused) && podImages(res.body)[0] === `${trusted.reference}@${trusted.digest}`;
  };

  /** The generation's shipped policies; with failurePolicy Ignore, `enforced` says when they apply. */
  async function useGeneration(
    gen: Generation,
    failOpen?: { enforced: () => Promise<boolean> },
  ): Promise<void> {
    const failurePolicy = failOpen === undefined ? undefined : 'Ignore';
    await usePolicies(
      [...(await shipped(POLICIES[gen].verify, failurePolicy)), ...(await shipped(POLICIES[gen].pin))],
      failOpen?.enforced ?? enforcing,
    );
  }

  /** POSTs a ProviderRequest to Provenant directly, as Kyverno does (no Content-Type). */
  async function askProvenant(authorization?: string): Promise<{ status: number; systemError: string }> {
    const agent = new Agent({ connect: { ca: providerCaPem } });
    try {
      const res = await request(`${provenant.url}/v1/verify`, {
        method: 'POST',
        dispatcher: agent,
        headers: authorization === undefined ? {} : { authorization },
        body: JSON.stringify({ request: { keys: [trusted.reference] } }),
      });
      const body = (await res.body.json()) as { response: { systemError: string } };
      return { status: res.statusCode, systemError: body.response.systemError };
    } finally {
      await agent.close();
    }
  }

  async function startProvider(): Promise<RunningProvenant> {
    return startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configFile, '--port', '0']);
  }

  beforeAll(async () => {
    dir = await makeTempDir('e2e-kyverno');
    registry = await startDistributionRegistry();
    trusted = await pushRandomImage(registry.url, 'trusted/app', 'v1');
    untrusted = await pushRandomImage(registry.url, 'untrusted/app', 'v1');
    cluster = await startKubeCluster();

    const ca = await makeCa(dir, 'provenant-ca');
    providerCaPem = ca.certPem;
    const serving = await issueCert(dir, ca, 'provenant', 'server');
    configFile = path.join(dir, 'provenant.yaml');
    await writeFile(
      configFile,
      `validators:
  - { name: deny, type: static, approve: false }
  - { name: allow, type: static, approve: true }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/trusted/*", validator: allow }
registries:
  - { host: "${registry.host}", insecure: true }
server:
  host: 127.0.0.1
  tls: { cert: ${serving.cert}, key: ${serving.key} }
  auth:
    kyverno: { enabled: true, kubeconfig: ${cluster.kubeconfig} }
`,
    );
    provenant = await startProvider();

    const tokenFile = path.join(dir, 'kyverno-token');
    const caFile = path.join(dir, 'provenant-ca.crt');
    await writeFile(caFile, providerCaPem);
    kyverno = await startKyverno(cluster, { tokenFile, trustedCaFile: caFile });
    await writeKyvernoToken(cluster, tokenFile);
    for (const obj of await manifests('policies/kyverno/provenant-token.yaml')) await cluster.apply(obj);
    await useGeneration('cel');
  }, 600_000);

  afterAll(async () => {
    await provenant?.stop();
    await kyverno?.stop();
    await cluster?.stop();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  describe.each<[Generation, string]>([
    ['cel', 'ValidatingPolicy and MutatingPolicy (Kyverno >= 1.17)'],
    ['clusterpolicy', 'ClusterPolicies (Kyverno < 1.17)'],
  ])('%s: %s', (gen) => {
    beforeAll(async () => {
      await useGeneration(gen);
    }, ENFORCED_TIMEOUT_MS * 2);

    it('admits a Pod with trusted images and stores every container and init container pinned', async () => {
      const created = await cluster.create(
        pod(`${gen}-trusted`, { app: trusted.reference }, { init: trusted.reference }),
      );
      expect(created.status, message(created.body)).toBe(201);
      const stored = await cluster.get(pod(`${gen}-trusted`, {}));
      expect(podImages(stored.body)).toEqual([
        `${trusted.reference}@${trusted.digest}`,
        `${trusted.reference}@${trusted.digest}`,
      ]);
    });

    it("pins a Deployment's Pod template", async () => {
      const created = await cluster.create(deployment(`${gen}-trusted`, trusted.reference));
      expect(created.status, message(created.body)).toBe(201);
      expect(templateImages(created.body)).toEqual([`${trusted.reference}@${trusted.digest}`]);
    });

    it("denies an untrusted image with Provenant's code and message, naming the container", async () => {
      const res = await cluster.create(
        pod(`${gen}-untrusted`, { app: trusted.reference, sidecar: untrusted.reference }),
      );
      expect(denied(res), message(res.body)).toBe(true);
      expect(message(res.body)).toContain(
        `containers "sidecar" has an untrusted image "${untrusted.reference}"`,
      );
      expect(message(res.body)).toContain('POLICY_STATIC_DENY');
      const template = await cluster.create(deployment(`${gen}-untrusted`, untrusted.reference));
      expect(denied(template), message(template.body)).toBe(true);
      expect(message(template.body)).toContain(
        `containers "app" has an untrusted image "${untrusted.reference}"`,
      );
    });

    it('verifies and pins image volumes like container images', async () => {
      const withVolume = (name: string, image: string): KubeObject => {
        const p = pod(name, { app: trusted.reference });
        (p.spec as Record<string, unknown>).volumes = [
          { name: 'models', image: { reference: image } },
          { name: 'scratch', emptyDir: {} },
        ];
        return p;
      };
      const pinned = await cluster.create(withVolume(`${gen}-volume-trusted`, trusted.reference));
      expect(pinned.status, message(pinned.body)).toBe(201);
      const volumes = (
        pinned.body as { spec: { volumes: { name: string; image?: { reference?: string } }[] } }
      ).spec.volumes;
      expect(volumes.map((v) => [v.name, v.image?.reference])).toEqual([
        ['models', `${trusted.reference}@${trusted.digest}`],
        ['scratch', undefined],
      ]);
      const refused = await cluster.create(withVolume(`${gen}-volume-untrusted`, untrusted.reference));
      expect(denied(refused), message(refused.body)).toBe(true);
      expect(message(refused.body)).toContain(
        `volumes "models" has an untrusted image "${untrusted.reference}"`,
      );
    });

    it('verifies and pins the containers kubectl debug adds to a running Pod (pods/ephemeralcontainers)', async () => {
      const name = `${gen}-debugged`;
      const created = await cluster.create(pod(name, { app: trusted.reference }));
      expect(created.status, message(created.body)).toBe(201);
      const debug = (container: string, image: string, dryRun = false): Promise<KubeResponse> =>
        cluster.patch(
          pod(name, {}),
          { spec: { ephemeralContainers: [{ name: container, image, stdin: true, tty: true }] } },
          { subresource: 'ephemeralcontainers', dryRun },
        );
      // Kyverno registers a policy's webhook rules asynchronously: the subresource's may come last.
      await waitFor('the pods/ephemeralcontainers webhooks', ENFORCED_TIMEOUT_MS, async () =>
        denied(await debug('probe', untrusted.reference, true)) ? true : undefined,
      );
      const refused = await debug('shell', untrusted.reference);
      expect(denied(refused), message(refused.body)).toBe(true);
      expect(message(refused.body)).toContain(
        `ephemeralContainers "shell" has an untrusted image "${untrusted.reference}"`,
      );
      expect(message(refused.body)).toContain('POLICY_STATIC_DENY');
      // A second one too: the first, already pinned, is left as it is (the API server refuses any change).
      for (const container of ['debugger', 'second']) {
        const added = await debug(container, trusted.reference);
        expect(added.status, message(added.body)).toBe(200);
      }
      const stored = (await cluster.get(pod(name, {}))).body as {
        spec: { ephemeralContainers?: { name: string; image: string }[] };
      };
      expect(
        Object.fromEntries((stored.spec.ephemeralContainers ?? []).map((c) => [c.name, c.image])),
      ).toEqual({
        debugger: `${trusted.reference}@${trusted.digest}`,
        second: `${trusted.reference}@${trusted.digest}`,
      });
    });

    it('fails closed when Provenant is down, and open with failurePolicy Ignore', async () => {
      const fresh = await pushRandomImage(registry.url, 'trusted/app', `outage-${gen}`);
      await provenant.stop();
      try {
        const closed = await cluster.create(pod(`${gen}-outage-closed`, { app: fresh.reference }));
        expect(denied(closed), message(closed.body)).toBe(true);
        await useGeneration(gen, {
          enforced: async () => (await verdict(pod('probe', { app: fresh.reference }))) === 201,
        });
        const open = await cluster.create(pod(`${gen}-outage-open`, { app: fresh.reference }));
        expect(open.status, message(open.body)).toBe(201);
        expect(podImages(open.body)).toEqual([fresh.reference]);
      } finally {
        provenant = await startProvider();
      }
    });
  });

  describe("Provenant's authentication, with real tokens from the kube-apiserver", () => {
    it("answers Kyverno's admission controller token for Provenant's audience", async () => {
      const token = await requestToken(
        cluster,
        KYVERNO_NAMESPACE,
        'kyverno-admission-controller',
        KYVERNO_TOKEN_AUDIENCE,
      );
      expect(await askProvenant(`Bearer ${token}`)).toEqual({ status: 200, systemError: '' });
    });

    it('refuses a request without a token, and counts it', async () => {
      const answer = await askProvenant();
      expect(answer.status).toBe(401);
      expect(answer.systemError).toMatch(/^REQUEST_UNAUTHENTICATED: /);
      const agent = new Agent({ connect: { ca: providerCaPem } });
      try {
        const metrics = await request(`${provenant.url}/metrics`, { dispatcher: agent });
        expect(await metrics.body.text()).toMatch(
          /provenant_auth_refusals_total\{route="\/v1\/verify",code="REQUEST_UNAUTHENTICATED"\} [1-9]/,
        );
      } finally {
        await agent.close();
      }
    });

    it('refuses a token made for another audience (the API server’s own)', async () => {
      const token = await requestToken(
        cluster,
        KYVERNO_NAMESPACE,
        'kyverno-admission-controller',
        'https://kubernetes.default.svc',
      );
      const answer = await askProvenant(`Bearer ${token}`);
      expect(answer.status).toBe(401);
      expect(answer.systemError).toMatch(/^REQUEST_TOKEN_INVALID: /);
    });

    it('refuses a valid token of a service account not on the list', async () => {
      await cluster.apply(serviceAccount('default', 'intruder'));
      const token = await requestToken(cluster, 'default', 'intruder', KYVERNO_TOKEN_AUDIENCE);
      const answer = await askProvenant(`Bearer ${token}`);
      expect(answer.status).toBe(403);
      expect(answer.systemError).toBe(
        'REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED: expected a token of system:serviceaccount:kyverno:kyverno-admission-controller (server.auth.kyverno.serviceAccounts), found one of system:serviceaccount:default:intruder',
      );
      expect(provenant.output()).not.toContain(token);
    });
  });
});
