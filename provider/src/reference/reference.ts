/**
 * Image reference parsing and normalisation.
 *
 * Follows the Docker/distribution reference grammar
 * (github.com/distribution/reference, `regexp.go`) the way go-containerregistry's non-strict
 * `name.ParseReference` applies it, with Connaisseur's rule for spotting a registry (see
 * reference/connaisseur-config.md §5): the first path component is a registry only when it contains
 * '.' or ':'. Docker Hub is spelled `docker.io` in every normalised reference so that policy patterns
 * have one spelling to match.
 */
import ipaddr from 'ipaddr.js';

import { ProvenantError } from '../types/errors.ts';

export interface ImageReference {
  /** The input exactly as given. */
  readonly original: string;
  /** `docker.io` for Docker Hub; otherwise `host[:port]` with the host lowercased. */
  readonly registry: string;
  /** The path inside the registry, e.g. `library/nginx` or `team/app`. */
  readonly repository: string;
  /** The tag as given; `latest` when neither tag nor digest was given; undefined for digest-only input. */
  readonly tag: string | undefined;
  /** `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase. */
  readonly digest: string | undefined;
  /** Whether the original input spelled out a tag (a defaulted `latest` does not count). */
  readonly hadTag: boolean;
  /** `${registry}/${repository}`. */
  readonly name: string;
  /** `name`, then `:tag` and `@digest` when present. */
  readonly normalized: string;
}

const DOCKER_HUB = 'docker.io';
// Docker Hub's names are aliases in references, but only this host serves the distribution API.
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set([DOCKER_HUB, 'index.docker.io', DOCKER_HUB_API_HOST]);
// Docker Hub keeps official images under `library/`, so `nginx` means `library/nginx`.
const DOCKER_HUB_OFFICIAL_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';

// A guard before any regular expression runs; a valid reference is at most about 520 characters.
const MAX_INPUT_CHARS = 1024;
// distribution/reference NameTotalLengthMax, applied to the name as written and, as
// ParseNormalizedNamed does, to the normalised name: every normalised reference parses again.
const MAX_NAME_CHARS = 255;
const MAX_PORT = 65535;
// HTTPS and HTTP reach these ports when none is written: `reg:443` and `reg` are one server under two
// names, so a rule written for one spelling would not see the other.
const DEFAULT_PORTS: ReadonlySet<string> = new Set(['443', '80']);

// distribution/reference: tag, path-component and domain-name grammar.
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const PATH_COMPONENT_PATTERN = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// Dotted-decimal IPv4 addresses are also hostnames under this grammar, as in distribution.
const HOSTNAME_PATTERN =
  /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/;
// `[ipv6]` or `host`, then an optional `:port`. Whether the pieces are valid is checked separately.
const REGISTRY_PARTS_PATTERN = /^(?:(\[[^\]]*\])|([^:]*))(?::(.*))?$/;
const DIGITS_PATTERN = /^[0-9]+$/;
const CANONICAL_PORT_PATTERN = /^[1-9][0-9]*$/;
// WHATWG URL host parser, "ends in a number": such a host is read as an IPv4 address in any of the
// forms inet_aton accepts (`2130706433`, `127.1`, `0x7f.0.0.1`, `0177.0.0.1`).
const NUMERIC_LABEL_PATTERN = /^(?:[0-9]+|0[xX][0-9a-fA-F]*)$/;
const URL_SCHEME_PATTERN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
// Unicode whitespace plus the C0 and C1 control characters (\p{Cc}): none can appear in a reference, and
// they would corrupt the logs the message ends up in.
const WHITESPACE_OR_CONTROL_PATTERN = /[\s\p{Cc}]/u;

// OCI image-spec descriptor digests: the registered algorithms and their encoded lengths.
const DIGEST_HEX_CHARS: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha512', 128],
]);
const DIGEST_EXPECTED = 'sha256:<64 lowercase hex> or sha512:<128 lowercase hex>';
const REPOSITORY_EXPECTED = "lowercase [a-z0-9] separated by '.', '_', '__', '-' or '/'";

