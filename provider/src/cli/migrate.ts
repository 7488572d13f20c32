/**
 * `provenant migrate connaisseur VALUES.yaml… [--out DIR]`: writes provenant.yaml, gatekeeper.yaml
 * (the constraint and mutators reproducing `features:`), values.yaml (provisional values for
 * charts/provenant) and MIGRATION.md (the report, also printed), then loads the written config as
 * `serve` would, so a migration that does not load says so at once.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfigFile } from '../config/index.ts';
import {
  isValues,
  migrateConnaisseur,
  renderReport,
  type KubeObject,
  type ShippedGatekeeper,
  type Values,
} from '../migrate/index.ts';
import { toProvenantError } from '../types/errors.ts';
import type { Parsed } from './args.ts';

export const EXIT_MIGRATED = 0;
export const EXIT_NOT_LOADING = 1;
const DEFAULT_OUT_DIR = 'provenant-migration';

/**
 * The directory holding package.json: three levels above provider/src/cli (tsx), two above dist/cli
 * (the compiled build), so the shipped gatekeeper/ manifests are found from either.
 */
function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('package.json not found above the provenant command');
  }
}

export function migrate(args: Parsed, out: NodeJS.WritableStream): number {
  const [from, ...files] = args.positionals;
  if (from !== 'connaisseur') throw new Error('migrate expects "connaisseur" and at least one VALUES.yaml');
  if (files.length === 0)
    throw new Error('migrate connaisseur expects at least one VALUES.yaml (the chart values first)');
  const layers = files.map(readValues);
  const migration = migrateConnaisseur(layers, shippedGatekeeper());
  const dir = path.resolve(args.out ?? DEFAULT_OUT_DIR);
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'provenant.yaml');
  writeFileSync(
    configFile,
    `# Migrated from Connaisseur by provenant migrate connaisseur (see MIGRATION.md)\n${stringify(migration.config)}`,
    { mode: 0o600 },
  );
  writeFileSync(
    path.join(dir, 'gatekeeper.yaml'),
    `# The ProvenantVerifiedImages constraint and Assign mutators reproducing Connaisseur's features:\n# kubectl apply -f gatekeeper.yaml (after gatekeeper/provider.yaml and gatekeeper/templates/)\n${migration.gatekeeper.objects.map((o) => stringify(o)).join('---\n')}`,
  );
  writeFileSync(
    path.join(dir, 'values.yaml'),
    `# Values for Provenant's Helm chart (charts/provenant): the Provenant config's sections at the top\n# level, and the Gatekeeper policies as Connaisseur's features: asked. Install with\n# --set gatekeeper.policies.constraint.enabled=false first: the constraint's CRD comes from the template.\n${stringify(migration.chartValues)}`,
    { mode: 0o600 },
  );
  const report = renderReport(migration, files);
  writeFileSync(path.join(dir, 'MIGRATION.md'), report);
  out.write(report);
  out.write(`\nWrote ${configFile}, gatekeeper.yaml, values.yaml and MIGRATION.md in ${dir}\n`);
  try {
    loadConfigFile(configFile);
    out.write('The migrated config loads.\n');
    return EXIT_MIGRATED;
  } catch (err) {
    out.write(`The migrated config does not load yet: ${toProvenantError(err).message}\n`);
    return EXIT_NOT_LOADING;
  }
}

function readValues(file: string): Values {
  const value: unknown = parse(readFileSync(file, 'utf8'), { uniqueKeys: true }) ?? {};
  if (!isValues(value)) throw new Error(`${file}: expected Helm values (a YAML mapping)`);
  return value;
}

function shippedGatekeeper(): ShippedGatekeeper {
  const read = (file: string): KubeObject[] =>
    parseAllDocuments(readFileSync(path.join(packageRoot(), 'gatekeeper', file), 'utf8'))
      .map((d) => d.toJS() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null);
  const [constraint] = read('constraints/verified-images.yaml');
  if (constraint === undefined)
    throw new Error('gatekeeper/constraints/verified-images.yaml holds no constraint');
  return {
    constraint,
    podMutators: read('mutations/pods/assign-pod-images.yaml'),
    workloadMutators: read('mutations/workloads/assign-workload-images.yaml'),
  };
}
