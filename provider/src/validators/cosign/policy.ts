/**
 * Connaisseur's rule semantics for cosign (`internal/validator/cosignvalidator/cosign_validator.go`,
 * reference/connaisseur-config.md §2.4), kept as pure functions so they are tested on their own:
 * - a named `trustRoot` (default `default`): that root is checked, no threshold;
 * - `"*"` alone: every root is checked and the valid signatures must number at least the roots;
 * - `"*"` with `threshold: n`: every root is checked, or only the `required` ones when n ≤ |required|,
 *   and at least n valid signatures are needed;
 * - `"*"` with `required` and no threshold: only the required roots are checked;
 * - `required`: every listed root must have at least one valid signature.
 * Stricter than Connaisseur, which counts signatures: a threshold counts distinct signers with distinct
 * signatures. A copied `.sig` layer (no key needed) or one signer signing twice counts once, one
 * signature valid for two roots counts once, and roots with the same key are one signer.
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

/** Per checked root, the ids of the distinct signatures valid for it (signatures.ts signatureId). */
export type ValidSignatures = ReadonlyMap<string, ReadonlySet<string>>;

export type PolicyOutcome =
  | { readonly ok: true; readonly signers: readonly string[] }
  | { readonly ok: false; readonly reason: 'threshold'; readonly found: number; readonly needed: number }
  | { readonly ok: false; readonly reason: 'required'; readonly missing: readonly string[] }
  | { readonly ok: false; readonly reason: 'none' };

/**
 * Applies threshold, then required, then "at least one valid signature", in Connaisseur's order.
 * `signerOf` names who stands behind a root (its key); roots with one signer count once.
 */
export function evaluatePolicy(
  selection: RootSelection,
  valid: ValidSignatures,
  signerOf: (root: string) => string = (root) => root,
): PolicyOutcome {
  const signers = selection.roots.filter((r) => (valid.get(r)?.size ?? 0) > 0);
  const found = distinctSigners(selection.roots, valid, signerOf);
  if (selection.threshold > 0 && found < selection.threshold)
    return { ok: false, reason: 'threshold', found, needed: selection.threshold };
  const missing = selection.required.filter((r) => !signers.includes(r));
  if (missing.length > 0) return { ok: false, reason: 'required', missing };
  if (found === 0) return { ok: false, reason: 'none' };
  return { ok: true, signers };
}

/**
 * How many signers vouch with a signature of their own: the size of a maximum matching between
 * signers and valid signatures (Kuhn's augmenting paths; a few roots and at most 48 signatures).
 */
export function distinctSigners(
  roots: readonly string[],
  valid: ValidSignatures,
  signerOf: (root: string) => string,
): number {
  const bySigner = new Map<string, Set<string>>();
  for (const root of roots) {
    const signatures = bySigner.get(signerOf(root)) ?? new Set<string>();
    for (const id of valid.get(root) ?? []) signatures.add(id);
    bySigner.set(signerOf(root), signatures);
  }
  const holder = new Map<string, string>();
  const assign = (signer: string, tried: Set<string>): boolean => {
    for (const id of bySigner.get(signer) ?? []) {
      if (tried.has(id)) continue;
      tried.add(id);
      const other = holder.get(id);
      if (other === undefined || assign(other, tried)) {
        holder.set(id, signer);
        return true;
      }
    }
    return false;
  };
  return [...bySigner.keys()].filter((signer) => assign(signer, new Set())).length;
}
