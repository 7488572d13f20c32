/**
 * Writes the Helm chart's generated files, so that nothing in charts/provenant is a hand copy:
 * - values.schema.json: Provenant's config schema (provider/src/config/schema.ts) for the values that
 *   have the config file's shape (validators, policy, server, registries, network, cache, sigstore,
 *   log), narrowed where the chart owns a setting (TLS paths, the Redis URL and HMAC key, inline
 *   registry passwords, which would land in a ConfigMap), plus the chart's own values;
 * - files/gatekeeper/: the Provider, ConstraintTemplate, Constraints and Assign mutators of gatekeeper/;
 * - files/kyverno/: the Kyverno policies of policies/kyverno/ (when that folder exists).
 *   npx tsx test/tools/gen-chart.ts          write them
 *   npx tsx test/tools/gen-chart.ts --check  exit 1 when a committed file is out of date
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type, type TSchema } from '@sinclair/typebox';
import { format, resolveConfig } from 'prettier';
import { parseAllDocuments } from 'yaml';
import { configJsonSchema } from '../../provider/src/config/schema.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART_DIR = 'charts/provenant';
/** gatekeeper/ files the chart templates read (kustomization.yaml files are kubectl's, not Helm's). */
const GATEKEEPER_DIRS = ['.', 'templates', 'constraints', 'mutations/pods', 'mutations/workloads'];
const KYVERNO_DIR = 'policies/kyverno';

export interface GeneratedFile {
  /** Path relative to the repository root. */
  readonly target: string;
  readonly text: string;
}

type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema> };

const strict = { additionalProperties: false } as const;
const obj = (props: Parameters<typeof Type.Object>[0]): TSchema => Type.Partial(Type.Object(props, strict));
/** Kubernetes objects the chart passes through unchanged (resources, affinity, volumes...). */
const KubeObject = Type.Object({}, { additionalProperties: true });
const KubeList = Type.Array(KubeObject);
const Labels = Type.Record(Type.String(), Type.String());
const Image = obj({
  repository: Type.String({ minLength: 1 }),
  tag: Type.String(),
  digest: Type.String({ pattern: '^(sha256:[a-f0-9]{64})?$' }),
  pullPolicy: Type.Union(['Always', 'IfNotPresent', 'Never'].map((p) => Type.Literal(p))),
});
const Pem = Type.String({ pattern: '^(|\\s*-----BEGIN CERTIFICATE-----[\\s\\S]*)$', description: 'PEM' });

