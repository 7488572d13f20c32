/** The shipped gatekeeper/ manifests agree with each other and with the policy they serve. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from '../../../../test/tools/gen-gatekeeper.ts';

interface Doc {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

const docs = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(path.join(ROOT, file), 'utf8')).map((d) => d.toJS() as Doc);

/** The Assign documents a kustomization directory applies, following directory resources. */
function kustomized(dir: string): Doc[] {
  const k = parse(readFileSync(path.join(ROOT, dir, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
  };
  return k.resources.flatMap((r) =>
    r.endsWith('.yaml') ? docs(path.join(dir, r)) : kustomized(path.join(dir, r)),
  );
}

const FIELDS = ['containers', 'initContainers', 'ephemeralContainers'];
const locations = (assigns: Doc[]): string[] => assigns.map((a) => a.spec.location as string).sort();

describe('gatekeeper/ manifests', () => {
  it('define the Providers the template and the mutators call, over HTTPS with a timeout', () => {
    const providers = docs('gatekeeper/provider.yaml');
    expect(providers.map((p) => p.metadata.name)).toEqual(['provenant', 'provenant-mutate']);
    for (const p of providers) {
      expect(p.spec.url).toMatch(/^https:\/\//);
      expect(p.spec.timeout).toBeGreaterThan(0);
      expect(p.spec.caBundle).toBe('REPLACE_WITH_BASE64_PEM_CA');
    }
    expect(providers.map((p) => new URL(p.spec.url as string).pathname)).toEqual([
      '/v1/verify',
      '/v1/mutate',
    ]);
    const rego = readFileSync(path.join(ROOT, 'policies/gatekeeper/verified-images/src.rego'), 'utf8');
    expect(rego).toContain('"provider": "provenant"');
  });

  it('pin every container field and image volume of Pods, workload templates and CronJob job templates', () => {
    const assigns = kustomized('gatekeeper/mutations');
    const expected = ['spec', 'spec.template.spec', 'spec.jobTemplate.spec.template.spec'].flatMap(
      (prefix) => [
        ...FIELDS.map((f) => `${prefix}.${f}[name:*].image`),
        `${prefix}.volumes[name:*].image.reference`,
      ],
    );
    expect(locations(assigns)).toEqual(expected.sort());
    for (const a of assigns) {
      expect(a.kind).toBe('Assign');
      const externalData = (a.spec.parameters as { assign: { externalData: Record<string, string> } }).assign
        .externalData;
      expect(externalData).toEqual({
        provider: 'provenant-mutate',
        dataSource: 'ValueAtLocation',
        failurePolicy: 'Ignore',
      });
    }
  });

  it('pin only Pods in the pods-only variant', () => {
    const assigns = kustomized('gatekeeper/mutations-pods-only');
    expect(locations(assigns)).toEqual(
      [...FIELDS.map((f) => `spec.${f}[name:*].image`), 'spec.volumes[name:*].image.reference'].sort(),
    );
    const kinds = assigns.flatMap((a) => (a.spec.applyTo as { kinds: string[] }[]).flatMap((t) => t.kinds));
    expect(new Set(kinds)).toEqual(new Set(['Pod']));
  });

  it('ship deny, warn and dryrun constraints of the template kind that exclude the system namespaces', () => {
    const actions = ['verified-images', 'verified-images-warn', 'verified-images-dryrun'].map((name) => {
      const [c] = docs(`gatekeeper/constraints/${name}.yaml`);
      expect(c?.kind).toBe('ProvenantVerifiedImages');
      expect((c?.spec.match as { excludedNamespaces: string[] }).excludedNamespaces).toContain('kube-system');
      return c?.spec.enforcementAction;
    });
    expect(actions).toEqual(['deny', 'warn', 'dryrun']);
  });
});
