/** The migration report as text: every setting, grouped by what happened to it. */
import type { Migration, ReportEntry, Status } from './connaisseur.ts';

const HEADINGS: Record<Status, string> = {
  carried: 'Carried over',
  changed: 'Carried over with a changed meaning',
  dropped: 'Not carried over',
};

export function renderReport(m: Migration, files: readonly string[]): string {
  const lines = [
    `# Connaisseur → Provenant migration report`,
    '',
    `Inputs (merged in order, as helm install -f): ${files.join(', ')}`,
    '',
  ];
  const warnings = m.report.filter((e) => e.warning === true);
  if (warnings.length > 0) {
    lines.push(`## Read first (${warnings.length})`, '', ...warnings.map(line), '');
  }
  for (const status of ['carried', 'changed', 'dropped'] as const) {
    const entries = m.report.filter((e) => e.status === status);
    lines.push(`## ${HEADINGS[status]} (${entries.length})`, '', ...entries.map(line), '');
  }
  lines.push('## Kyverno settings that reproduce features:', '', ...m.kyverno.map((k) => `- ${k}`), '');
  return `${lines.join('\n')}`;
}

function line(e: ReportEntry): string {
  return `- ${e.warning === true ? '⚠ ' : ''}\`${e.path}\`: ${e.note}${e.rule !== undefined ? ` [rule changed: ${e.rule}]` : ''}`;
}
