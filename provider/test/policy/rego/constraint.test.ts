import { describe, expect, it } from 'vitest';
import { tarWithOneFile } from '../../../../test/harness/tar.ts';
import {
  constraintMatches,
  fileInTar,
  parseObjects,
  reviewInput,
  toConstraint,
  type KubeObject,
} from '../../../src/policy/rego/index.ts';

const pod = (namespace: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace },
  spec: { containers: [] },
});

const constraint = toConstraint(
  {
    apiVersion: 'constraints.gatekeeper.sh/v1beta1',
    kind: 'ProvenantVerifiedImages',
    metadata: { name: 'c' },
    spec: {
      enforcementAction: 'warn',
      match: {
        kinds: [{ apiGroups: [''], kinds: ['Pod'] }],
        excludedNamespaces: ['kube-system', 'team-*'],
      },
      parameters: { failurePolicy: 'Ignore' },
    },
  },
  'c.yaml',
);

describe('constraint matching', () => {
  it('matches the kinds it lists, in namespaces it does not exclude', () => {
    expect(constraint.enforcementAction).toBe('warn');
    expect(constraintMatches(constraint, pod('default'))).toBe(true);
    expect(
      constraintMatches(constraint, { ...pod('default'), apiVersion: 'apps/v1', kind: 'Deployment' }),
    ).toBe(false);
  });

  it('skips excluded namespaces, with a trailing * as a prefix match', () => {
    expect(constraintMatches(constraint, pod('kube-system'))).toBe(false);
    expect(constraintMatches(constraint, pod('team-a'))).toBe(false);
    expect(constraintMatches(constraint, pod('teams'))).toBe(true);
  });

  it('refuses an enforcement action Gatekeeper does not know', () => {
    const bad = { apiVersion: 'x/v1', kind: 'K', metadata: {}, spec: { enforcementAction: 'block' } };
    expect(() => toConstraint(bad, 'bad.yaml')).toThrow(
      /bad\.yaml: expected enforcementAction deny, warn or dryrun/,
    );
  });
});

describe('reviewInput', () => {
  it('is an AdmissionRequest for a CREATE with the constraint parameters', () => {
    const o = { ...pod('default'), apiVersion: 'apps/v1', kind: 'Deployment' };
    expect(reviewInput(o, constraint)).toEqual({
      review: {
        kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
        name: 'p',
        namespace: 'default',
        operation: 'CREATE',
        object: o,
      },
      parameters: { failurePolicy: 'Ignore' },
    });
  });
});

describe('parseObjects', () => {
  it('reads every document of a multi-document file and skips empty ones', () => {
    const objects = parseObjects(
      'apiVersion: v1\nkind: Pod\n---\n---\napiVersion: v1\nkind: Pod\n',
      'f.yaml',
    );
    expect(objects).toHaveLength(2);
  });

  it('names the file and document that is not a Kubernetes object', () => {
    expect(() => parseObjects('apiVersion: v1\nkind: Pod\n---\nfoo: bar\n', 'f.yaml')).toThrow(
      /f\.yaml: document 2: expected a Kubernetes object/,
    );
  });
});

describe('fileInTar', () => {
  it('finds a file of a ustar archive by name, with or without a leading slash', () => {
    const tar = tarWithOneFile('policy.wasm', Buffer.from('wasm bytes'));
    expect(fileInTar(tar, '/policy.wasm')?.toString()).toBe('wasm bytes');
    expect(fileInTar(tar, '/data.json')).toBeUndefined();
  });
});