/** The chart's own values: how Provenant runs in a cluster. */
function chartValues(): Record<string, TSchema> {
  return {
    global: KubeObject,
    image: Image,
    imagePullSecrets: KubeList,
    replicaCount: Type.Integer({ minimum: 1 }),
    resources: KubeObject,
    topologySpread: obj({ enabled: Type.Boolean() }),
    podDisruptionBudget: obj({
      enabled: Type.Boolean(),
      maxUnavailable: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[0-9]+%$' })]),
    }),
    preStopSleepSeconds: Type.Integer({ minimum: 0 }),
    terminationGracePeriodSeconds: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    priorityClassName: Type.String(),
    nodeSelector: Labels,
    tolerations: KubeList,
    affinity: KubeObject,
    podAnnotations: Labels,
    podLabels: Labels,
    extraVolumes: KubeList,
    extraVolumeMounts: KubeList,
    service: obj({
      type: Type.Union(['ClusterIP', 'NodePort', 'LoadBalancer'].map((t) => Type.Literal(t))),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
    }),
    serviceAccount: obj({ create: Type.Boolean(), name: Type.String(), annotations: Labels }),
    tls: obj({
      certManager: obj({
        enabled: Type.Boolean(),
        issuerRef: obj({
          name: Type.String(),
          kind: Type.String({ minLength: 1 }),
          group: Type.String({ minLength: 1 }),
        }),
        duration: Type.String({ pattern: '^[0-9]+(h|m|s)$' }),
        renewBefore: Type.String({ pattern: '^[0-9]+(h|m|s)$' }),
        caBundle: Pem,
      }),
      generated: obj({ validityDays: Type.Integer({ minimum: 1, maximum: 3650 }) }),
    }),
    gatekeeper: obj({
      enabled: Type.Boolean(),
      namespace: Type.String({ minLength: 1 }),
      providers: obj({
        enabled: Type.Boolean(),
        verifyTimeoutSeconds: Type.Integer({ minimum: 1 }),
        mutateTimeoutSeconds: Type.Integer({ minimum: 1 }),
      }),
      clientCA: obj({
        pem: Pem,
        fromSecret: obj({ name: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }) }),
      }),
      policies: obj({
        template: Type.Boolean(),
        constraint: obj({
          enabled: Type.Boolean(),
          enforcementAction: Type.Union(['deny', 'warn', 'dryrun'].map((a) => Type.Literal(a))),
          failurePolicy: Type.Union([Type.Literal('Fail'), Type.Literal('Ignore')]),
          podsOnly: Type.Boolean(),
          automaticUnchangedApproval: Type.Boolean(),
        }),
        mutations: obj({ enabled: Type.Boolean(), podsOnly: Type.Boolean() }),
        namespaceSelector: KubeObject,
      }),
    }),
    kyverno: obj({
      enabled: Type.Boolean(),
      namespace: Type.String({ minLength: 1 }),
      tokenAuth: obj({
        enabled: Type.Boolean(),
        audience: Type.String({ minLength: 1 }),
        serviceAccounts: Type.Array(Type.String({ pattern: '^[a-z0-9-]+:[a-z0-9.-]+$' })),
        reviewCacheSeconds: Type.Integer({ minimum: 0, maximum: 300 }),
      }),
      policies: obj({
        enabled: Type.Boolean(),
        generation: Type.Union([Type.Literal('cel'), Type.Literal('clusterpolicy')]),
      }),
    }),
    redis: obj({
      enabled: Type.Boolean(),
      image: Image,
      resources: KubeObject,
      external: obj({
        // No password in the URL: it would be written into the ConfigMap. It comes from a Secret.
        url: Type.String({ pattern: '^(|rediss?://[^:@/\\s]+(:[0-9]+)?(/[0-9]+)?)$' }),
        passwordSecret: obj({ name: Type.String(), key: Type.String({ minLength: 1 }) }),
      }),
      hmacKey: obj({ existingSecret: Type.String(), key: Type.String({ minLength: 1 }) }),
    }),
    networkPolicy: obj({
      enabled: Type.Boolean(),
      metrics: obj({ namespaceSelector: KubeObject, podSelector: KubeObject }),
      egress: obj({
        ports: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 })),
        apiServerPorts: Type.Array(Type.Integer({ minimum: 1, maximum: 65535 })),
      }),
    }),
    metrics: obj({
      serviceMonitor: obj({ enabled: Type.Boolean(), interval: Type.String(), labels: Labels }),
      prometheusRule: obj({
        enabled: Type.Boolean(),
        labels: Labels,
        latencyBudgetSeconds: Type.Number({ exclusiveMinimum: 0 }),
      }),
      grafanaDashboard: obj({ enabled: Type.Boolean(), labels: Labels }),
    }),
  };
}

/**
 * A property with a `default` is required in the config schema's types (Provenant fills it in at
 * load), but a value may leave it out: the rendered config is validated, and defaulted, by Provenant.
 */
function defaultsOptional(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(defaultsOptional);
  if (schema === null || typeof schema !== 'object') return schema;
  const out = Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [k, defaultsOptional(v)]),
  ) as JsonSchema;
  const props = out.properties;
  if (props !== undefined && Array.isArray(out['required'])) {
    out['required'] = (out['required'] as string[]).filter((name) => props[name]?.['default'] === undefined);
  }
  return out;
}

/** The config sections as values: the chart sets TLS paths, the host, Redis and its key itself. */
function configValues(): Record<string, JsonSchema> {
  const config = defaultsOptional(configJsonSchema()) as JsonSchema;
  const sections = { ...(config.properties ?? {}) };
  const server = structuredClone(sections['server'] as JsonSchema);
  const serverProps = server.properties ?? {};
  delete serverProps['host'];
  delete serverProps['allowDevCertificate'];
  const tls = serverProps['tls'] as JsonSchema;
  serverProps['tls'] = {
    ...tls,
    properties: { minVersion: tls.properties?.['minVersion'], ciphers: tls.properties?.['ciphers'] },
    required: [],
  } as JsonSchema;
  const cache = structuredClone(sections['cache'] as JsonSchema);
  for (const key of ['redis', 'hmacKey', 'hmacKeyFile', 'redisPasswordFile']) delete cache.properties?.[key];
  const registries = structuredClone(sections['registries'] as JsonSchema);
  const registry = registries['items'] as JsonSchema;
  const auth = registry.properties?.['auth'] as JsonSchema & { anyOf: JsonSchema[] };
  auth.anyOf = auth.anyOf.filter((variant) => variant.properties?.['password'] === undefined);
  return { ...sections, server, cache, registries };
}

