/**
 * Connaisseur's `policy:` under Provenant's anchored matching (README "Connaisseur users"): which
 * patterns must be rewritten to keep matching, and, by probing each rule with images it names, where
 * the rule that decides differs between the two (shared/reference/connaisseur-config.md §2.2–2.3).
 */
import { compileGlob } from '../glob/index.ts';
import {
  compareSpecificity,
  compilePattern,
  compileRules,
  matchableForm,
  mostSpecificRule,
} from '../policy/index.ts';
import { parseReference, type ImageReference } from '../reference/index.ts';

export interface Rule {
  readonly pattern: string;
  readonly validator?: string;
  readonly with?: Record<string, unknown>;
}

/**
 * The anchored form of a Connaisseur pattern that names no registry (Connaisseur matched it anywhere in
 * `index.docker.io/…`, so in practice on Docker Hub), or undefined when the pattern stays as written.
 */
export function anchoredForm(pattern: string): string | undefined {
  if (/^[*?[{\\]/.test(pattern)) return undefined;
  const slash = pattern.indexOf('/');
  const first = slash === -1 ? pattern : pattern.slice(0, slash);
  const host = first.split(':', 1)[0] as string;
  const isRegistry = host.includes('.') || host === 'localhost' || (slash !== -1 && first.includes(':'));
  if (isRegistry) return matchableForm(compilePattern(pattern))?.form;
  return slash === -1 ? `docker.io/library/${pattern}` : `docker.io/${pattern}`;
}

/** Whether Connaisseur's `*…*` wrapping adds nothing: the pattern already starts and ends with `*`. */
export function substringInvariant(pattern: string): boolean {
  return pattern.startsWith('*') && pattern.endsWith('*') && !pattern.endsWith('\\*');
}

export interface DecisionChange {
  readonly image: string;
  readonly connaisseur: number | undefined;
  readonly provenant: number | undefined;
  /** `anchored patterns` or `Docker Hub ranking`: which of Provenant's rules made the difference. */
  readonly because: 'anchored patterns' | 'Docker Hub ranking' | 'ranking';
}

/**
 * Images that the two engines send to different validators (or options): each rule's pattern, and its
 * migrated form, instantiated (`*`, `?` → `x`), plus for deny rules the same name under a foreign
 * registry (what substring matching used to catch).
 */
export function decisionChanges(
  original: readonly Rule[],
  migrated: readonly Rule[],
  denies: (r: Rule) => boolean,
): DecisionChange[] {
  const compiled = compileRules(migrated);
  const changes = new Map<string, DecisionChange>();
  for (const image of probeImages(original, migrated, denies)) {
    const c = connaisseurWinner(original, image);
    const p = mostSpecificRule(compiled, image)?.index;
    if (outcome(original[c ?? -1], denies) === outcome(migrated[p ?? -1], denies)) continue;
    const stillMatches = c !== undefined && mostSpecificRule([compiled[c]!], image) !== undefined;
    const because = !stillMatches
      ? 'anchored patterns'
      : image.registry === 'docker.io'
        ? 'Docker Hub ranking'
        : 'ranking';
    changes.set(image.normalized, { image: image.normalized, connaisseur: c, provenant: p, because });
  }
  return [...changes.values()];
}

/** What a rule decides: a static deny and no rule at all both deny. */
function outcome(rule: Rule | undefined, denies: (r: Rule) => boolean): string {
  if (rule === undefined || denies(rule)) return 'deny';
  return JSON.stringify([rule.validator ?? 'default', rule.with ?? {}]);
}

function probeImages(
  original: readonly Rule[],
  migrated: readonly Rule[],
  denies: (r: Rule) => boolean,
): ImageReference[] {
  const texts = new Set<string>();
  const add = (pattern: string, foreign: boolean): void => {
    if (/[[{\\]/.test(pattern)) return;
    // A leading `*` component usually stands for a registry: try Docker Hub's.
    const hub = pattern.replace(/^\*\//, 'docker.io/');
    for (const text of [pattern, hub].flatMap((p) => [p.replace(/[*?]/g, 'x'), p.replace(/[*?]/g, '')])) {
      const ref = tryParse(text);
      if (ref === undefined) continue;
      texts.add(ref.original);
      if (foreign) texts.add(`evil.example/${ref.name}:${ref.tag ?? 'x'}`);
    }
  };
  original.forEach((r, i) => {
    add(r.pattern, denies(r));
    add(migrated[i]?.pattern ?? r.pattern, false);
  });
  return [...texts].map(tryParse).filter((r): r is ImageReference => r !== undefined);
}

function tryParse(text: string): ImageReference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

/** Connaisseur v3's MatchingRule: `*pattern*` over the `index.docker.io` spelling, later rule wins ties. */
export function connaisseurWinner(rules: readonly Rule[], image: ImageReference): number | undefined {
  const spelled = image.registry === 'docker.io' ? `index.${image.normalized}` : image.normalized;
  let best: number | undefined;
  rules.forEach((rule, i) => {
    const p = rule.pattern;
    const wrapped = `${p.startsWith('*') ? '' : '*'}${p}${p.endsWith('*') ? '' : '*'}`;
    let matches: boolean;
    try {
      matches = compileGlob(wrapped).matches(spelled);
    } catch {
      return;
    }
    if (!matches) return;
    if (best === undefined || compareSpecificity(p, rules[best]!.pattern, spelled) >= 0) best = i;
  });
  return best;
}
