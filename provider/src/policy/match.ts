/**
 * Choosing the image-policy rule for an image: every rule whose (anchored) pattern matches is a
 * candidate, and the most specific one wins, in Connaisseur's order
 * (shared/reference/connaisseur-config.md §2.3):
 *   1. more `/`-components wins;
 *   2. else, left to right, the longer literal common prefix with the image's component wins;
 *   3. else, left to right, the longer pattern component wins;
 *   4. on a full tie the later rule wins.
 */
import type { ImageReference } from '../reference/index.ts';
import { traceStep, tracing } from '../observability/trace.ts';
import { compilePattern, type CompiledPattern } from './pattern.ts';

export interface PolicyRule<R> {
  readonly index: number;
  readonly pattern: CompiledPattern;
  readonly rule: R;
}

export function compileRules<R extends { readonly pattern: string }>(rules: readonly R[]): PolicyRule<R>[] {
  return rules.map((rule, index) => ({ index, rule, pattern: compilePattern(rule.pattern) }));
}

/**
 * Whether a pattern covers the image: it matches the whole normalised reference (`name:tag`,
 * `name@digest`, `name:tag@digest`), or the repository name alone, so a pattern without a tag part
 * matches any tag or digest. A glob that can span into the tag (`reg/team/app*debug`) is thereby
 * matched against the tag too, instead of being read as "no tag part" from its text.
 */
export function patternMatches(pattern: CompiledPattern, ref: ImageReference): boolean {
  const { glob } = pattern;
  if (glob.matches(ref.normalized) || glob.matches(ref.name)) return true;
  // `repo:v1` also covers `repo:v1@sha256:…`: the digest only pins what the tag names.
  return ref.tag !== undefined && ref.digest !== undefined && glob.matches(`${ref.name}:${ref.tag}`);
}

export function mostSpecificRule<R>(
  rules: readonly PolicyRule<R>[],
  ref: ImageReference,
): PolicyRule<R> | undefined {
  let best: PolicyRule<R> | undefined;
  for (const candidate of rules) {
    if (!patternMatches(candidate.pattern, ref)) continue;
    // `>= 0`: a later rule wins a full tie.
    if (best === undefined) {
      if (tracing()) traceStep('rule', `rule ${candidate.index} "${candidate.pattern.source}" matches`);
      best = candidate;
      continue;
    }
    const { diff, step } = rankRules(candidate.pattern.normalized, best.pattern.normalized, ref.normalized);
    if (tracing()) {
      const winner = diff >= 0 ? candidate : best;
      traceStep(
        'rule',
        `rule ${candidate.index} "${candidate.pattern.source}" matches; against rule ${best.index} "${best.pattern.source}": ${step()}${diff === 0 ? ', the later rule wins' : ''} → rule ${winner.index} leads`,
      );
    }
    if (diff >= 0) best = candidate;
  }
  return best;
}

/** Positive when pattern `a` is more specific than `b` for `image`, negative when less, 0 on a tie. */
export function compareSpecificity(a: string, b: string, image: string): number {
  return rankRules(a, b, image).diff;
}

/**
 * The ranking of two patterns for `image`, with the step that decided it (for verify --explain), worded
 * only when someone asks for it.
 */
export function rankRules(a: string, b: string, image: string): { diff: number; step: () => string } {
  const ac = a.split('/');
  const bc = b.split('/');
  if (ac.length !== bc.length)
    return { diff: ac.length - bc.length, step: () => `1. components: ${ac.length} vs ${bc.length}` };
  const ic = image.split('/');
  for (let i = 0; i < ac.length; i++) {
    const pa = commonPrefix(ac[i] as string, ic[i] ?? '');
    const pb = commonPrefix(bc[i] as string, ic[i] ?? '');
    if (pa !== pb)
      return {
        diff: pa - pb,
        step: () => `2. literal prefix of component ${i + 1} ("${ic[i] ?? ''}"): ${pa} vs ${pb}`,
      };
  }
  for (let i = 0; i < ac.length; i++) {
    const diff = (ac[i] as string).length - (bc[i] as string).length;
    if (diff !== 0)
      return {
        diff,
        step: () =>
          `3. length of component ${i + 1}: ${(ac[i] as string).length} vs ${(bc[i] as string).length}`,
      };
  }
  return { diff: 0, step: () => `1–3 tie (${ac.length} components, same prefixes and lengths)` };
}

function commonPrefix(pattern: string, component: string): number {
  let n = 0;
  while (n < pattern.length && n < component.length && pattern[n] === component[n]) n++;
  return n;
}