export function valuesSchema(): Record<string, unknown> {
  const chart = JSON.parse(JSON.stringify(chartValues())) as Record<string, JsonSchema>;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Provenant Helm chart values',
    description:
      'Generated by test/tools/gen-chart.ts from provider/src/config/schema.ts and the chart values; do not edit.',
    type: 'object',
    additionalProperties: false,
    required: ['validators', 'policy'],
    properties: { ...configValues(), ...chart },
  };
}

function gatekeeperFiles(root: string): GeneratedFile[] {
  return GATEKEEPER_DIRS.flatMap((dir) =>
    readdirSync(path.join(root, 'gatekeeper', dir))
      .filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml')
      .sort()
      .map((name) => ({
        target: path.join(CHART_DIR, 'files/gatekeeper', dir, name),
        text: readFileSync(path.join(root, 'gatekeeper', dir, name), 'utf8'),
      })),
  );
}

/**
 * Every YAML file under policies/kyverno (tests in dot-folders aside) holding Kyverno objects: the
 * policies and the token GlobalContextEntry with its RBAC (not the test configuration).
 */
function kyvernoFiles(root: string): GeneratedFile[] {
  const dir = path.join(root, KYVERNO_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => /\.ya?ml$/.test(rel) && !rel.split(path.sep).some((part) => part.startsWith('.')))
    .sort()
    .flatMap((rel) => {
      const text = readFileSync(path.join(dir, rel), 'utf8');
      const docs = parseAllDocuments(text).map((d) => d.toJS() as { apiVersion?: unknown } | null);
      const isPolicy = docs.some((d) => /kyverno\.io\//.test(String(d?.apiVersion)));
      return isPolicy ? [{ target: path.join(CHART_DIR, 'files/kyverno', rel), text }] : [];
    });
}

/** Everything generated, as the repository's formatter leaves it (so `prettier --check` agrees). */
export async function generateChartFiles(root = ROOT): Promise<GeneratedFile[]> {
  const schemaPath = path.join(CHART_DIR, 'values.schema.json');
  const options = await resolveConfig(schemaPath);
  const schema = await format(JSON.stringify(valuesSchema()), { ...options, filepath: schemaPath });
  return [{ target: schemaPath, text: schema }, ...gatekeeperFiles(root), ...kyvernoFiles(root)];
}

/** Generated files on disk that the sources no longer produce (a deleted policy). */
function staleFiles(root: string, generated: GeneratedFile[]): string[] {
  const wanted = new Set(generated.map((g) => g.target));
  const dirs = ['files/gatekeeper', 'files/kyverno'].map((d) => path.join(CHART_DIR, d));
  return dirs.flatMap((dir) =>
    existsSync(path.join(root, dir))
      ? readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
          .map((rel) => path.join(dir, rel))
          .filter((p) => p.endsWith('.yaml') && !wanted.has(p))
      : [],
  );
}

export async function outOfDate(root = ROOT): Promise<string[]> {
  const generated = await generateChartFiles(root);
  const changed = generated
    .filter(({ target, text }) => {
      const file = path.join(root, target);
      return !existsSync(file) || readFileSync(file, 'utf8') !== text;
    })
    .map((g) => g.target);
  return [...changed, ...staleFiles(root, generated)];
}

async function main(check: boolean): Promise<number> {
  const stale = await outOfDate();
  if (check) {
    for (const target of stale)
      process.stderr.write(`${target} is out of date; run npx tsx test/tools/gen-chart.ts\n`);
    return stale.length === 0 ? 0 : 1;
  }
  const generated = await generateChartFiles();
  for (const target of staleFiles(ROOT, generated)) rmSync(path.join(ROOT, target));
  for (const { target, text } of generated) {
    mkdirSync(path.dirname(path.join(ROOT, target)), { recursive: true });
    writeFileSync(path.join(ROOT, target), text);
  }
  process.stdout.write(`wrote ${generated.length} files under ${CHART_DIR}\n`);
  return 0;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.includes('--check'));
}
