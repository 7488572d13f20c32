import { describe, expect, it } from 'vitest';

import { preview } from '../../src/types/preview.ts';

const deep = (depth: number): unknown => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);

describe('preview', () => {
  it('shows a short value as its JSON', () => {
    expect(preview({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}');
    expect(preview(null)).toBe('null');
  });

  it('cuts a long value to the given length and marks the cut', () => {
    expect(preview('a'.repeat(1000), 10)).toBe(`"${'a'.repeat(9)}…`);
  });

  it('names a value JSON cannot show as nothing', () => {
    expect(preview(undefined)).toBe('nothing');
  });

  it('names a value nested too deeply for JSON.stringify by its kind instead of overflowing the stack', () => {
    expect(preview(deep(20_000))).toBe('a deeply nested array');
    expect(preview({ a: deep(20_000) })).toBe('a deeply nested object');
  });
});
