/**
 * The systems under test, each a real process on loopback serving the same TLS certificate (TLS 1.3):
 * Provenant (`node bin/provenant.mjs serve`, as users run it, from the compiled JavaScript in dist/ that
 * `npm run bench` builds first; a missing or stale build is made rather than measured through tsx), Ratify v1.4.6 (`ratify serve`, its
 * Gatekeeper external data endpoints, cache on with Provenant's TTL) and the floor (floor.ts).
 * Start-to-ready, RSS and CPU are read from the process itself (/proc).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { LOOPBACK_HOST, freePort, makeTempDir, startProcess } from '../harness/process.ts';
import { PROJECT_ROOT } from '../harness/provenant.ts';
import type { CertFiles } from '../harness/pki.ts';
import { TOOLS_BIN_DIR } from '../harness/tools.ts';
import type { Fixtures, Kind } from './fixtures.ts';
import { repoPrefix } from './fixtures.ts';

export type SystemName = 'provenant' | 'ratify' | 'floor';

/** Both caches keep verdicts this long: every warm figure is a cache hit in both. */
export const CACHE_TTL_S = 600;
const READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 5;
/** Linux reports process CPU time in clock ticks of 1/100 s (getconf CLK_TCK). */
const CLOCK_TICKS_PER_S = 100;

export interface System {
  readonly name: SystemName;
  readonly pid: number;
  /** Spawn to the first answered ProviderRequest (ms). */
  readonly readyMs: number;
  /** An undici Agent trusting the benchmark CA, with `connections` sockets. */
  agent(connections: number): Agent;
  url(route: 'verify' | 'mutate'): string;
  /** Whether an answered item is a success (each system says it its own way). */
  itemOk(item: { value: unknown; error: string }): boolean;
  rssBytes(): number;
  cpuSeconds(): number;
  /** Event-loop delay p99 since the last call (ms); undefined for Ratify (Go has no event loop). */
  eventLoopP99Ms(): Promise<number | undefined>;
  stop(): Promise<void>;
}

export interface BenchTls {
  readonly ca: CertFiles;
  readonly server: CertFiles;
}

export type SystemStarter = () => Promise<System>;

const ROUTES: Record<SystemName, Record<'verify' | 'mutate', string>> = {
  provenant: { verify: '/v1/verify', mutate: '/v1/mutate' },
  ratify: { verify: '/ratify/gatekeeper/v1/verify', mutate: '/ratify/gatekeeper/v1/mutate' },
  floor: { verify: '/verify', mutate: '/mutate' },
};

/** A replica sharing its verdicts through Redis (`cache.redis`), with its own config file `name`.yaml. */
export interface SharedCache {
  readonly name: string;
  readonly redisUrl: string;
  readonly hmacKey: string;
}

/** Provenant's config: every kind's repositories routed to its validator, nothing else admitted. */
export async function provenantStarter(
  fixtures: Fixtures,
  tls: BenchTls,
  shared?: SharedCache,
): Promise<SystemStarter> {
  const host = fixtures.proxy.host;
  const notary = fixtures.notary;
  const rule = (kind: Kind, validator: string, extra = ''): string =>
    `  - { pattern: "${host}/${repoPrefix(kind)}/*", validator: ${validator}${extra} }`;
  const offline = ', with: { verifyInTransparencyLog: false }';
  const config = [
    'validators:',
    '  - { name: deny, type: static }',
    '  - { name: allow, type: static, approve: true }',
    `  - { name: signed, type: cosign, trustRoots: [{ name: default, key: ${JSON.stringify(fixtures.cosignKey.publicKey)} }] }`,
    ...(notary === undefined
      ? []
      : [
          `  - { name: dct, type: notaryv1, host: "${notary.server.host}", cert: ${JSON.stringify(notary.server.caPem)}, trustRoots: [{ name: default, key: ${JSON.stringify(notary.rootKey)} }] }`,
        ]),
    'policy:',
    '  - { pattern: "*:*", validator: deny }',
    rule('cosign-sig', 'signed', offline),
    rule('cosign-bundle', 'signed', offline),
    ...(notary === undefined ? [] : [rule('notaryv1', 'dct')]),
    rule('static', 'allow'),
    'server:',
    `  { host: ${LOOPBACK_HOST}, port: 0, tls: { cert: "${tls.server.cert}", key: "${tls.server.key}", minVersion: TLSv1.3 } }`,
    `registries: [{ host: "${host}", insecure: true }]`,
    `cache: { ttlSeconds: ${CACHE_TTL_S}, maxEntries: 20000${shared === undefined ? '' : `, redis: "${shared.redisUrl}", hmacKey: "${shared.hmacKey}"`} }`,
    'sigstore: { offline: true }',
    'log: { level: error }',
  ].join('\n');
  const configPath = path.join(fixtures.dir, `${shared?.name ?? 'provenant'}.yaml`);
  await writeFile(configPath, config);
  ensureFreshBuild();
  return async () => {
    const port = await freePort();
    return startSystem('provenant', tls, port, {
      command: process.execPath,
      args: [
        path.join(PROJECT_ROOT, 'bin/provenant.mjs'),
        'serve',
        '--config',
        configPath,
        '--port',
        String(port),
      ],
      cwd: PROJECT_ROOT,
    });
  };
}

