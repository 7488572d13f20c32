/**
 * `npm run sbom [-- PATH]`: a CycloneDX SBOM of Provenant's runtime dependencies, written to PATH
 * (default dist/sbom.cdx.json), from the lock file (`npm sbom --package-lock-only`, so the same tree
 * `npm ci` installs).
 *
 * `npm sbom --omit dev` would be the direct way, but npm 11 then also drops runtime packages that are
 * optional peers of a dev dependency (as `tsx`, a runtime dependency until the image ran the compiled
 * build, was of vite): the SBOM would lack a package Provenant runs. So the whole tree is listed and the components npm marks as development-only
 * (`cdx:npm:package:development`) are removed, with the dependency edges to them. npm also names the
 * root component after the checkout's directory; it is named after package.json, as its purl is.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const DEFAULT_SBOM_PATH = 'dist/sbom.cdx.json';
const DEVELOPMENT_PROPERTY = 'cdx:npm:package:development';
const NPM_MAX_BUFFER_BYTES = 64 * 1024 * 1024;

export interface CycloneDxComponent {
  readonly 'bom-ref': string;
  readonly name: string;
  readonly version: string;
  readonly scope?: string;
  readonly purl?: string;
  readonly properties?: readonly { readonly name: string; readonly value: string }[];
}

export interface CycloneDxBom {
  readonly bomFormat: string;
  readonly specVersion: string;
  readonly metadata: { readonly component?: { readonly name: string; readonly version: string } };
  readonly components: readonly CycloneDxComponent[];
  readonly dependencies: readonly { readonly ref: string; readonly dependsOn?: readonly string[] }[];
}

/** The runtime SBOM of the package at `root`. */
export function runtimeSbom(root: string): CycloneDxBom {
  const text = execFileSync('npm', ['sbom', '--sbom-format', 'cyclonedx', '--package-lock-only'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: NPM_MAX_BUFFER_BYTES,
  });
  const bom = JSON.parse(text) as CycloneDxBom;
  const development = (c: CycloneDxComponent): boolean =>
    (c.properties ?? []).some((p) => p.name === DEVELOPMENT_PROPERTY && p.value === 'true');
  const components = bom.components.filter((c) => !development(c));
  const kept = new Set(components.map((c) => c['bom-ref']));
  const rootRef = bom.dependencies[0]?.ref;
  const { name } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { name: string };
  return {
    ...bom,
    metadata: { ...bom.metadata, component: bom.metadata.component && { ...bom.metadata.component, name } },
    components,
    dependencies: bom.dependencies
      .filter((d) => d.ref === rootRef || kept.has(d.ref))
      .map((d) => ({ ...d, dependsOn: (d.dependsOn ?? []).filter((ref) => kept.has(ref)) })),
  };
}

function main(): void {
  const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
  const path = resolve(root, process.argv[2] ?? DEFAULT_SBOM_PATH);
  const bom = runtimeSbom(root);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(bom, null, 2)}\n`);
  console.log(`${path}: CycloneDX ${bom.specVersion}, ${bom.components.length} runtime components`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === new URL(import.meta.url).pathname) main();