interface RawParts {
  readonly name: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

export function parseReference(input: string): ImageReference {
  const known = recentlyParsed.get(input);
  if (known !== undefined) return known;
  const ref = parseNew(input);
  // Bounded: a flood of distinct keys only empties it.
  if (recentlyParsed.size >= MAX_REMEMBERED_REFERENCES) recentlyParsed.clear();
  recentlyParsed.set(input, ref);
  return ref;
}

/**
 * References parsed lately, by input. The same keys come back in every admission and audit request, and
 * checking one took a fifth of the time of a cached 1,000-key answer. A reference is a pure function of
 * its input and frozen, so the same object is handed out again; a refused input is not remembered.
 */
const recentlyParsed = new Map<string, ImageReference>();
const MAX_REMEMBERED_REFERENCES = 4096;

function parseNew(input: string): ImageReference {
  const text = checkInput(input);
  const parts = splitTagAndDigest(text);
  checkName(text, parts.name);
  const { registry, repository } = splitRegistry(text, parts.name);
  const tag = parts.tag ?? (parts.digest === undefined ? DEFAULT_TAG : undefined);
  const name = `${registry}/${repository}`;
  if (name.length > MAX_NAME_CHARS) {
    throw invalid(
      text,
      `expected a normalised name (${quote(name.slice(0, 64))}…) of at most ${MAX_NAME_CHARS} characters, found ${name.length}`,
    );
  }
  return Object.freeze({
    original: text,
    registry,
    repository,
    tag,
    digest: parts.digest,
    hadTag: parts.tag !== undefined,
    name,
    normalized:
      name + (tag === undefined ? '' : `:${tag}`) + (parts.digest === undefined ? '' : `@${parts.digest}`),
  });
}

/** The API host to contact: 'registry-1.docker.io' for 'docker.io', otherwise registry unchanged. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

/** Pin to a digest keeping the user's spelling: 'nginx:1.25' + d -> 'nginx:1.25@d'; 'nginx' -> 'nginx@d'; 'a/b:t@sha256:old' -> 'a/b:t@d' (replace the digest); input already pinned to d -> unchanged. */
export function pinnedReference(ref: ImageReference, digest: string): string {
  checkPinDigest(ref, digest);
  const at = ref.original.indexOf('@');
  return `${at === -1 ? ref.original : ref.original.slice(0, at)}@${digest}`;
}

/** The normalised reference pinned to the digest: `${name}:${tag}@${digest}` or `${name}@${digest}` when there is no tag. */
export function normalizedPinned(ref: ImageReference, digest: string): string {
  checkPinDigest(ref, digest);
  return ref.tag === undefined ? `${ref.name}@${digest}` : `${ref.name}:${ref.tag}@${digest}`;
}

function invalid(input: string, reason: string): ProvenantError {
  return new ProvenantError('REFERENCE_INVALID', `invalid image reference ${quote(input)}: ${reason}`, {
    image: input,
  });
}

// JSON quoting escapes control characters, so a hostile key cannot forge log lines.
function quote(text: string): string {
  return JSON.stringify(text);
}

/** Checks that apply to the whole string, before it is split; returns it typed as a string. */
function checkInput(input: unknown): string {
  // Keys arrive from policies as untyped JSON, so the declared type is not a guarantee.
  if (typeof input !== 'string') {
    throw new ProvenantError(
      'REFERENCE_INVALID',
      `invalid image reference: expected a string, found ${typeName(input)}`,
    );
  }
  if (input.length > MAX_INPUT_CHARS) {
    // Only a prefix is quoted: the message must stay readable whatever the caller sent.
    throw new ProvenantError(
      'REFERENCE_INVALID',
      `invalid image reference ${quote(`${input.slice(0, 64)}…`)}: expected at most ${MAX_INPUT_CHARS} characters, found ${input.length}`,
      { image: input },
    );
  }
  if (input === '') throw invalid(input, 'expected an image name, found an empty string');
  const bad = WHITESPACE_OR_CONTROL_PATTERN.exec(input);
  if (bad !== null) {
    throw invalid(
      input,
      `expected no whitespace or control characters, found ${codePoint(bad[0])} at index ${bad.index}`,
    );
  }
  const scheme = URL_SCHEME_PATTERN.exec(input);
  if (scheme !== null) {
    throw invalid(input, `expected a reference without a URL scheme, found ${quote(scheme[0])}`);
  }
  return input;
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Splits `name[:tag][@digest]`, validating the tag and digest. */
function splitTagAndDigest(input: string): RawParts {
  const [rest = '', digest, ...extra] = input.split('@');
  if (extra.length > 0) throw invalid(input, `expected at most one '@', found ${extra.length + 1}`);
  if (digest !== undefined) {
    const reason = digestProblem(digest);
    if (reason !== undefined) throw invalid(input, reason);
  }
  // A ':' after the last '/' starts a tag; one before it belongs to a registry port.
  const colon = rest.lastIndexOf(':');
  if (colon <= rest.lastIndexOf('/')) return { name: rest, tag: undefined, digest };
  const tag = rest.slice(colon + 1);
  if (!TAG_PATTERN.test(tag)) {
    throw invalid(
      input,
      `expected a tag of 1 to 128 [A-Za-z0-9_.-] not starting with '.' or '-', found ${quote(tag)}`,
    );
  }
  return { name: rest.slice(0, colon), tag, digest };
}

function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  const hexChars = DIGEST_HEX_CHARS.get(digest.slice(0, colon));
  const hex = digest.slice(colon + 1);
  const valid = colon !== -1 && hexChars === hex.length && /^[0-9a-f]+$/.test(hex);
  return valid ? undefined : `expected a digest ${DIGEST_EXPECTED}, found ${quote(digest)}`;
}

/** Shape checks on the name as written, before the registry is told apart from the path. */
function checkName(input: string, name: string): void {
  if (name === '') throw invalid(input, "expected an image name before the ':' or '@', found none");
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) {
    throw invalid(input, `expected non-empty name components separated by single '/', found ${quote(name)}`);
  }
  if (name.length > MAX_NAME_CHARS) {
    throw invalid(input, `expected a name of at most ${MAX_NAME_CHARS} characters, found ${name.length}`);
  }
}

