export {
  migrateConnaisseur,
  CONNAISSEUR_NAMESPACE_LABEL,
  type Migration,
  type ReportEntry,
  type ShippedGatekeeper,
  type KubeObject,
} from './connaisseur.ts';
export { mergeValues, isValues, type Values } from './values.ts';
export { renderReport } from './report.ts';
