export {
  compilePattern,
  matchableForm,
  unmatchableReason,
  PatternSyntaxError,
  type CompiledPattern,
} from './pattern.ts';
export {
  compileRules,
  mostSpecificRule,
  patternMatches,
  compareSpecificity,
  type PolicyRule,
} from './match.ts';
