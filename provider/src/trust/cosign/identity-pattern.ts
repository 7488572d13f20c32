/**
 * Keyless identity patterns (`keyless.subjectRegex` / `issuerRegex`) with cosign's semantics: cosign
 * compiles them with Go's `regexp.Compile` (RE2 syntax) and tests them with `MatchString`, which is
 * unanchored (sigstore-go `pkg/verify/certificate_identity.go` NewSANMatcher / NewIssuerMatcher;
 * cosign `pkg/cosign/verify.go` validateCertIdentity). re2js is a port of that engine: matching takes
 * time linear in the input, so no pattern can stall the event loop with backtracking, and a pattern
 * cosign refuses (lookaround, backreferences) is refused here too instead of meaning something else.
 */
import { RE2JS } from 're2js';

export interface IdentityPattern {
  /** The pattern as configured, for messages. */
  readonly source: string;
  /** Whether the pattern matches anywhere in `value` (Go's `MatchString`). */
  test(value: string): boolean;
}

export class IdentityPatternError extends Error {
  override readonly name = 'IdentityPatternError';
}

/** Compiles an RE2 pattern; throws IdentityPatternError with RE2's reason when it is not one. */
export function compileIdentityPattern(source: string): IdentityPattern {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(source);
  } catch (err) {
    throw new IdentityPatternError(
      `not a valid RE2 regular expression (the syntax cosign uses): ${(err as Error).message}`,
    );
  }
  return { source, test: (value) => compiled.test(value) };
}
