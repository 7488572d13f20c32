import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.ts';
import {
  CONNAISSEUR_NAMESPACE_LABEL,
  isValues,
  mergeValues,
  migrateConnaisseur,
  type KubeObject,
  type Migration,
  type ShippedGatekeeper,
  type Values,
} from '../../src/migrate/index.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const validateChartValues = new Ajv({ strict: false, allErrors: true }).compile(
  JSON.parse(readFileSync(path.join(ROOT, 'charts/provenant/values.schema.json'), 'utf8')) as object,
);
const FIXTURES = path.resolve(ROOT, '../shared/fixtures/connaisseur');
const SUITES = readdirSync(path.join(FIXTURES, 'install')).filter((f) => f.endsWith('.yaml'));

function read(file: string): Values {
  const v: unknown = parse(readFileSync(file, 'utf8'));
  if (!isValues(v)) throw new Error(`${file} is not a mapping`);
  return v;
}

/** The suite's overrides with `${…}` filled as Connaisseur's test scripts (envsubst) fill them. */
function suite(name: string): Values {
  const text = readFileSync(path.join(FIXTURES, 'install', name), 'utf8').replaceAll(
    '${ALERTING_ENDPOINT_IP}',
    '127.0.0.1',
  );
  return parse(text) as Values;
}

function shipped(): ShippedGatekeeper {
  const docs = (f: string): KubeObject[] =>
    parseAllDocuments(readFileSync(path.join(ROOT, 'gatekeeper', f), 'utf8')).map(
      (d) => d.toJS() as KubeObject,
    );
  return {
    constraint: docs('constraints/verified-images.yaml')[0] as KubeObject,
    podMutators: docs('mutations/pods/assign-pod-images.yaml'),
    workloadMutators: docs('mutations/workloads/assign-workload-images.yaml'),
  };
}

const chart = read(path.join(FIXTURES, 'values.yaml'));
const migrate = (...overrides: Values[]): Migration => migrateConnaisseur([chart, ...overrides], shipped());
const entry = (m: Migration, p: string): Migration['report'] => m.report.filter((e) => e.path === p);
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('Helm values merge', () => {
  it('merges maps key by key, replaces lists and scalars whole, and deletes keys set to null', () => {
    const merged = mergeValues([
      { a: { b: 1, c: [1, 2], d: 'x' }, e: 1 },
      { a: { c: [3], d: null }, f: 2 },
    ]);
    expect(merged).toEqual({ a: { b: 1, c: [3] }, e: 1, f: 2 });
  });
});

