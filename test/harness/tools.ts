/**
 * Where the real third-party tools live. test/tools/install.sh builds the Go tools into a cache outside
 * the checkout (keyed by version) and installs the Debian ones system-wide; the harness only looks them
 * up here, so a missing tool fails the run with a message saying how to get it (DESIGN.md: no test is
 * skipped silently because a tool is missing).
 */
import { accessSync, constants, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Cache root shared with test/tools/install.sh; keep the default in step with that script. */
export const TOOLS_DIR: string =
  process.env['PROVENANT_TOOLS_DIR'] ?? path.join(os.homedir(), '.cache', 'provenant', 'tools');

/** Symlinks to the version-keyed Go tool builds. */
export const TOOLS_BIN_DIR: string = path.join(TOOLS_DIR, 'bin');

/** Tools test/tools/install.sh provides: Go builds in TOOLS_BIN_DIR, Debian binaries on PATH. */
export type ToolName =
  | 'crane'
  | 'opa'
  | 'cosign'
  | 'notation'
  | 'olareg'
  | 'etcd'
  | 'kube-apiserver'
  | 'gatekeeper'
  | 'kyverno'
  | 'kyverno-controller'
  | 'docker-registry'
  | 'notary-server'
  | 'notary-signer'
  | 'notary'
  | 'redis-server'
  | 'htpasswd'
  | 'token-server'
  | 'helm'
  | 'helm4'
  | 'kubeconform'
  | 'hadolint'
  | 'podman'
  | 'buildah'
  | 'faketime';

/**
 * Absolute path of an installed tool. The cache comes first so a pinned Go build wins over whatever
 * version a developer happens to have on PATH.
 */
export function toolPath(name: ToolName): string {
  const found = candidateDirs()
    .map((dir) => path.join(dir, name))
    .find(isExecutable);
  if (found === undefined) {
    throw new Error(
      `test tool "${name}" is not installed (looked in ${TOOLS_BIN_DIR} and PATH): ` +
        'run `npm run tools` (test/tools/install.sh)',
    );
  }
  return found;
}

function candidateDirs(): string[] {
  const pathDirs = (process.env['PATH'] ?? '').split(path.delimiter).filter((dir) => dir !== '');
  return [TOOLS_BIN_DIR, ...pathDirs];
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    // A directory is "executable" too; only a file (or a symlink to one) is a tool.
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
