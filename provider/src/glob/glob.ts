/**
 * Globs with Connaisseur's grammar (gobwas/glob compiled with no separators): `*` matches any run of
 * characters including `/`, `:` and `@`; `?` one character; `[abc]`, `[a-z]`, `[!a-z]` a class;
 * `{a,b}` alternatives; `\x` a literal x. A glob covers a text only when it matches the whole text.
 *
 * Globs come from configuration and the texts they are matched against (image references, registry
 * hosts) from admission requests, so matching must take time linear in the text: a backtracking
 * JavaScript RegExp took 1.1 s to fail four `*` joined by `/` and ending in `:latest` against a
 * 373-character reference. Globs are therefore translated to RE2 syntax and run by re2js, an automaton
 * engine that never backtracks (https://github.com/google/re2/wiki/WhyRE2). Path-glob libraries are
 * not used: they give `*` and `?` path semantics (stop at `/`, skip dot files) that would silently
 * change what a rule covers.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

export class GlobSyntaxError extends Error {}

/** One element of a glob, in order. `open`, `or` and `close` are the `{`, `,` and `}` of alternatives. */
export type GlobToken =
  | { readonly kind: 'literal'; readonly char: string }
  | { readonly kind: 'any' }
  | { readonly kind: 'star' }
  | { readonly kind: 'class'; readonly negated: boolean; readonly members: string }
  | { readonly kind: 'open' }
  | { readonly kind: 'or' }
  | { readonly kind: 'close' };

export interface Glob {
  readonly source: string;
  readonly tokens: readonly GlobToken[];
  /** Whether the glob matches the whole text; linear in the text's length. */
  matches(text: string): boolean;
}

export function compileGlob(source: string): Glob {
  const tokens = parseGlob(source);
  let regex: RE2JS;
  try {
    regex = RE2JS.compile(tokens.map(toRe2).join(''), RE2JS.DOTALL);
  } catch (err) {
    // Only a class range can be invalid once parsed (`[z-a]`): report it as the glob's own error.
    if (err instanceof RE2JSSyntaxException) {
      throw new GlobSyntaxError(`pattern has an invalid character class: ${err.message}`, { cause: err });
    }
    throw err;
  }
  return { source, tokens, matches: (text) => regex.testExact(text) };
}

function parseGlob(glob: string): GlobToken[] {
  const tokens: GlobToken[] = [];
  let depth = 0; // open `{` groups
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '\\') {
      if (i + 1 >= glob.length) throw new GlobSyntaxError('pattern ends with an unfinished escape "\\"');
      tokens.push({ kind: 'literal', char: glob[++i] as string });
    } else if (c === '*') {
      tokens.push({ kind: 'star' });
    } else if (c === '?') {
      tokens.push({ kind: 'any' });
    } else if (c === '[') {
      const end = classEnd(glob, i);
      tokens.push(classToken(glob.slice(i + 1, end)));
      i = end;
    } else if (c === '{') {
      depth++;
      tokens.push({ kind: 'open' });
    } else if (c === '}' && depth > 0) {
      depth--;
      tokens.push({ kind: 'close' });
    } else if (c === ',' && depth > 0) {
      tokens.push({ kind: 'or' });
    } else {
      tokens.push({ kind: 'literal', char: c });
    }
  }
  if (depth > 0) throw new GlobSyntaxError('pattern has an unclosed "{"');
  return tokens;
}

function classEnd(glob: string, open: number): number {
  const end = glob.indexOf(']', open + 2); // `[]` is not a class; the first `]` after one char closes it
  if (end === -1) throw new GlobSyntaxError(`pattern has an unclosed "[" at position ${open}`);
  return end;
}

function classToken(body: string): GlobToken {
  const negated = body.startsWith('!');
  const members = negated ? body.slice(1) : body;
  if (members === '') throw new GlobSyntaxError('pattern has an empty character class "[!]"');
  return { kind: 'class', negated, members };
}

function toRe2(token: GlobToken): string {
  switch (token.kind) {
    case 'literal':
      return escapeRe2(token.char);
    case 'any':
      return '.';
    case 'star':
      return '.*';
    case 'class':
      // `-` keeps its range meaning; everything RE2 treats specially inside a class is escaped
      // (`[` too, so `[[:` is never read as a POSIX class).
      return `[${token.negated ? '^' : ''}${token.members.replace(/[\\\]^[]/g, (m) => `\\${m}`)}]`;
    case 'open':
      return '(?:';
    case 'or':
      return '|';
    case 'close':
      return ')';
  }
}

// RE2 accepts a backslash before any ASCII punctuation as that literal character.
function escapeRe2(c: string): string {
  return /[!-/:-@[-`{-~]/.test(c) ? `\\${c}` : c;
}