describe('provenant migrate connaisseur', () => {
  it.each(SUITES)('migrates the %s suite with a complete report, and the migrated config loads', (name) => {
    const overrides = suite(name);
    const m = migrate(overrides);
    const merged = mergeValues([chart, overrides]);
    const app = merged['application'] as Values;
    const paths = m.report.map((e) => e.path);
    // Every validator, rule, feature and application key is accounted for.
    (app['validators'] as unknown[]).forEach((_, i) =>
      expect(paths).toContain(`application.validators[${i}]`),
    );
    (app['policy'] as unknown[]).forEach((_, i) =>
      expect(paths).toContain(`application.policy[${i}].pattern`),
    );
    for (const key of Object.keys(app['features'] as Values).filter(
      (k) => k !== 'namespacedValidation' && k !== 'cache',
    ))
      expect(paths).toContain(`application.features.${key}`);
    for (const key of Object.keys(app).filter((k) => !['validators', 'policy', 'features'].includes(k)))
      expect(paths).toContain(`application.${key}`);
    for (const key of Object.keys(merged['kubernetes'] as Values))
      expect(paths.some((p) => p.startsWith(`kubernetes.${key}`))).toBe(true);

    const dir = mkdtempSync(path.join(tmpdir(), 'migrate-'));
    dirs.push(dir);
    // self-hosted-notary names its root key by file, as Connaisseur's test script provides it.
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(
      path.join(dir, 'self_hosted_notary_root_key.pub'),
      publicKey.export({ type: 'spki', format: 'pem' }),
    );
    const config = parseConfig(stringify(m.config), name, dir);
    expect(config.validators.map((v) => v.name)).toEqual(
      (app['validators'] as Values[]).map((v) => v['name']),
    );
    expect(config.policy).toHaveLength((app['policy'] as unknown[]).length);
    // The chart values it writes are values charts/provenant accepts (its generated schema).
    expect(validateChartValues(m.chartValues), JSON.stringify(validateChartValues.errors)).toBe(true);
  });

  it('anchors registry-less patterns on Docker Hub, and flags a narrowed deny rule with the image it no longer denies', () => {
    const m = migrate(suite('regular.yaml'));
    expect((m.config['policy'] as { pattern: string }[]).map((r) => r.pattern)).toEqual([
      'docker.io/library/redis',
      'docker.io/library/node',
      'docker.io/securesystemsengineering/testimage:*',
      'docker.io/securesystemsengineering/testimage:co-*',
      'docker.io/securesystemsengineering/testimage:notation-*',
    ]);
    const [redis] = entry(m, 'application.policy[0].pattern');
    expect(redis).toMatchObject({ status: 'changed', warning: true });
    expect(redis?.rule).toContain('anchored patterns');
  });

  it('lists an image a narrowed deny rule no longer denies under an allowing catch-all', () => {
    const m = migrate({
      application: {
        validators: [
          { name: 'allow', type: 'static', approve: true },
          { name: 'deny', type: 'static', approve: false },
        ],
        policy: [
          { pattern: '*:*', validator: 'allow' },
          { pattern: 'redis', validator: 'deny' },
        ],
      },
    });
    const decision = m.report.find(
      (e) => e.path === 'application.policy (image evil.example/docker.io/library/redis:latest)',
    );
    expect(decision).toMatchObject({ status: 'changed', warning: true });
    expect(decision?.note).toBe(
      'Connaisseur decided by rule 1 "redis" → deny, Provenant by rule 0 "*:*" → allow',
    );
  });

  it('names a rule whose win changed through the Docker Hub spelling', () => {
    const m = migrate({
      application: {
        validators: [
          { name: 'allow', type: 'static', approve: true },
          { name: 'deny', type: 'static', approve: false },
        ],
        policy: [
          { pattern: 'docker.io/library/ng*', validator: 'allow' },
          { pattern: '*/library/nginx', validator: 'deny' },
        ],
      },
    });
    const change = m.report.find(
      (e) => e.path === 'application.policy (image docker.io/library/nginx:latest)',
    );
    expect(change?.rule).toContain('Docker Hub ranking');
    expect(change?.note).toBe(
      'Connaisseur decided by rule 1 "*/library/nginx" → deny, Provenant by rule 0 "docker.io/library/ng*" → allow',
    );
  });

  it('says when cosign thresholds count signers instead of signatures', () => {
    const m = migrate(suite('cosign.yaml'));
    expect(entry(m, 'application.policy[3].with')[0]?.rule).toContain('threshold counting');
    expect(entry(m, 'application.validators[2].host.rekor')[0]?.status).toBe('dropped');
  });

  it("reproduces features in the constraint and mutators, with Connaisseur's namespace label", () => {
    const m = migrate(suite('namespaced.yaml'), {
      application: {
        features: {
          detectionMode: true,
          automaticUnchangedApproval: true,
          resourceValidationMode: 'podsOnly',
        },
      },
      kubernetes: { webhook: { failurePolicy: 'Ignore' } },
    });
    const [constraint, ...mutators] = m.gatekeeper.objects;
    const selector = {
      matchExpressions: [{ key: CONNAISSEUR_NAMESPACE_LABEL, operator: 'NotIn', values: ['ignore'] }],
    };
    expect(constraint?.spec).toMatchObject({
      enforcementAction: 'warn',
      match: { kinds: [{ apiGroups: [''], kinds: ['Pod'] }], namespaceSelector: selector },
      parameters: { failurePolicy: 'Ignore', automaticUnchangedApproval: true },
    });
    expect(mutators.length).toBeGreaterThan(0);
    for (const mutator of mutators) {
      expect(mutator.spec).toMatchObject({ match: { namespaceSelector: selector } });
      expect(mutator.spec?.['applyTo']).toEqual([{ groups: [''], versions: ['v1'], kinds: ['Pod'] }]);
    }
    expect(m.kyverno.join('\n')).toContain('Audit');
    expect(m.chartValues['gatekeeper']).toMatchObject({
      policies: {
        constraint: {
          enabled: true,
          enforcementAction: 'warn',
          podsOnly: true,
          automaticUnchangedApproval: true,
        },
        mutations: { enabled: true, podsOnly: true },
        namespaceSelector: selector,
      },
    });
  });

  it('carries alerting and turns validator auth into registries: entries, never into the report', () => {
    const m = migrate(suite('alerting.yaml'), {
      application: {
        validators: [
          { name: 'allow', type: 'static', approve: true },
          {
            name: 'private',
            type: 'cosign',
            trustRoots: [
              {
                name: 'default',
                key: (
                  suite('cosign.yaml')['application'] as { validators: { trustRoots: { key: string }[] }[] }
                ).validators[0]?.trustRoots[0]?.key,
              },
            ],
            auth: { username: 'puller', password: 's3cret-pw', registry: 'https://registry.acme.io/v1/' },
          },
        ],
        policy: [{ pattern: 'registry.acme.io/team/*', validator: 'private' }],
      },
    });
    expect(m.config['registries']).toEqual([
      { host: 'registry.acme.io', auth: { username: 'puller', password: 's3cret-pw' } },
    ]);
    expect(JSON.stringify(m.report)).not.toContain('s3cret-pw');
    const alerting = m.config['alerting'] as {
      clusterIdentifier: string;
      admitRequest: { receivers: Values[] };
    };
    expect(alerting.clusterIdentifier).toBe('integration-test-cluster');
    expect(alerting.admitRequest.receivers[0]).toMatchObject({
      template: 'opsgenie',
      priority: 4,
      failIfAlertSendingFails: true,
    });
    expect(() => parseConfig(stringify(m.config), 'alerting', ROOT)).not.toThrow();
  });

  it('names an unfilled placeholder as a reason the config will not load', () => {
    const raw = parse(readFileSync(path.join(FIXTURES, 'install', 'alerting.yaml'), 'utf8')) as Values;
    const m = migrate(raw);
    expect(m.report.find((e) => e.path === 'alerting.admitRequest.receivers[0].receiverUrl')).toMatchObject({
      status: 'dropped',
      warning: true,
    });
  });
});
