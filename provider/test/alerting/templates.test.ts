import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  loadTemplate,
  renderTemplate,
  TEMPLATE_VARIABLES,
  type TemplateVariables,
} from '../../src/alerting/index.ts';
import { ProvenantError } from '../../src/types/errors.ts';

const vars = Object.fromEntries(TEMPLATE_VARIABLES.map((v) => [v, `<${v}>`])) as TemplateVariables;
const dir = mkdtempSync(path.join(tmpdir(), 'alert-templates-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const here = (p: string): string => path.resolve(dir, p);

describe('alert templates', () => {
  it.each(['slack', 'msteams', 'opsgenie', 'keybase', 'ecs-1-12-0', 'slack.json'])(
    'renders the built-in %s template with every placeholder filled',
    (name) => {
      const text = JSON.stringify(renderTemplate(loadTemplate(name, here), vars));
      expect(text).not.toContain('{{');
      expect(text).toContain('<alert_message>');
    },
  );

  it('keeps a hostile value inside its string, whatever quotes and braces it holds', () => {
    const image = 'evil.io/x:1", "injected": true, "x": "{{ cluster }}';
    const rendered = renderTemplate({ text: 'image {{ images }}' }, { ...vars, images: image });
    expect(rendered).toEqual({ text: `image ${image}` });
  });

  it('reads a custom JSON template file relative to the config file, with Connaisseur-style placeholders', () => {
    writeFileSync(path.join(dir, 'custom.json'), '{"summary": "{{alert_message}} in {{ cluster }}", "n": 3}');
    expect(renderTemplate(loadTemplate('custom.json', here), vars)).toEqual({
      summary: '<alert_message> in <cluster>',
      n: 3,
    });
  });

  it('refuses a template that is neither built in nor a readable JSON file', () => {
    expect(() => loadTemplate('pagerduty', here)).toThrow(ProvenantError);
    expect(() => loadTemplate('pagerduty', here)).toThrow(
      /neither a built-in \(slack, msteams, opsgenie, keybase, ecs-1-12-0\)/,
    );
  });
});
