/**
 * podman (Debian), running images under crun, a real OCI runtime, with the storage that image/build.ts
 * fills. Two facts of CI sandboxes shape the flags, neither of which weakens what a test checks:
 * - root may lack CAP_SYS_RESOURCE, so podman's default rlimits (raised above the hard limit) fail at
 *   setrlimit: explicit lower `--ulimit`s;
 * - a cgroup v1 host with controllers also enabled on its cgroup v2 hierarchy ("hybrid") is refused by
 *   crun: no cgroups for the container (`--cgroups=disabled`), and podman runs in a private mount
 *   namespace without the v2 mount, so crun sees plain cgroup v1.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CONTAINER_STORAGE_FLAGS } from '../../image/build.ts';
import { toolPath } from './tools.ts';

const run = promisify(execFile);
const UNIFIED = '/sys/fs/cgroup/unified';
const PODMAN_TIMEOUT_MS = 120_000;

/** Flags `podman run` needs here (see above). */
export const RUN_FLAGS = [
  '--cgroups=disabled',
  '--ulimit',
  'nofile=4096:4096',
  '--ulimit',
  'nproc=1024:1024',
];

function hybridWithControllers(): boolean {
  const controllers = path.join(UNIFIED, 'cgroup.controllers');
  return existsSync(controllers) && readFileSync(controllers, 'utf8').trim() !== '';
}

/** The command line for `podman ARGS`, in a private mount namespace when crun needs it. */
function command(args: readonly string[]): [string, string[]] {
  const podman = toolPath('podman');
  if (!hybridWithControllers()) return [podman, [...CONTAINER_STORAGE_FLAGS, ...args]];
  const script = `umount ${UNIFIED} && exec "$0" "$@"`;
  return [
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', script, podman, ...CONTAINER_STORAGE_FLAGS, ...args],
  ];
}

export async function podman(args: readonly string[]): Promise<string> {
  const [file, argv] = command(args);
  try {
    return (await run(file, argv, { timeout: PODMAN_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`podman ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

export interface RunningContainer {
  output(): string;
  /** Resolves with podman's exit code (the container's), or null when it was killed. */
  readonly exited: Promise<number | null>;
  /** Signals the container (podman proxies the signal) and waits up to `timeoutMs` for it to exit. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<number | null>;
}

/** `podman run ARGS` in the foreground, as a child process of the test. */
export function runContainer(args: readonly string[]): RunningContainer {
  const [file, argv] = command(['run', '--rm', ...RUN_FLAGS, ...args]);
  const child: ChildProcess = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    output: () => output,
    exited,
    stop: async (signal, timeoutMs) => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
