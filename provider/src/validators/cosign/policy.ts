/**
 * Connaisseur's rule semantics for cosign (`internal/validator/cosignvalidator/cosign_validator.go`,
 * reference/connaisseur-config.md §2.4), kept as pure functions so they are tested on their own:
 * - a named `trustRoot` (default `default`): that root is checked, no threshold;
 * - `"*"` alone: every root is checked and the valid signatures must number at least the roots;
 * - `"*"` with `threshold: n`: every root is checked, or only the `required` ones when n ≤ |required|,
 *   and at least n valid signatures are needed (signatures are counted, not distinct roots);
 * - `"*"` with `required` and no threshold: only the required roots are checked;
 * - `required`: every listed root must have at least one valid signature.
 */
import type { RuleOptionsConfig } from '../../config/index.ts';

export interface RootSelection {
  /** Names of the trust roots to check, in the order given. */
  readonly roots: readonly string[];
  /** Minimum number of valid signatures; 0 means "at least one per the named root". */
  readonly threshold: number;
  readonly required: readonly string[];
}

export function selectRoots(
  options: RuleOptionsConfig | undefined,
  allRoots: readonly string[],
): RootSelection {
  const trustRoot = options?.trustRoot ?? 'default';
  const required = options?.required ?? [];
  const threshold = options?.threshold ?? 0;
  if (trustRoot !== '*') return { roots: [trustRoot], threshold: 0, required };
  if (required.length === 0 || threshold > required.length) {
    // Here a threshold of 0 implies no `required`: then every root must contribute a signature.
    return { roots: allRoots, threshold: threshold > 0 ? threshold : allRoots.length, required };
  }
  return { roots: required, threshold, required };
}

/** Valid signature counts per checked root. */
export type SignatureCounts = ReadonlyMap<string, number>;

export type PolicyOutcome =
  | { readonly ok: true; readonly signers: readonly string[] }
  | { readonly ok: false; readonly reason: 'threshold'; readonly found: number; readonly needed: number }
  | { readonly ok: false; readonly reason: 'required'; readonly missing: readonly string[] }
  | { readonly ok: false; readonly reason: 'none' };

/** Applies threshold, then required, then "at least one valid signature", in Connaisseur's order. */
export function evaluatePolicy(selection: RootSelection, counts: SignatureCounts): PolicyOutcome {
  const signers = selection.roots.filter((r) => (counts.get(r) ?? 0) > 0);
  const found = selection.roots.reduce((sum, r) => sum + (counts.get(r) ?? 0), 0);
  if (selection.threshold > 0 && found < selection.threshold)
    return { ok: false, reason: 'threshold', found, needed: selection.threshold };
  const missing = selection.required.filter((r) => !signers.includes(r));
  if (missing.length > 0) return { ok: false, reason: 'required', missing };
  if (found === 0) return { ok: false, reason: 'none' };
  return { ok: true, signers };
}
