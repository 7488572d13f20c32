/**
 * Conditions on attestation predicates written in Rego, compiled ahead of time with
 * `opa build -t wasm -e <entrypoint>` and evaluated in-process with @open-policy-agent/opa-wasm. The
 * entrypoint must evaluate to `true` for the predicate to pass; input is `{predicateType, predicate}`.
 * Evaluation is synchronous and bounded by the policy; the module is compiled once at load.
 */
import type { PredicatePolicy } from './attestations.ts';

export async function loadPredicatePolicy(wasm: Buffer, entrypoint?: string): Promise<PredicatePolicy> {
  // Loaded with the first policy: most configs verify no attestations.
  const { loadPolicy } = await import('@open-policy-agent/opa-wasm');
  const policy = await loadPolicy(wasm);
  return {
    allows(statement) {
      const results: unknown = policy.evaluate(statement, entrypoint);
      // opa-wasm answers a result set: [{ result: <value of the entrypoint> }]; undefined means "no".
      return (
        Array.isArray(results) && results.length > 0 && (results[0] as { result?: unknown }).result === true
      );
    },
  };
}
