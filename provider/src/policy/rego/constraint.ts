/**
 * Constraints and the objects they review, as Gatekeeper matches and presents them: `spec.match`
 * (kinds, namespaces, excludedNamespaces; `*` as a trailing wildcard, as Gatekeeper's namespace
 * matchers allow), `spec.enforcementAction`, and the Rego input {review: AdmissionRequest, parameters}.
 */
import { parseAllDocuments } from 'yaml';
import { ProvenantError } from '../../types/errors.ts';

export type EnforcementAction = 'deny' | 'warn' | 'dryrun';

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name?: string; readonly namespace?: string };
  readonly [field: string]: unknown;
}

export interface Constraint {
  readonly kind: string;
  readonly name: string;
  readonly enforcementAction: EnforcementAction;
  readonly parameters: Record<string, unknown>;
  readonly match: {
    readonly kinds?: { apiGroups?: string[]; kinds?: string[] }[];
    readonly namespaces?: string[];
    readonly excludedNamespaces?: string[];
  };
}

/** Every non-empty YAML document of a file, checked to be a Kubernetes object. */
export function parseObjects(text: string, source: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((doc, i) => {
      if (doc.errors.length > 0) throw invalid(`${source}: ${doc.errors[0]?.message ?? 'invalid YAML'}`);
      return { value: doc.toJS() as unknown, i };
    })
    .filter(({ value }) => value !== null && value !== undefined)
    .map(({ value, i }) => {
      const o = value as Partial<KubeObject>;
      if (typeof o !== 'object' || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') {
        throw invalid(`${source}: document ${i + 1}: expected a Kubernetes object with apiVersion and kind`);
      }
      return { ...o, metadata: o.metadata ?? {} } as KubeObject;
    });
}

export function toConstraint(o: KubeObject, source: string): Constraint {
  const spec = (o.spec ?? {}) as Record<string, unknown>;
  const action = spec.enforcementAction ?? 'deny';
  if (action !== 'deny' && action !== 'warn' && action !== 'dryrun') {
    throw invalid(
      `${source}: expected enforcementAction deny, warn or dryrun, found ${JSON.stringify(action)}`,
    );
  }
  return {
    kind: o.kind,
    name: o.metadata.name ?? '',
    enforcementAction: action,
    parameters: (spec.parameters ?? {}) as Record<string, unknown>,
    match: spec.match ?? {},
  };
}

/** A constraint for a bare `--template` run: every object, no parameters, deny. */
export function implicitConstraint(kind: string): Constraint {
  return { kind, name: '(no constraint)', enforcementAction: 'deny', parameters: {}, match: {} };
}

export function constraintMatches(c: Constraint, o: KubeObject): boolean {
  const group = apiGroup(o.apiVersion);
  const kinds = c.match.kinds;
  if (kinds !== undefined && kinds.length > 0) {
    const hit = kinds.some(
      (k) =>
        (k.apiGroups ?? ['*']).some((g) => g === '*' || g === group) &&
        (k.kinds ?? ['*']).some((n) => n === '*' || n === o.kind),
    );
    if (!hit) return false;
  }
  const ns = o.metadata.namespace;
  if (ns !== undefined) {
    if (c.match.namespaces !== undefined && !c.match.namespaces.some((p) => namespaceMatches(p, ns)))
      return false;
    if (c.match.excludedNamespaces?.some((p) => namespaceMatches(p, ns))) return false;
  }
  return true;
}

/** Gatekeeper's review input: the AdmissionRequest of a CREATE, and the constraint's parameters. */
export function reviewInput(o: KubeObject, c: Constraint): object {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  return {
    review: {
      kind: { group, version, kind: o.kind },
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      operation: 'CREATE',
      object: o,
    },
    parameters: c.parameters,
  };
}

export function describeObject(o: KubeObject): string {
  const ns = o.metadata.namespace === undefined ? '' : `${o.metadata.namespace}/`;
  return `${o.kind}/${ns}${o.metadata.name ?? '(unnamed)'}`;
}

function apiGroup(apiVersion: string): string {
  return apiVersion.includes('/') ? (apiVersion.split('/')[0] as string) : '';
}

function namespaceMatches(pattern: string, ns: string): boolean {
  return pattern.endsWith('*') ? ns.startsWith(pattern.slice(0, -1)) : pattern === ns;
}

export function invalid(message: string): ProvenantError {
  return new ProvenantError('POLICY_TEST_INVALID_INPUT', message);
}
