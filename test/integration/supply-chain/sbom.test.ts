/**
 * `npm run sbom`: the CycloneDX SBOM lists every runtime dependency package.json declares, at the
 * version the lock file pins, and none of the development-only tools.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { CycloneDxBom } from '../../supply-chain/sbom.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const NPM_TIMEOUT_MS = 90_000;

interface PackageJson {
  readonly name: string;
  readonly dependencies: Record<string, string>;
  readonly devDependencies: Record<string, string>;
}
interface LockFile {
  readonly packages: Record<string, { readonly version?: string; readonly dev?: boolean }>;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as LockFile;

describe('npm run sbom', () => {
  const dir = mkdtempSync(join(tmpdir(), 'provenant-sbom-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'writes a CycloneDX SBOM listing every runtime dependency at its locked version, and no dev-only tool',
    () => {
      const path = join(dir, 'sbom.cdx.json');
      execFileSync('npm', ['run', '--silent', 'sbom', '--', path], { cwd: ROOT, timeout: NPM_TIMEOUT_MS });
      const bom = JSON.parse(readFileSync(path, 'utf8')) as CycloneDxBom;
      expect(bom.bomFormat).toBe('CycloneDX');
      expect(bom.metadata.component?.name).toBe(pkg.name);
      const listed = new Map(bom.components.map((c) => [c.name, c.version]));
      for (const name of Object.keys(pkg.dependencies)) {
        expect(listed.get(name), name).toBe(lock.packages[`node_modules/${name}`]?.version);
      }
      const devOnly = Object.keys(pkg.devDependencies).filter(
        (name) => lock.packages[`node_modules/${name}`]?.dev === true,
      );
      expect(devOnly.length).toBeGreaterThan(0);
      for (const name of devOnly) expect(listed.has(name), name).toBe(false);
    },
    NPM_TIMEOUT_MS,
  );
});
