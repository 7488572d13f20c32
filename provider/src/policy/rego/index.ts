export { EXTERNAL_DATA_BUILTIN, EXTERNAL_DATA_CAPABILITIES, withExternalData } from './capabilities.ts';
export {
  constraintMatches,
  parseObjects,
  reviewInput,
  toConstraint,
  type Constraint,
  type EnforcementAction,
  type KubeObject,
} from './constraint.ts';
export { CompiledTemplate, violationEntrypoint, type RegoViolation } from './evaluate.ts';
export {
  HTTP_OK,
  systemErrorResponse,
  type ExternalDataRequest,
  type ExternalDataResolver,
  type ExternalDataResponse,
} from './external-data.ts';
export { compileToWasm, fileInTar, opaCommand } from './opa.ts';
export {
  loadConstraints,
  loadObjects,
  loadTemplate,
  runSuite,
  testObject,
  verdictOf,
  type Finding,
  type ObjectResult,
  type SuiteCaseResult,
  type Verdict,
} from './policy-test.ts';
export { readTemplate, regoPackage, renderTemplate, type TemplateRego } from './template.ts';
