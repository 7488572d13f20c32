import type { RuleConfig, ValidatorType } from '../config/index.ts';
import type { ImageReference } from '../reference/index.ts';

export interface ValidationRequest {
  readonly image: ImageReference;
  /** The policy rule that chose this validator (its pattern and `with` options). */
  readonly rule: RuleConfig;
  readonly signal: AbortSignal;
}

export interface Validated {
  /** The trusted digest of the image. */
  readonly digest: string;
  /** Names of the trust roots whose signatures were accepted (empty for static). */
  readonly signers: readonly string[];
  /**
   * Failures a verification level let through because it only logs them (Notation's `permissive` and
   * `audit`): the caller logs them and the verdict lists them, so an admission in audit mode is never silent.
   */
  readonly notes?: readonly string[];
}

/** A validator answers with a trusted digest or throws a ProvenantError saying why not. */
export interface Validator {
  readonly name: string;
  readonly type: ValidatorType;
  validate(request: ValidationRequest): Promise<Validated>;
  /** Resolves once the validator can answer (policies compiled); rejects with CONFIG_INVALID if it never will. */
  ready?(): Promise<void>;
  /** Runs its verification code once offline, before the server listens, so a first request does not pay for it. */
  warmUp?(): void;
  /** Releases connections (called once the config that built it is replaced and drained). */
  close?(): Promise<void>;
}
