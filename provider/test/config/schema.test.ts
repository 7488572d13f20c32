import { describe, expect, it } from 'vitest';

import { configJsonSchema } from '../../src/config/schema.ts';

/** JSON-pointer-ish paths of every object schema in `node`, and whether each forbids unknown fields. */
function objectSchemas(node: unknown, path = '#'): { path: string; strict: boolean }[] {
  if (node === null || typeof node !== 'object') return [];
  const here =
    !Array.isArray(node) && 'properties' in node
      ? [{ path, strict: (node as { additionalProperties?: unknown }).additionalProperties === false }]
      : [];
  return [...here, ...Object.entries(node).flatMap(([key, child]) => objectSchemas(child, `${path}/${key}`))];
}

describe('the config schema', () => {
  const schemas = objectSchemas(configJsonSchema());

  it('forbids unknown fields in every object, so a typo is an error rather than ignored', () => {
    expect(schemas.filter((s) => !s.strict).map((s) => s.path)).toEqual([]);
    // Every section and nested object was visited: root, 8 sections' objects and the validator variants.
    expect(schemas.length).toBeGreaterThan(15);
  });
});
