/**
 * Egress policy: the one place that decides which hosts and addresses Provenant may connect to. Image
 * references come from whoever may create a pod, so without it an image named
 * `169.254.169.254/latest/x` (cloud metadata), `127.0.0.1:8443/x` (Provenant itself) or
 * `svc.cluster.local:6379/x` turns the provider into a port scanner of the cluster network (SSRF).
 *
 * Every connection is graded by how its host is known:
 * - `any`: a `registries:` entry names the host literally (`host`, `host:port` or `host:*`, or as a
 *   `mirror`), or it is a validator's configured server (Notary): every address is allowed, loopback too.
 * - `private`: a `registries:` entry with a glob in the host part matches it, or a policy pattern's
 *   registry part names it, in the shapes `hostGlobs` accepts: every address except loopback,
 *   link-local, unspecified, multicast and cloud-metadata ones.
 * - `public`: any other host, for redirects and token realms of a registry already allowed, and for
 *   images when `network.egress.allowUnlistedRegistries` is set: only global unicast addresses.
 *
 * Names are checked, and so is every address DNS answers for them: the agent connects through `lookup`,
 * which refuses the whole answer when one address is out of bounds, and the socket connects to exactly
 * the addresses checked, so DNS rebinding between check and connect is impossible.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

import ipaddr from 'ipaddr.js';

import type { RegistryConfig } from '../config/index.ts';
import { registryApiHost } from '../reference/index.ts';

export type Reach = 'any' | 'private' | 'public';

/**
 * Why a connection is made: images may reach listed hosts only; their registries may send us on; a
 * trusted signing chain's OCSP responders and CRL distribution points (`revocation`) reach public
 * addresses, or any address of a host a `registries:` entry names; alert receivers (`alert`) are hosts
 * the `alerting:` section names (`configuredHosts`).
 */
export type EgressPurpose = 'registry' | 'redirect' | 'token' | 'revocation' | 'alert';

export interface EgressOptions {
  readonly registries: readonly RegistryConfig[];
  /** The policy's `pattern`s: their registry parts list hosts (`private` reach). */
  readonly policyPatterns?: readonly string[] | undefined;
  /** Servers a validator is configured with (a Notary host): `any` reach, like a `registries:` entry. */
  readonly configuredHosts?: readonly string[] | undefined;
  /** Let images name registries that are neither in `registries:` nor in a pattern (public addresses only). */
  readonly allowUnlistedRegistries?: boolean | undefined;
  /** DNS resolution (dns.lookup); tests inject answers here. */
  readonly lookup?: typeof dnsLookup | undefined;
}

/** Thrown (through the socket) when a host or one of its addresses is refused. */
export class EgressDeniedError extends Error {
  override readonly name = 'EgressDeniedError';
  constructor(
    readonly host: string,
    /** What was refused, without addresses (they would tell a client about the internal network). */
    readonly reason: string,
  ) {
    super(`egress to ${host} refused: ${reason}`);
  }
}

// Cloud instance metadata services outside the link-local ranges (AWS IPv6, Alibaba, Oracle).
const METADATA_ADDRESSES: ReadonlySet<string> = new Set(['fd00:ec2::254', '100.100.100.200', '192.0.0.192']);
// ipaddr.js ranges never contacted unless a `registries:` entry names the host.
const NEVER_RANGES: ReadonlySet<string> = new Set([
  'unspecified',
  'loopback',
  'linkLocal',
  'multicast',
  'broadcast',
]);
const GLOB_CHARS_PATTERN = /[*?[\]{}\\]/;
// A glob that lists hosts (a pattern's registry part, a `registries:` glob host): a literal host, or `*.`
// and a literal suffix with a dot (`*.gcr.io`), then an optional literal port or `:*`. Anything broader
// (`*`, `*:*`, `*.io`, `reg-?.io`) lists nothing: a glob that could name any host must not open egress
// to every host.
const HOST_GLOB_PATTERN = /^(\*\.)?([a-z0-9.-]+\.[a-z0-9-]+|\[[0-9a-f:]+\]|[a-z0-9-]+)(?::([0-9]+|\*))?$/;

interface HostEntry {
  /** The host without port, lowercase; for a suffix entry, the part after `*.`. */
  readonly hostname: string;
  readonly suffix: boolean;
  /** A literal port, `*` for any, or undefined when the entry names none. */
  readonly port: string | undefined;
}

export class EgressPolicy {
  private readonly named: readonly HostEntry[];
  private readonly listed: readonly HostEntry[];
  private readonly resolve: typeof dnsLookup;

  constructor(private readonly options: EgressOptions) {
    const literal = options.registries.filter((r) => literalEntry(r.host) !== undefined);
    this.named = [
      ...literal.map((r) => literalEntry(r.host) as HostEntry),
      ...options.registries.flatMap((r) => (r.mirror === undefined ? [] : [mirrorEntry(r.mirror)])),
      ...(options.configuredHosts ?? []).map((h) => splitHost(h.toLowerCase(), false)),
    ].flatMap(withApiHost);
    const globHosts = options.registries.map((r) => r.host).filter((h) => literalEntry(h) === undefined);
    this.listed = [...hostGlobs(globHosts), ...patternHosts(options.policyPatterns ?? [])].flatMap(
      withApiHost,
    );
    this.resolve = options.lookup ?? dnsLookup;
  }

