/**
 * Writes gatekeeper/templates/<name>.yaml from each policies/gatekeeper/<policy>/ folder: its
 * constraint.tmpl with src.rego as the admission target's Rego (gatekeeper-library's generation step).
 *   npx tsx test/tools/gen-gatekeeper.ts          write the templates
 *   npx tsx test/tools/gen-gatekeeper.ts --check  exit 1 when a committed template is out of date
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'prettier';
import { parse } from 'yaml';
import { renderTemplate } from '../../provider/src/policy/rego/index.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const POLICIES_DIR = 'policies/gatekeeper';
const TEMPLATES_DIR = 'gatekeeper/templates';

export interface GeneratedTemplate {
  /** Path of the generated file, relative to the repository root. */
  readonly target: string;
  readonly text: string;
}

/** The templates as the repository's formatter leaves them, so `prettier --check` and this agree. */
export async function generateTemplates(root = ROOT): Promise<GeneratedTemplate[]> {
  const policiesDir = path.join(root, POLICIES_DIR);
  const generated = readdirSync(policiesDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(policiesDir, d.name, 'constraint.tmpl')))
    .map((d) => {
      const dir = path.join(POLICIES_DIR, d.name);
      const tmpl = readFileSync(path.join(root, dir, 'constraint.tmpl'), 'utf8');
      const rego = readFileSync(path.join(root, dir, 'src.rego'), 'utf8');
      const name = (parse(tmpl) as { metadata: { name: string } }).metadata.name;
      return {
        target: path.join(TEMPLATES_DIR, `${name}.yaml`),
        text: renderTemplate(tmpl, rego, `${dir}/src.rego`),
      };
    });
  return Promise.all(generated.map(async (g) => ({ ...g, text: await format(g.text, { parser: 'yaml' }) })));
}

async function main(check: boolean): Promise<number> {
  let stale = 0;
  for (const { target, text } of await generateTemplates()) {
    const file = path.join(ROOT, target);
    const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    if (current === text) continue;
    if (check) {
      process.stderr.write(`${target} is out of date; run npx tsx test/tools/gen-gatekeeper.ts\n`);
      stale++;
    } else {
      writeFileSync(file, text);
      process.stdout.write(`wrote ${target}\n`);
    }
  }
  return stale === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.includes('--check'));
}