function splitRegistry(input: string, name: string): { registry: string; repository: string } {
  const slash = name.indexOf('/');
  // Connaisseur and go-containerregistry: only '.' or ':' marks a registry, so `localhost/x` is on Docker Hub.
  if (slash !== -1 && /[.:]/.test(name.slice(0, slash))) {
    const registry = normalizeRegistry(input, name.slice(0, slash));
    return { registry, repository: checkRepository(input, registry, name.slice(slash + 1)) };
  }
  return { registry: DOCKER_HUB, repository: checkRepository(input, DOCKER_HUB, name) };
}

/**
 * One spelling per address: case is folded, and any other spelling that reaches the same server
 * (`2130706433`, `127.1`, `0x7f.0.0.1`, `[0:0::1]`, `[::ffff:7f00:1]`, `:05000`, `:443`) is refused,
 * so a rule written for the canonical form cannot be bypassed by another one.
 */
function normalizeRegistry(input: string, registry: string): string {
  const known = normalizedRegistries.get(registry);
  if (known !== undefined) return known;
  const normalized = checkedRegistry(input, registry);
  // Bounded: a flood of distinct registry names only empties the memo.
  if (normalizedRegistries.size >= MAX_REMEMBERED_REGISTRIES) normalizedRegistries.clear();
  normalizedRegistries.set(registry, normalized);
  return normalized;
}

/**
 * Registries repeat across keys, and checking one (an IPv4-looking host goes through the WHATWG URL
 * parser) costs more than the rest of a reference: each spelling that passed is remembered.
 */
const normalizedRegistries = new Map<string, string>();
const MAX_REMEMBERED_REGISTRIES = 1024;