  /**
   * How far a connection to `host` (`hostname[:port]`, as in a URL or a reference) may reach, or an
   * EgressDeniedError when it may not be made at all. IP literals are checked here: no DNS answer will be.
   */
  admit(host: string, purpose: EgressPurpose): Reach {
    const target = splitHost(host.toLowerCase(), false);
    const reach = this.reachOf(target);
    if (reach === 'public' && purpose === 'registry' && this.options.allowUnlistedRegistries !== true) {
      throw new EgressDeniedError(
        host,
        'the host is in no registries: entry and no policy pattern (network.egress.allowUnlistedRegistries is off)',
      );
    }
    const literal = target.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(literal) !== 0) {
      const problem = addressProblem(literal, reach);
      if (problem !== undefined) throw new EgressDeniedError(host, problem);
    }
    return reach;
  }

  /** A `lookup` for sockets to a host of this reach: every address of the answer is checked. */
  lookupFor(host: string, reach: Reach): LookupFunction {
    return (hostname, options, callback) => {
      this.resolve(hostname, { ...options, all: true }, (err, answers: LookupAddress[]) => {
        if (err !== null) return callback(err, '', 0);
        const problem = answers.map((a) => addressProblem(a.address, reach)).find((p) => p !== undefined);
        if (problem !== undefined || answers.length === 0) {
          return callback(new EgressDeniedError(host, problem ?? 'DNS gave no address'), '', 0);
        }
        if (options.all === true) return (callback as AllCallback)(null, answers);
        const first = answers[0] as LookupAddress;
        callback(null, first.address, first.family);
      });
    };
  }

  private reachOf(target: HostEntry): Reach {
    if (this.named.some((e) => covers(e, target))) return 'any';
    if (this.listed.some((e) => covers(e, target))) return 'private';
    return 'public';
  }
}

type AllCallback = (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;

/** The hosts policy patterns list: each pattern's registry part (before its first `/`), as `hostGlobs`. */
export function patternHosts(patterns: readonly string[]): HostEntry[] {
  return hostGlobs(
    patterns.flatMap((pattern) => {
      const slash = pattern.indexOf('/');
      return slash < 0 ? [] : [pattern.slice(0, slash)];
    }),
  );
}

/** The hosts globs list, in the restricted shapes HOST_GLOB_PATTERN accepts; other globs list none. */
export function hostGlobs(globs: readonly string[]): HostEntry[] {
  return globs.flatMap((glob) => {
    const match = HOST_GLOB_PATTERN.exec(glob.toLowerCase());
    if (match === null) return [];
    const [, star, hostname = '', port] = match;
    if (star !== undefined && !hostname.includes('.')) return [];
    return [{ hostname, suffix: star !== undefined, port }];
  });
}

/** Why an address may not be contacted at this reach, or undefined when it may. */
export function addressProblem(address: string, reach: Reach): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  if (reach === 'any') return undefined;
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) reaches the IPv4 address: judge that one.
  const parsed = ipaddr.process(address);
  const embedded =
    parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).range() === 'rfc6052'
      ? ipaddr.fromByteArray((parsed as ipaddr.IPv6).toByteArray().slice(12))
      : undefined;
  for (const candidate of embedded === undefined ? [parsed] : [embedded, parsed]) {
    const range = candidate.range();
    if (NEVER_RANGES.has(range)) return `it resolves to a ${range} address`;
    if (METADATA_ADDRESSES.has(candidate.toString())) return 'it resolves to a cloud metadata address';
    if (reach === 'public' && range !== 'unicast') {
      return `it resolves to a ${range} address, and only public ones are allowed for a host no registries: entry or policy pattern lists`;
    }
  }
  return undefined;
}

/** `host`, `host:port` or `host:*` with no glob in the host part; undefined for a glob entry. */
function literalEntry(host: string): HostEntry | undefined {
  const lowered = host.toLowerCase();
  const entry = splitHost(lowered, true);
  return GLOB_CHARS_PATTERN.test(entry.hostname) ||
    (entry.port !== undefined && entry.port !== '*' && GLOB_CHARS_PATTERN.test(entry.port))
    ? undefined
    : entry;
}

function mirrorEntry(mirror: string): HostEntry {
  const slash = mirror.indexOf('/');
  return splitHost((slash < 0 ? mirror : mirror.slice(0, slash)).toLowerCase(), false);
}

function splitHost(host: string, allowStarPort: boolean): HostEntry {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(host);
  const hostname = match?.[1] ?? host;
  const port = match?.[2];
  return { hostname, suffix: false, port: port === '*' && !allowStarPort ? undefined : port };
}

/** Docker Hub is written `docker.io` in references and served from registry-1.docker.io. */
function withApiHost(entry: HostEntry): HostEntry[] {
  const api = registryApiHost(entry.hostname);
  return api === entry.hostname ? [entry] : [entry, { ...entry, hostname: api }];
}

function covers(entry: HostEntry, target: HostEntry): boolean {
  const hostMatches = entry.suffix
    ? target.hostname.endsWith(`.${entry.hostname}`)
    : target.hostname === entry.hostname;
  return hostMatches && (entry.port === '*' || entry.port === target.port);
}
