export { Verifier, type Verdict, type Outcome, type CachedOutcome, type VerifierDeps } from './verifier.ts';
export { Runtime, type RuntimePhase } from './runtime.ts';
