/**
 * `provenant policy test`: a ConstraintTemplate's Rego against Kubernetes objects, offline, with
 * `external_data` answered by a resolver, and gator's Suite format (test.gatekeeper.sh/v1alpha1)
 * for gatekeeper-library-style samples, which gator itself cannot run when a template calls
 * external_data.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import {
  constraintMatches,
  describeObject,
  implicitConstraint,
  invalid,
  parseObjects,
  reviewInput,
  toConstraint,
  type Constraint,
  type EnforcementAction,
  type KubeObject,
} from './constraint.ts';
import { CompiledTemplate } from './evaluate.ts';
import type { ExternalDataResolver } from './external-data.ts';
import { readTemplate } from './template.ts';

export interface Finding {
  readonly object: string;
  readonly constraint: string;
  readonly enforcementAction: EnforcementAction;
  readonly msg: string;
}

/** What the API server would do: deny on a deny violation, warn on a warn one, else allow. */
export type Verdict = 'denied' | 'warned' | 'allowed';

export interface ObjectResult {
  readonly object: string;
  readonly verdict: Verdict;
  readonly findings: Finding[];
}

export async function loadTemplate(file: string): Promise<CompiledTemplate> {
  return CompiledTemplate.compile(readTemplate(await readText(file), file));
}

export async function loadConstraints(file: string, template: CompiledTemplate): Promise<Constraint[]> {
  return parseObjects(await readText(file), file).map((o) => {
    if (o.kind !== template.template.kind) {
      throw invalid(`${file}: expected constraints of kind ${template.template.kind}, found ${o.kind}`);
    }
    return toConstraint(o, file);
  });
}

export async function loadObjects(file: string): Promise<KubeObject[]> {
  return parseObjects(await readText(file), file);
}

export async function testObject(
  template: CompiledTemplate,
  constraints: readonly Constraint[],
  object: KubeObject,
  resolve: ExternalDataResolver,
): Promise<ObjectResult> {
  const active = constraints.length > 0 ? constraints : [implicitConstraint(template.template.kind)];
  const findings: Finding[] = [];
  for (const c of active.filter((k) => constraintMatches(k, object))) {
    const violations = await template.violations(reviewInput(object, c), resolve);
    for (const v of violations) {
      findings.push({
        object: describeObject(object),
        constraint: `${c.kind}/${c.name}`,
        enforcementAction: c.enforcementAction,
        msg: v.msg,
      });
    }
  }
  findings.sort((a, b) => a.constraint.localeCompare(b.constraint) || a.msg.localeCompare(b.msg));
  return { object: describeObject(object), verdict: verdictOf(findings), findings };
}

export function verdictOf(findings: readonly Finding[]): Verdict {
  if (findings.some((f) => f.enforcementAction === 'deny')) return 'denied';
  if (findings.some((f) => f.enforcementAction === 'warn')) return 'warned';
  return 'allowed';
}

export interface SuiteCaseResult {
  readonly test: string;
  readonly case: string;
  readonly result: ObjectResult;
  readonly passed: boolean;
  /** Why the case failed, when it did. */
  readonly failure?: string;
}

interface Assertion {
  readonly violations?: 'yes' | 'no' | number;
  readonly message?: string;
}

/** Runs a gator Suite: every case's object against its test's template and constraint. */
export async function runSuite(file: string, resolve: ExternalDataResolver): Promise<SuiteCaseResult[]> {
  const dir = path.dirname(file);
  const suite = parse(await readText(file)) as {
    kind?: unknown;
    tests?: { name?: string; template?: string; constraint?: string; cases?: unknown[] }[];
  };
  if (suite?.kind !== 'Suite' || !Array.isArray(suite.tests)) {
    throw invalid(`${file}: expected a gator Suite (kind: Suite) with tests`);
  }
  const results: SuiteCaseResult[] = [];
  for (const test of suite.tests) {
    if (typeof test.template !== 'string')
      throw invalid(`${file}: test ${test.name ?? '?'} names no template`);
    const template = await loadTemplate(path.resolve(dir, test.template));
    const constraints =
      test.constraint === undefined
        ? []
        : await loadConstraints(path.resolve(dir, test.constraint), template);
    for (const raw of test.cases ?? []) {
      const c = raw as { name?: string; object?: string; assertions?: Assertion[] };
      if (typeof c.object !== 'string') throw invalid(`${file}: case ${c.name ?? '?'} names no object`);
      const [object] = await loadObjects(path.resolve(dir, c.object));
      if (object === undefined) throw invalid(`${file}: ${c.object} holds no object`);
      const result = await testObject(template, constraints, object, resolve);
      const failure = (c.assertions ?? []).map((a) => checkAssertion(a, result)).find((f) => f !== undefined);
      results.push({
        test: test.name ?? test.template,
        case: c.name ?? c.object,
        result,
        passed: failure === undefined,
        ...(failure === undefined ? {} : { failure }),
      });
    }
  }
  return results;
}

/** gator's assertion semantics: violations yes (at least one), no (none) or an exact count. */
function checkAssertion(a: Assertion, result: ObjectResult): string | undefined {
  const pattern = a.message === undefined ? undefined : new RegExp(a.message);
  const count = result.findings.filter((f) => pattern === undefined || pattern.test(f.msg)).length;
  const expected = a.violations ?? 'yes';
  const ok = expected === 'yes' ? count > 0 : expected === 'no' ? count === 0 : count === expected;
  if (ok) return undefined;
  const about = a.message === undefined ? '' : ` matching /${a.message}/`;
  return `expected violations${about}: ${expected}, found ${count}`;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw invalid(`cannot read ${file}: ${(err as Error).message}`);
  }
}