function checkedRegistry(input: string, registry: string): string {
  const [, ipv6, hostname, port] = REGISTRY_PARTS_PATTERN.exec(registry) ?? [];
  const hostProblem =
    ipv6 === undefined ? hostnameProblem(hostname ?? '') : bracketedIPv6Problem(ipv6.toLowerCase());
  if (hostProblem !== undefined) throw invalid(input, hostProblem);
  if (port !== undefined) {
    const problem = portProblem(port);
    if (problem !== undefined) throw invalid(input, problem);
  }
  const lowered = registry.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lowered) ? DOCKER_HUB : lowered;
}

const HOST_EXPECTED = 'a registry host that is a hostname, an IPv4 address or a bracketed IPv6 address';

function hostnameProblem(hostname: string): string | undefined {
  // A trailing dot (`reg.example.com.`) names the same host as without it: the grammar refuses it.
  if (!HOSTNAME_PATTERN.test(hostname)) return `expected ${HOST_EXPECTED}, found ${quote(hostname)}`;
  const labels = hostname.split('.');
  if (!NUMERIC_LABEL_PATTERN.test(labels[labels.length - 1] ?? '')) return undefined;
  // Resolvers read this as an IPv4 address: only its dotted-decimal form is accepted.
  let canonical: string | undefined;
  try {
    canonical = new URL(`http://${hostname}/`).hostname;
  } catch {
    canonical = undefined;
  }
  if (canonical === hostname) return undefined;
  return canonical === undefined
    ? `expected ${HOST_EXPECTED}, found ${quote(hostname)} (neither a hostname nor an IPv4 address)`
    : `expected an IPv4 address in dotted-decimal form, found ${quote(hostname)} (write ${canonical})`;
}

// Zone identifiers (`%eth0`) are refused: distribution's grammar allows only hex digits and ':'.
function bracketedIPv6Problem(bracketed: string): string | undefined {
  const address = bracketed.slice(1, -1);
  if (!/^[0-9a-f:]+$/.test(address) || !ipaddr.IPv6.isValid(address)) {
    return `expected ${HOST_EXPECTED}, found ${quote(bracketed)}`;
  }
  const parsed = ipaddr.IPv6.parse(address);
  if (parsed.isIPv4MappedAddress()) {
    return `expected an IPv4 address written as one, found ${quote(bracketed)} (write ${parsed.toIPv4Address().toString()})`;
  }
  // RFC 5952 §4: one text form per IPv6 address.
  const canonical = parsed.toRFC5952String();
  return canonical === address
    ? undefined
    : `expected an IPv6 address in RFC 5952 form, found ${quote(bracketed)} (write [${canonical}])`;
}

function portProblem(port: string): string | undefined {
  if (!DIGITS_PATTERN.test(port) || Number(port) < 1 || Number(port) > MAX_PORT) {
    return `expected a registry port from 1 to ${MAX_PORT}, found ${quote(port)}`;
  }
  if (!CANONICAL_PORT_PATTERN.test(port)) {
    return `expected a registry port without leading zeros, found ${quote(port)}`;
  }
  if (DEFAULT_PORTS.has(port)) {
    return `expected no default port (443 or 80) in the registry, found ${quote(port)} (leave it out)`;
  }
  return undefined;
}

/** Validates the path and returns it, with `library/` added for a single-component Docker Hub repo. */
function checkRepository(input: string, registry: string, path: string): string {
  if (!path.split('/').every((component) => PATH_COMPONENT_PATTERN.test(component))) {
    throw invalid(input, `repository must be ${REPOSITORY_EXPECTED}, found ${quote(path)}`);
  }
  const official = registry === DOCKER_HUB && !path.includes('/');
  return official ? `${DOCKER_HUB_OFFICIAL_NAMESPACE}/${path}` : path;
}

function checkPinDigest(ref: ImageReference, digest: string): void {
  const reason = digestProblem(digest);
  if (reason !== undefined) {
    throw new ProvenantError(
      'REFERENCE_INVALID',
      `cannot pin image reference ${quote(ref.original)}: ${reason}`,
      {
        image: ref.original,
      },
    );
  }
}
