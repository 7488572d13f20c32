/**
 * Runs the real `provenant` command (bin/provenant.mjs) as a child process, the way users and the
 * Helm chart run it, and waits for its "listening on" line to learn the URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const START_TIMEOUT_MS = 30_000;

export interface RunningProvenant {
  readonly url: string;
  /** The process id (of `node` when started as `node bin/provenant.mjs …`). */
  readonly pid: number;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /**
   * Signals the process group and resolves with the exit code, or null if it had to be killed after
   * `killAfterMs`. SIGINT (the default) stops without the shutdown drain; SIGTERM, as Kubernetes sends
   * it, drains for server.drainSeconds first.
   */
  stop(opts?: StopOptions): Promise<number | null>;
}

export interface StopOptions {
  readonly signal?: 'SIGINT' | 'SIGTERM';
  readonly killAfterMs?: number;
}

const KILL_AFTER_MS = 5000;

/** `command` is e.g. ['node', 'bin/provenant.mjs', 'serve', ...] or ['npm', 'start', '--', ...]. */
export async function startProvenant(command: string[]): Promise<RunningProvenant> {
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const url = await waitForUrl(child, () => output);
  return { url, pid: child.pid ?? -1, output: () => output, stop: (opts) => stop(child, opts) };
}

function waitForUrl(child: ChildProcess, output: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(`no "listening on" line within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS,
    );
    const check = (): void => {
      const match = /provenant listening on (https:\/\/\S+)/.exec(output());
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        child.off('exit', onExit);
        resolve(match[1]);
      }
    };
    const fail = (why: string): void => {
      clearTimeout(timer);
      void stop(child);
      reject(new Error(`provenant did not start: ${why}\n${output()}`));
    };
    child.stdout?.on('data', check);
    // Only an exit before the "listening on" line is a failed start; later exits belong to stop().
    const onExit = (code: number | null): void => fail(`exited with ${code}`);
    child.once('exit', onExit);
  });
}

/** Signals the process group (npm start spawns node), then waits for the exit code. */
function stop(child: ChildProcess, opts: StopOptions = {}): Promise<number | null> {
  if (child.exitCode !== null || child.pid === undefined) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const kill = setTimeout(
      () => process.kill(-(child.pid as number), 'SIGKILL'),
      opts.killAfterMs ?? KILL_AFTER_MS,
    );
    child.once('exit', (code) => {
      clearTimeout(kill);
      resolve(code);
    });
    process.kill(-(child.pid as number), opts.signal ?? 'SIGINT');
  });
}

/**
 * An undici Agent that trusts the self-generated development certificate of a provenant started
 * without `server.tls` (the file it names in `--cacert …` when it starts).
 */
export function devCertAgent(provenant: RunningProvenant): Agent {
  const caFile = /--cacert (\S+)\)/.exec(provenant.output())?.[1];
  if (caFile === undefined)
    throw new Error(`provenant printed no development certificate:\n${provenant.output()}`);
  return new Agent({ connect: { ca: readFileSync(caFile, 'utf8') } });
}
