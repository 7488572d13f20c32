/**
 * Image-policy patterns: globs (see glob/) over normalised image references.
 *
 * Unlike Connaisseur, patterns are anchored: they must match the whole normalised reference, so
 * `docker.io/library/app` does not also match `evil.io/docker.io/library/app:1`. Matching itself is in
 * match.ts; this module compiles patterns, refuses those whose rank would lie, and spots those that
 * can never match.
 */
import { compileGlob, GlobSyntaxError, type Glob } from '../glob/index.ts';

export class PatternSyntaxError extends Error {}

/** Docker Hub has two spellings; normalised references use `docker.io`. */
const HUB_ALIASES = ['index.docker.io/', 'registry-1.docker.io/'];
const DOCKER_HUB = 'docker.io/';
const DOCKER_HUB_OFFICIAL = 'library/';

export interface CompiledPattern {
  /** The pattern as configured. */
  readonly source: string;
  /** The pattern with Docker Hub aliases folded into `docker.io`, used for matching and scoring. */
  readonly normalized: string;
  /** The glob of `normalized`; `glob.matches(text)` says whether it covers the whole text. */
  readonly glob: Glob;
}

export function compilePattern(source: string): CompiledPattern {
  const normalized = normalizeRegistry(source);
  let glob: Glob;
  try {
    glob = compileGlob(normalized);
  } catch (err) {
    if (err instanceof GlobSyntaxError) throw new PatternSyntaxError(err.message, { cause: err });
    throw err;
  }
  refuseGroupedSlash(source, glob);
  return { source, normalized, glob };
}

/**
 * Folds Docker Hub aliases into `docker.io` and lowercases a registry host, as reference
 * normalisation does for images (`LoCaLhOst:1234/*` must still match `localhost:1234/x`).
 */
function normalizeRegistry(source: string): string {
  const alias = HUB_ALIASES.find((a) => source.startsWith(a));
  if (alias !== undefined) return `${DOCKER_HUB}${source.slice(alias.length)}`;
  const slash = source.indexOf('/');
  const first = source.slice(0, slash);
  return slash > 0 && /[.:]/.test(first) ? `${first.toLowerCase()}${source.slice(slash)}` : source;
}

/**
 * Rules are ranked by the `/`-separated components of their text (match.ts). A `/` inside `{…}` or
 * `[…]` is counted as a component although an alternative or class member without it matches no `/`
 * (`{a/b/c,x}/*` would outrank `reg.io/team/*` for `x/app`): such a rule's rank would lie, so it is
 * refused rather than ranked.
 */
function refuseGroupedSlash(source: string, glob: Glob): void {
  let depth = 0;
  for (const token of glob.tokens) {
    if (token.kind === 'open') depth++;
    else if (token.kind === 'close') depth--;
    const inBraces = depth > 0 && token.kind === 'literal' && token.char === '/';
    const inClass = token.kind === 'class' && token.members.includes('/');
    if (inBraces || inClass) {
      throw new PatternSyntaxError(
        `pattern ${JSON.stringify(source)} has a "/" inside ${inBraces ? '"{…}"' : '"[…]"'}: rules are ranked by their "/"-separated components, which that "/" would inflate; write one rule per alternative instead`,
      );
    }
  }
}

/**
 * Why a pattern can never match a normalised reference, naming the form that would, or undefined
 * when it may match. Only what the pattern's literal beginning proves is reported, so a pattern that
 * is reported can indeed never match (it is usually a Connaisseur pattern that relied on substring
 * matching). Normalised references always start with a registry (`nginx` is
 * `docker.io/library/nginx:latest`), and Docker Hub names always have two or more path components.
 */
export function unmatchableReason(pattern: CompiledPattern): string | undefined {
  const fix = matchableForm(pattern);
  if (fix === undefined) return undefined;
  return `${JSON.stringify(pattern.source)} can never match: ${fix.why}; ${JSON.stringify(fix.form)} would match`;
}

/** For a pattern that can never match (see unmatchableReason): the form that would, and why. */
export function matchableForm(pattern: CompiledPattern): { form: string; why: string } | undefined {
  const { normalized, glob } = pattern;
  const firstGlob = glob.tokens.findIndex((t) => t.kind !== 'literal');
  const literal = firstGlob === -1;
  const prefix = (literal ? glob.tokens : glob.tokens.slice(0, firstGlob))
    .map((t) => (t.kind === 'literal' ? t.char : ''))
    .join('');
  const slash = prefix.indexOf('/');
  if (slash === -1) {
    if (!literal) return undefined;
    // A bare registry (`reg.io`, `localhost:5000`) most likely meant everything in it.
    const host = prefix.split(':', 1)[0] as string;
    const form =
      host.includes('.') || host === 'localhost'
        ? `${normalized}/*`
        : `${DOCKER_HUB}${DOCKER_HUB_OFFICIAL}${normalized}`;
    return {
      form,
      why: 'every normalised image has a registry and a path (nginx:1 is docker.io/library/nginx:1)',
    };
  }
  if (!/[.:]/.test(prefix.slice(0, slash))) {
    const form = `${DOCKER_HUB}${officialName(`${DOCKER_HUB}${prefix}`, literal) ? DOCKER_HUB_OFFICIAL : ''}${normalized}`;
    return {
      form,
      why: 'every normalised image starts with its registry, and an image named without one is on Docker Hub (team/app:1 is docker.io/team/app:1)',
    };
  }
  if (officialName(prefix, literal)) {
    const form = `${DOCKER_HUB}${DOCKER_HUB_OFFICIAL}${normalized.slice(normalized.indexOf('/') + 1)}`;
    return {
      form,
      why: 'a Docker Hub image with one path component is normalised under library/ (docker.io/app:1 is docker.io/library/app:1)',
    };
  }
  return undefined;
}

/**
 * Whether a pattern's literal beginning names a Docker Hub repository of one path component
 * (`docker.io/app:*`, `docker.io/app`): the repository ends at a `:` or `@`, or at the end of a
 * pattern that is all literal, before any further `/`.
 */
function officialName(prefix: string, literal: boolean): boolean {
  if (!prefix.startsWith(DOCKER_HUB)) return false;
  const rest = prefix.slice(DOCKER_HUB.length);
  const repository = rest.split(/[:@]/, 1)[0] as string;
  return repository !== '' && !repository.includes('/') && (literal || repository.length < rest.length);
}
