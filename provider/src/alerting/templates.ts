/**
 * Alert payloads in Connaisseur's template shape: JSON whose strings hold `{{ variable }}` placeholders
 * (shared/reference/connaisseur-config.md §3, Alerting). Templates are parsed first and variables are
 * substituted inside the parsed strings, so a value (an image name, an error message) can never break
 * out of its string into the JSON around it.
 *
 * Variables Provenant fills: alert_message, priority, cluster, timestamp, images (the one image of the
 * verdict), connaisseur_pod_id and provenant_pod_id (this pod's name, from HOSTNAME), and its own image,
 * digest, validator, rule, error. Variables it cannot fill, because a policy engine asks about images,
 * not admission requests: namespace and request_id (both "unknown").
 */
import { readFileSync } from 'node:fs';
import { ProvenantError } from '../types/errors.ts';

export type Template = unknown;

export const TEMPLATE_VARIABLES = [
  'alert_message',
  'priority',
  'cluster',
  'timestamp',
  'images',
  'connaisseur_pod_id',
  'provenant_pod_id',
  'namespace',
  'request_id',
  'image',
  'digest',
  'validator',
  'rule',
  'error',
] as const;
export type TemplateVariables = Record<(typeof TEMPLATE_VARIABLES)[number], string>;

/** Slack incoming webhook: `text` (notification fallback) plus Block Kit blocks (header, section fields, context). */
const SLACK = {
  text: '{{ alert_message }}: {{ images }}',
  blocks: [
    { type: 'header', text: { type: 'plain_text', text: '{{ alert_message }}' } },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: '*Cluster*\n{{ cluster }}' },
        { type: 'mrkdwn', text: '*Image*\n`{{ images }}`' },
        { type: 'mrkdwn', text: '*Validator*\n{{ validator }}' },
        { type: 'mrkdwn', text: '*Rule*\n`{{ rule }}`' },
        { type: 'mrkdwn', text: '*Severity*\n{{ priority }}' },
        { type: 'mrkdwn', text: '*Created*\n{{ timestamp }}' },
      ],
    },
    { type: 'section', text: { type: 'mrkdwn', text: '{{ error }}' } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: 'Provenant pod {{ provenant_pod_id }}' }] },
  ],
};

/** Microsoft Teams incoming webhook: a legacy MessageCard (summary, title, facts). */
const MSTEAMS = {
  '@type': 'MessageCard',
  '@context': 'https://schema.org/extensions',
  summary: '{{ alert_message }}',
  themeColor: '0076D7',
  title: '{{ alert_message }}',
  sections: [
    {
      activityTitle: '{{ images }}',
      activitySubtitle: '{{ timestamp }}',
      facts: [
        { name: 'Cluster', value: '{{ cluster }}' },
        { name: 'Image', value: '{{ images }}' },
        { name: 'Digest', value: '{{ digest }}' },
        { name: 'Validator', value: '{{ validator }}' },
        { name: 'Rule', value: '{{ rule }}' },
        { name: 'Severity', value: '{{ priority }}' },
        { name: 'Reason', value: '{{ error }}' },
        { name: 'Provenant pod', value: '{{ provenant_pod_id }}' },
      ],
      markdown: false,
    },
  ],
};

/** Opsgenie Alert API v2 (`POST /v2/alerts`): message, alias, description, details, priority P1–P5. */
const OPSGENIE = {
  message: '{{ alert_message }}',
  alias: '{{ alert_message }}: {{ images }}',
  description:
    '{{ alert_message }}: {{ images }} ({{ digest }}) by rule {{ rule }} with validator {{ validator }}. {{ error }}',
  responders: [],
  visibleTo: [],
  tags: [],
  details: {
    cluster: '{{ cluster }}',
    image: '{{ images }}',
    digest: '{{ digest }}',
    pod: '{{ provenant_pod_id }}',
    alert_created: '{{ timestamp }}',
  },
  entity: 'Provenant',
  priority: 'P{{ priority }}',
};

/** Keybase webhookbot: one `msg`. */
const KEYBASE = {
  msg: '{{ alert_message }}: {{ images }} in cluster {{ cluster }} at {{ timestamp }} (priority {{ priority }}). {{ error }}',
};

/** Elastic Common Schema 1.12.0 event. */
const ECS_1_12_0 = {
  '@timestamp': '{{ timestamp }}',
  ecs: { version: '1.12.0' },
  message: '{{ alert_message }}: {{ images }}',
  event: {
    kind: 'alert',
    module: 'provenant',
    action: '{{ alert_message }}',
    severity: '{{ priority }}',
    reason: '{{ error }}',
  },
  container: { image: { name: '{{ images }}', hash: { all: ['{{ digest }}'] } } },
  orchestrator: { type: 'kubernetes', cluster: { name: '{{ cluster }}' } },
  rule: { name: '{{ rule }}' },
  observer: { name: '{{ provenant_pod_id }}', product: 'Provenant' },
};

const BUILT_IN: Readonly<Record<string, Template>> = {
  slack: SLACK,
  msteams: MSTEAMS,
  opsgenie: OPSGENIE,
  keybase: KEYBASE,
  'ecs-1-12-0': ECS_1_12_0,
};

/** A built-in name (with or without `.json`), else a JSON template file (relative paths resolved by the caller). */
export function loadTemplate(name: string, resolvePath: (p: string) => string): Template {
  const builtIn = BUILT_IN[name.replace(/\.json$/, '')];
  if (builtIn !== undefined) return builtIn;
  const path = resolvePath(name);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Template;
  } catch (err) {
    throw new ProvenantError(
      'CONFIG_INVALID',
      `alerting template "${name}" is neither a built-in (${Object.keys(BUILT_IN).join(', ')}) nor a readable JSON file (${path})`,
      { cause: err },
    );
  }
}

/** The template with every `{{ variable }}` of its strings (keys included) replaced; unknown ones stay empty. */
export function renderTemplate(template: Template, vars: Partial<TemplateVariables>): unknown {
  const fill = (s: string): string =>
    s.replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (_, name: string) => (vars as Record<string, string>)[name] ?? '');
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return fill(v);
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null)
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [fill(k), walk(x)]));
    return v;
  };
  return walk(template);
}
