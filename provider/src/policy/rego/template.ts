/**
 * ConstraintTemplates as Gatekeeper reads them: the Rego of the admission target, its package (the
 * WASM entrypoints are `<package>/violation`), and the generator that wraps a policies/ Rego source in
 * its constraint.tmpl, gatekeeper-library style.
 */
import { parse, stringify } from 'yaml';

export const ADMISSION_TARGET = 'admission.k8s.gatekeeper.sh';

export interface TemplateRego {
  /** metadata.name, e.g. provenantverifiedimages. */
  readonly name: string;
  /** spec.crd.spec.names.kind: the kind of the template's Constraints. */
  readonly kind: string;
  readonly rego: string;
  /** The Rego package as a slash path, e.g. provenantverifiedimages or lib/images. */
  readonly packagePath: string;
}

export const GENERATED_HEADER = (source: string): string =>
  `# Generated from ${source} by test/tools/gen-gatekeeper.ts; do not edit: edit the source and rerun\n` +
  `# \`npx tsx test/tools/gen-gatekeeper.ts\` (a unit test fails when the two drift apart).\n`;

/** Reads a ConstraintTemplate manifest; throws naming what is missing. */
export function readTemplate(text: string, source: string): TemplateRego {
  const doc = asRecord(parse(text), `${source}: expected a ConstraintTemplate`);
  if (doc.kind !== 'ConstraintTemplate') {
    throw new Error(`${source}: expected kind ConstraintTemplate, found ${JSON.stringify(doc.kind)}`);
  }
  const name = asRecord(doc.metadata, `${source}: expected metadata`).name;
  const spec = asRecord(doc.spec, `${source}: expected spec`);
  const kind = asRecord(asRecord(asRecord(spec.crd, 'crd').spec, 'crd.spec').names, 'names').kind;
  const targets = Array.isArray(spec.targets) ? (spec.targets as unknown[]) : [];
  const target = targets
    .map((t) => asRecord(t, `${source}: expected spec.targets[] objects`))
    .find((t) => t.target === ADMISSION_TARGET);
  if (typeof name !== 'string' || typeof kind !== 'string' || typeof target?.rego !== 'string') {
    throw new Error(
      `${source}: expected metadata.name, spec.crd.spec.names.kind and a ${ADMISSION_TARGET} target with rego`,
    );
  }
  return { name, kind, rego: target.rego, packagePath: regoPackage(target.rego, source) };
}

export function regoPackage(rego: string, source: string): string {
  const match = /^package\s+([A-Za-z_][\w.]*)\s*$/m.exec(rego);
  if (match?.[1] === undefined) throw new Error(`${source}: expected a "package" line in the Rego`);
  return match[1].replaceAll('.', '/');
}

/** constraint.tmpl with src.rego as the admission target's rego, as YAML text with a header. */
export function renderTemplate(tmplText: string, rego: string, source: string): string {
  const doc = asRecord(parse(tmplText), 'constraint.tmpl');
  const spec = asRecord(doc.spec, 'constraint.tmpl: spec');
  const targets = Array.isArray(spec.targets) ? (spec.targets as unknown[]) : [];
  const target = targets.map((t) => asRecord(t, 'target')).find((t) => t.target === ADMISSION_TARGET);
  if (target === undefined) throw new Error(`constraint.tmpl: expected a ${ADMISSION_TARGET} target`);
  target.rego = rego;
  return GENERATED_HEADER(source) + stringify(doc, { lineWidth: 0 });
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(what);
  return value as Record<string, unknown>;
}
