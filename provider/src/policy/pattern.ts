/**
 * Image-policy glob patterns, with Connaisseur's glob grammar (gobwas/glob compiled with no separators):
 * `*` matches any run of characters including `/`, `:` and `@`; `?` one character; `[abc]`, `[a-z]`,
 * `[!a-z]` a class; `{a,b}` alternatives; `\x` a literal x.
 *
 * Unlike Connaisseur, patterns are anchored: they must match the whole normalised reference, so
 * `docker.io/library/app` does not also match `evil.io/docker.io/library/app:1`. Written by hand rather
 * than with a path-glob library, because those give `*` and `?` path semantics (stop at `/`, skip dot
 * files) that would silently change which images a rule covers.
 */

export class PatternSyntaxError extends Error {}

/** Docker Hub has two spellings; normalised references use `docker.io`. */
const HUB_ALIASES = ['index.docker.io/', 'registry-1.docker.io/'];

export interface CompiledPattern {
  /** The pattern as configured. */
  readonly source: string;
  /** The pattern with Docker Hub aliases folded into `docker.io`, used for matching and scoring. */
  readonly normalized: string;
  /** Whether the last path component names a tag or digest (`:` or `@`). */
  readonly hasTagPart: boolean;
  readonly regex: RegExp;
}

export function compilePattern(source: string): CompiledPattern {
  const normalized = normalizeRegistry(source);
  const lastComponent = normalized.slice(normalized.lastIndexOf('/') + 1);
  return {
    source,
    normalized,
    hasTagPart: /[:@]/.test(lastComponent),
    regex: new RegExp(`^${globToRegex(normalized)}$`, 's'),
  };
}

/**
 * Folds Docker Hub aliases into `docker.io` and lowercases a registry host, as reference
 * normalisation does for images (`LoCaLhOst:1234/*` must still match `localhost:1234/x`).
 */
function normalizeRegistry(source: string): string {
  const alias = HUB_ALIASES.find((a) => source.startsWith(a));
  if (alias !== undefined) return `docker.io/${source.slice(alias.length)}`;
  const slash = source.indexOf('/');
  const first = source.slice(0, slash);
  return slash > 0 && /[.:]/.test(first) ? `${first.toLowerCase()}${source.slice(slash)}` : source;
}

function globToRegex(glob: string): string {
  let out = '';
  let depth = 0; // open `{` groups
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '\\') {
      if (i + 1 >= glob.length) throw new PatternSyntaxError('pattern ends with an unfinished escape "\\"');
      out += escapeRegex(glob[++i] as string);
    } else if (c === '*') {
      out += '.*';
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      const end = classEnd(glob, i);
      out += classToRegex(glob.slice(i + 1, end));
      i = end;
    } else if (c === '{') {
      depth++;
      out += '(?:';
    } else if (c === '}' && depth > 0) {
      depth--;
      out += ')';
    } else if (c === ',' && depth > 0) {
      out += '|';
    } else {
      out += escapeRegex(c);
    }
  }
  if (depth > 0) throw new PatternSyntaxError('pattern has an unclosed "{"');
  return out;
}

function classEnd(glob: string, open: number): number {
  const end = glob.indexOf(']', open + 2); // `[]` is not a class; the first `]` after one char closes it
  if (end === -1) throw new PatternSyntaxError(`pattern has an unclosed "[" at position ${open}`);
  return end;
}

function classToRegex(body: string): string {
  const negated = body.startsWith('!');
  const chars = (negated ? body.slice(1) : body).replace(/[\\\]^]/g, (m) => `\\${m}`);
  if (chars === '') throw new PatternSyntaxError('pattern has an empty character class "[!]"');
  return `[${negated ? '^' : ''}${chars}]`;
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
