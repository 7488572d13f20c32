export { Alerter, type AlertEvent, type AlerterOptions } from './alerter.ts';
export { renderTemplate, loadTemplate, TEMPLATE_VARIABLES, type TemplateVariables } from './templates.ts';
