/**
 * vitest globalSetup for the integration project: make sure every real tool is installed before any
 * suite starts one. install.sh is idempotent and takes about a second when the cache is warm; on a fresh
 * machine it builds the Go tools, which is why this runs once here rather than per suite.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const INSTALL_SCRIPT = path.join('test', 'tools', 'install.sh');

export default async function setup(): Promise<void> {
  await installTools([]);
}

/** `args` selects tools, e.g. ['e2e'] for etcd, kube-apiserver and Gatekeeper (see install.sh). */
export async function installTools(args: string[]): Promise<void> {
  const exit = await runInstallScript(args);
  if (exit.code !== 0) {
    // Fail the whole run loudly: a suite without its tools would only report confusing spawn errors.
    throw new Error(
      `${INSTALL_SCRIPT} failed (exit code ${String(exit.code)}, signal ${String(exit.signal)}); ` +
        'its output is above. Run `npm run tools` to retry it on its own.',
    );
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs the script with inherited stdio so its progress (builds can take minutes) is visible. */
function runInstallScript(args: string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [INSTALL_SCRIPT, ...args], { cwd: REPO_ROOT, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}
