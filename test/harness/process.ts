/**
 * Long-running server processes for integration tests: spawn, wait until they answer, keep the tail
 * of their output for error messages, and stop them (SIGTERM, then SIGKILL) with their temp dirs.
 * Every server listens on 127.0.0.1 and a port from freePort().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const LOOPBACK_HOST = '127.0.0.1';
/** Go servers start in well under a second; the margin covers a loaded CI machine. */
export const DEFAULT_READY_TIMEOUT_MS = 15_000;
/** How long a server gets to exit on SIGTERM before it is killed. */
export const STOP_GRACE_MS = 3_000;
const POLL_INTERVAL_MS = 25;
const CONNECT_ATTEMPT_TIMEOUT_MS = 500;
/** Enough of a server's log to see why it failed, without holding a chatty server's whole log. */
const OUTPUT_TAIL_BYTES = 32 * 1024;

/** How to tell that a server is ready: its TCP port accepts, or an HTTP URL answers (any status). */
export type Readiness = { kind: 'tcp'; host: string; port: number } | { kind: 'http'; url: string };

export interface StartProcessOptions {
  /** Shown in errors, e.g. "docker-registry". */
  name: string;
  command: string;
  args: readonly string[];
  ready: Readiness;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  readyTimeoutMs?: number;
  /** Directories the process uses; removed after it exits (or when it fails to start). */
  ownedDirs?: readonly string[];
  /**
   * The process makes itself a process-group leader and forks workers into that group (`openssl
   * ocsp -multi` calls setpgid(0, 0), which fails in a session leader, so it cannot be spawned
   * detached): signal the whole group, so no worker outlives the stop.
   */
  processGroup?: boolean;
}

export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  /** The last OUTPUT_TAIL_BYTES of stdout and stderr, interleaved. */
  output(): string;
  /** Idempotent: SIGTERM, SIGKILL after STOP_GRACE_MS, await exit, remove owned dirs. */
  stop(): Promise<void>;
}

/** A port the kernel just handed out. Another process could take it before ours binds it; rare on CI. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK_HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error(`unexpected listen address ${String(address)}`));
      });
    });
  });
}

/** A fresh directory under the OS temp dir, named so leftovers are recognisable. */
export function makeTempDir(label: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `provenant-${label}-`));
}

/** Whether something accepts TCP connections on host:port right now. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(CONNECT_ATTEMPT_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function startProcess(opts: StartProcessOptions): Promise<ServerProcess> {
  const child = spawn(opts.command, opts.args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const signal = (sig: NodeJS.Signals): void => signalChild(child, sig, opts.processGroup === true);
  const tail = new OutputTail(OUTPUT_TAIL_BYTES);
  child.stdout?.on('data', (chunk: Buffer) => tail.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));
  const exited = watchExit(child);
  liveChildren.add(signal);
  const stop = once(async () => {
    await terminate(signal, exited);
    liveChildren.delete(signal);
    await Promise.all((opts.ownedDirs ?? []).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  try {
    await waitUntilReady(opts.ready, opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, exited);
  } catch (error) {
    await stop();
    const log = `--- ${opts.name} output ---\n${tail.text()}`;
    throw new Error(`${opts.name} did not start: ${errorMessage(error)}\n${log}`, { cause: error });
  }
  return { name: opts.name, pid: child.pid ?? -1, output: () => tail.text(), stop };
}

/** Whether the process has ended, and how (exit status, or why it could not be spawned). */
interface ExitState {
  done: boolean;
  description: string;
}

/** Tracks exit without ever rejecting, so stop() and readiness polling can both look at it. */
function watchExit(child: ChildProcess): { state: ExitState; promise: Promise<void> } {
  const state: ExitState = { done: false, description: '' };
  const promise = new Promise<void>((resolve) => {
    child.on('error', (error) => {
      // 'error' without 'exit' means the process never started; after 'exit' it is a kill failure.
      if (child.pid === undefined) finish(`could not be spawned: ${error.message}`);
    });
    child.once('exit', (code, signal) =>
      finish(`exited with code ${String(code)}, signal ${String(signal)}`),
    );
    function finish(description: string): void {
      Object.assign(state, { done: true, description });
      resolve();
    }
  });
  return { state, promise };
}

async function waitUntilReady(
  ready: Readiness,
  timeoutMs: number,
  exited: { state: ExitState },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Checked first: a server that died (bad config, port taken) must fail fast, with its log.
    if (exited.state.done) throw new Error(`process ${exited.state.description}`);
    if (await answers(ready)) return;
    if (Date.now() > deadline) throw new Error(`${describe(ready)} did not answer within ${timeoutMs} ms`);
    await sleep(POLL_INTERVAL_MS);
  }
}

function answers(ready: Readiness): Promise<boolean> {
  switch (ready.kind) {
    case 'tcp':
      return canConnect(ready.host, ready.port);
    case 'http':
      return httpAnswers(ready.url);
  }
}

/** Any HTTP status counts: a registry with auth answers 401 on /v2/ and is perfectly ready. */
async function httpAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(CONNECT_ATTEMPT_TIMEOUT_MS) });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

function describe(ready: Readiness): string {
  switch (ready.kind) {
    case 'tcp':
      return `tcp://${ready.host}:${ready.port}`;
    case 'http':
      return ready.url;
  }
}

/** Signals the child, or its whole process group; a group already gone is not an error. */
function signalChild(child: ChildProcess, sig: NodeJS.Signals, group: boolean): void {
  if (!group || child.pid === undefined) {
    child.kill(sig);
    return;
  }
  try {
    process.kill(-child.pid, sig);
  } catch {
    // ESRCH: not yet a group leader, or every member has exited
    child.kill(sig);
  }
}

async function terminate(
  signal: (sig: NodeJS.Signals) => void,
  exited: { state: ExitState; promise: Promise<void> },
) {
  if (exited.state.done) {
    // The leader may be gone while forked workers are not; they share its group.
    signal('SIGKILL');
    return;
  }
  signal('SIGTERM');
  const graceful = await Promise.race([exited.promise.then(() => true), sleep(STOP_GRACE_MS, false)]);
  // Also after a graceful exit: a group's forked workers may not have followed their leader.
  signal('SIGKILL');
  if (!graceful) await exited.promise;
}

/** Keeps the last `limit` bytes written, dropping whole chunks from the front. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 1) {
      this.size -= this.chunks.shift()?.length ?? 0;
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).subarray(-this.limit).toString('utf8');
  }
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Servers still running when the test worker exits (a crashed suite, a missing afterAll) would
 * otherwise outlive it and hold their ports; kill them synchronously on the way out.
 */
const liveChildren = new Set<(sig: NodeJS.Signals) => void>();
process.once('exit', () => {
  for (const signal of liveChildren) signal('SIGKILL');
});
