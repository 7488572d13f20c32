/**
 * The `attestation:` block of a cosign validator, made ready at load: a `.rego` policy is compiled with
 * the real `opa build -t wasm` (PROVENANT_OPA or `opa` on PATH), a `.wasm` one (from `opa build -t wasm`)
 * is read as is. Failures are CONFIG_INVALID naming the validator and the file: a broken policy stops
 * the provider from starting, and a reload with one keeps the last good config.
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { ValidatorConfig } from '../../config/index.ts';
import { compileToWasm, fileInTar } from '../../policy/rego/opa.ts';
import { ProvenantError } from '../../types/errors.ts';
import type { AttestationRequirement } from './attestations.ts';
import { loadPredicatePolicy } from './predicate-policy.ts';

type AttestationConfig = NonNullable<Extract<ValidatorConfig, { type: 'cosign' }>['attestation']>;

/** The entrypoint when none is configured: `package attestation` with an `allow` rule. */
export const DEFAULT_ATTESTATION_ENTRYPOINT = 'attestation/allow';

export async function loadAttestationRequirement(
  validator: string,
  config: AttestationConfig,
): Promise<AttestationRequirement> {
  if (config.policy === undefined) return { predicateType: config.predicateType };
  const file = config.policy;
  const entrypoint = config.entrypoint ?? DEFAULT_ATTESTATION_ENTRYPOINT;
  try {
    const bytes = await readFile(file);
    const wasm = file.endsWith('.wasm')
      ? bytes
      : file.endsWith('.tar.gz')
        ? (fileInTar(gunzipSync(bytes), '/policy.wasm') ?? Buffer.alloc(0))
        : await compileToWasm(bytes.toString('utf8'), [entrypoint]);
    const policy = await loadPredicatePolicy(wasm, entrypoint);
    return { predicateType: config.predicateType, policy };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ProvenantError(
      'CONFIG_INVALID',
      `validator ${validator}, attestation.policy ${file}: expected a Rego policy (or opa-built WASM) with entrypoint ${entrypoint}, found: ${why}`,
      { cause: err },
    );
  }
}
