import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateTemplates, ROOT } from '../../../../test/tools/gen-gatekeeper.ts';
import {
  EXTERNAL_DATA_CAPABILITIES,
  readTemplate,
  regoPackage,
  renderTemplate,
  withExternalData,
} from '../../../src/policy/rego/index.ts';

describe('gatekeeper/templates', () => {
  it('match what test/tools/gen-gatekeeper.ts generates from policies/gatekeeper', async () => {
    const generated = await generateTemplates();
    expect(generated.map((g) => g.target)).toContain('gatekeeper/templates/provenantverifiedimages.yaml');
    for (const { target, text } of generated) {
      const committed = readFileSync(`${ROOT}/${target}`, 'utf8');
      expect(committed, `${target} drifted from policies/; run npx tsx test/tools/gen-gatekeeper.ts`).toBe(
        text,
      );
    }
  });

  it('carry the Rego source unchanged, with its package as the WASM entrypoint prefix', () => {
    const rego = readFileSync(`${ROOT}/policies/gatekeeper/verified-images/src.rego`, 'utf8');
    const text = readFileSync(`${ROOT}/gatekeeper/templates/provenantverifiedimages.yaml`, 'utf8');
    const template = readTemplate(text, 'provenantverifiedimages.yaml');
    expect(template).toMatchObject({
      name: 'provenantverifiedimages',
      kind: 'ProvenantVerifiedImages',
      packagePath: 'provenantverifiedimages',
    });
    expect(template.rego).toBe(rego);
  });

  it('import only what Gatekeeper allows in a template (future.keywords, data.lib)', async () => {
    for (const { target, text } of await generateTemplates()) {
      const imports = [...readTemplate(text, target).rego.matchAll(/^import\s+(\S+)/gm)].map((m) => m[1]);
      expect(
        imports.filter((i) => !/^(future\.keywords\b|data\.lib\b)/.test(i ?? '')),
        target,
      ).toEqual([]);
    }
  });
});

describe('readTemplate', () => {
  it('names what is missing from a ConstraintTemplate without an admission target', () => {
    const text = renderTemplate(
      'kind: ConstraintTemplate\nmetadata: {name: x}\nspec: {crd: {spec: {names: {kind: X}}}, targets: [{target: admission.k8s.gatekeeper.sh, rego: ""}]}\n',
      'package x\n',
      'x.rego',
    ).replace('admission.k8s.gatekeeper.sh', 'other.target');
    expect(() => readTemplate(text, 'x.yaml')).toThrow(
      /x\.yaml: expected .* admission\.k8s\.gatekeeper\.sh target/,
    );
  });

  it('refuses a document of another kind', () => {
    expect(() => readTemplate('kind: Pod\n', 'pod.yaml')).toThrow(
      /expected kind ConstraintTemplate, found "Pod"/,
    );
  });
});

describe('regoPackage', () => {
  it('turns a dotted package into a slash path', () => {
    expect(regoPackage('# c\npackage lib.images\n\nimport rego.v1\n', 'a')).toBe('lib/images');
  });

  it('fails on Rego without a package', () => {
    expect(() => regoPackage('allow := true\n', 'a.rego')).toThrow(/a\.rego: expected a "package" line/);
  });
});

describe('external_data capabilities', () => {
  it('are the ones in policies/gatekeeper/external-data.capabilities.json', () => {
    const file = JSON.parse(
      readFileSync(`${ROOT}/policies/gatekeeper/external-data.capabilities.json`, 'utf8'),
    ) as unknown;
    expect(file).toEqual(EXTERNAL_DATA_CAPABILITIES);
  });

  it('are appended to OPA capabilities once, replacing an older declaration', () => {
    const merged = withExternalData({
      builtins: [{ name: 'abs' }, { name: 'external_data', old: true }],
      features: ['x'],
    }) as { builtins: { name: string }[]; features: string[] };
    expect(merged.builtins.map((b) => b.name)).toEqual(['abs', 'external_data']);
    expect(merged.builtins[1]).toEqual(EXTERNAL_DATA_CAPABILITIES.builtins[0]);
    expect(merged.features).toEqual(['x']);
  });

  it('refuse output that is not OPA capabilities', () => {
    expect(() => withExternalData({ nope: 1 })).toThrow(/builtins array/);
  });
});