/**
 * bin/provenant.mjs runs dist/ only when no source is newer (else the sources through tsx, which start
 * and first answer slower): the benchmark measures what the container image ships, so a missing or
 * stale build is made first (`npm run build`, as `npm run bench` does before anything else).
 */
function ensureFreshBuild(): void {
  const built = statSync(path.join(PROJECT_ROOT, 'dist/cli/main.js'), { throwIfNoEntry: false });
  const sources = readdirSync(path.join(PROJECT_ROOT, 'provider/src'), {
    recursive: true,
    withFileTypes: true,
  });
  const fresh =
    built !== undefined &&
    sources.every((e) => !e.isFile() || statSync(path.join(e.parentPath, e.name)).mtimeMs <= built.mtimeMs);
  if (!fresh) execFileSync('npm', ['run', 'build', '--silent'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
}

/**
 * Ratify's CLI-mode config (config/config.json of Ratify v1.4.6): the ORAS store over plain HTTP with
 * cosign signatures, the cosign verifier with the benchmark key and no transparency log, and a policy
 * that needs one cosign signature. Each start gets a fresh ORAS blob cache directory, so a new process
 * is as cold as a new Provenant process.
 */
export async function ratifyStarter(fixtures: Fixtures, tls: BenchTls): Promise<SystemStarter> {
  const binary = path.join(TOOLS_BIN_DIR, 'ratify');
  const certDir = path.join(fixtures.dir, 'ratify-certs');
  await mkdir(certDir, { recursive: true });
  await copyFile(tls.server.cert, path.join(certDir, 'tls.crt'));
  await copyFile(tls.server.key, path.join(certDir, 'tls.key'));
  const cosignArtifact = 'application/vnd.dev.cosign.artifact.sig.v1+json';
  return async () => {
    const home = await makeTempDir('ratify-home');
    const configPath = path.join(home, 'config.json');
    await writeFile(
      configPath,
      JSON.stringify({
        executor: {},
        store: {
          version: '1.0.0',
          plugins: [
            {
              name: 'oras',
              useHttp: true,
              cosignEnabled: true,
              localCachePath: path.join(home, 'oras-cache'),
            },
          ],
        },
        policy: {
          version: '1.0.0',
          plugin: { name: 'configPolicy', artifactVerificationPolicies: { [cosignArtifact]: 'any' } },
        },
        verifier: {
          version: '1.0.0',
          plugins: [
            {
              name: 'cosign',
              artifactTypes: cosignArtifact,
              trustPolicies: [
                {
                  name: 'default',
                  version: '1.0.0',
                  scopes: ['*'],
                  keys: [{ file: path.join(fixtures.dir, 'cosign.pub') }],
                  tLogVerify: false,
                },
              ],
            },
          ],
        },
      }),
    );
    const port = await freePort();
    return startSystem(
      'ratify',
      tls,
      port,
      {
        command: binary,
        args: [
          'serve',
          '--http',
          `${LOOPBACK_HOST}:${port}`,
          '-c',
          configPath,
          '--cert-dir',
          certDir,
          '--cache-enabled',
          '--cache-ttl',
          `${CACHE_TTL_S}s`,
        ],
        env: { ...process.env, RATIFY_LOG_LEVEL: 'error', RATIFY_CONFIG: home },
      },
      [home],
    );
  };
}

export function floorStarter(tls: BenchTls): SystemStarter {
  return async () => {
    const port = await freePort();
    return startSystem('floor', tls, port, {
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        path.join(PROJECT_ROOT, 'test/bench/floor.ts'),
        String(port),
        tls.server.cert,
        tls.server.key,
      ],
      cwd: PROJECT_ROOT,
    });
  };
}

interface Command {
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

async function startSystem(
  name: SystemName,
  tls: BenchTls,
  port: number,
  cmd: Command,
  ownedDirs: string[] = [],
): Promise<System> {
  const base = `https://${LOOPBACK_HOST}:${port}`;
  const ca = readFileSync(tls.ca.cert, 'utf8');
  const probe = new Agent({ connect: { ca } });
  const started = performance.now();
  const proc = await startProcess({
    name,
    ...cmd,
    ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
    readyTimeoutMs: READY_TIMEOUT_MS,
    ownedDirs,
  });
  try {
    await firstAnswer(`${base}${ROUTES[name].verify}`, probe, started);
  } catch (error) {
    await proc.stop();
    throw new Error(`${name} did not answer: ${String(error)}\n${proc.output()}`, { cause: error });
  } finally {
    await probe.close();
  }
  const readyMs = performance.now() - started;
  const agents: Agent[] = [];
  return {
    name,
    pid: proc.pid,
    readyMs,
    agent: (connections) => {
      const agent = new Agent({ connections, connect: { ca }, keepAliveTimeout: 60_000 });
      agents.push(agent);
      return agent;
    },
    url: (route) => `${base}${ROUTES[name][route]}`,
    itemOk: name === 'ratify' ? ratifyItemOk : (item) => item.error === '',
    rssBytes: () => rssBytes(proc.pid),
    cpuSeconds: () => cpuSeconds(proc.pid),
    eventLoopP99Ms: () => eventLoopP99Ms(name, base, ca),
    stop: async () => {
      await Promise.all(agents.map((a) => a.close()));
      await proc.stop();
    },
  };
}

/** Ratify answers every verify key with an item whose `value.isSuccess` is the verdict. */
function ratifyItemOk(item: { value: unknown; error?: string }): boolean {
  // Go's encoding/json leaves out an empty error (omitempty).
  if (item.error !== undefined && item.error !== '') return false;
  if (typeof item.value === 'string') return true; // mutate: the pinned reference
  return (item.value as { isSuccess?: unknown } | null)?.isSuccess === true;
}

/** Polls with an empty ProviderRequest until one is answered 200. */
async function firstAnswer(url: string, agent: Agent, started: number): Promise<void> {
  for (;;) {
    try {
      const res = await request(url, { method: 'POST', dispatcher: agent, ...providerBody([]) });
      await res.body.text();
      if (res.statusCode === 200) return;
    } catch {
      // not listening with TLS yet
    }
    if (performance.now() - started > READY_TIMEOUT_MS)
      throw new Error(`no answer within ${READY_TIMEOUT_MS} ms`);
    await sleep(READY_POLL_MS);
  }
}

/** The ProviderRequest body and header for `keys` (Gatekeeper's externaldata v1beta1 shape). */
export function providerBody(keys: readonly string[]): { body: string; headers: Record<string, string> } {
  return {
    body: JSON.stringify({
      apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
      kind: 'ProviderRequest',
      request: { keys },
    }),
    headers: { 'content-type': 'application/json' },
  };
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** utime + stime of the process (all its threads), from /proc/PID/stat (proc(5): fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/**
 * Both Node systems sample the event loop with a 10 ms timer (monitorEventLoopDelay: prom-client's default
 * eventLoopMonitoringPrecision, and floor.ts), and each sample is the timer's interval plus the delay
 * (an idle process reports about 11 ms at p99): the interval is taken off, leaving the delay itself.
 */
const EVENT_LOOP_SAMPLING_MS = 10;

async function eventLoopP99Ms(name: SystemName, base: string, ca: string): Promise<number | undefined> {
  const sampled = await sampledEventLoopP99Ms(name, base, ca);
  return sampled === undefined ? undefined : Math.max(0, sampled - EVENT_LOOP_SAMPLING_MS);
}

async function sampledEventLoopP99Ms(
  name: SystemName,
  base: string,
  ca: string,
): Promise<number | undefined> {
  if (name === 'ratify') return undefined;
  const agent = new Agent({ connect: { ca } });
  try {
    if (name === 'floor') {
      const res = await request(`${base}/stats`, { dispatcher: agent });
      return ((await res.body.json()) as { eventLoopP99Ms: number }).eventLoopP99Ms;
    }
    // prom-client's default metric: p99 of monitorEventLoopDelay since the previous scrape.
    const res = await request(`${base}/metrics`, { dispatcher: agent });
    const text = await res.body.text();
    const seconds = /^provenant_nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text)?.[1];
    return seconds === undefined ? undefined : Number(seconds) * 1000;
  } finally {
    await agent.close();
  }
}
