/** Helpers shared by the config tests. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'vitest';

import { parseConfig } from '../../src/config/index.ts';
import { ProvenantError } from '../../src/types/errors.ts';

/** The source name parseConfig is given in these tests. */
export const TEST_SOURCE = 'test.yaml';

/** Runs `action` and returns the ProvenantError it threw, failing the test on anything else. */
export function provenantErrorFrom(action: () => unknown): ProvenantError {
  try {
    action();
  } catch (err) {
    if (err instanceof ProvenantError) return err;
    throw new Error(`expected a ProvenantError, but ${String(err)} was thrown`, { cause: err });
  }
  throw new Error('expected a ProvenantError, but nothing was thrown');
}

/** The problems a CONFIG_INVALID error lists for the text, one entry per listed line. */
export function configProblems(text: string): string[] {
  const err = provenantErrorFrom(() => parseConfig(text, TEST_SOURCE, '/'));
  expect(err.code).toBe('CONFIG_INVALID');
  return err.message
    .split('\n')
    .filter((line) => line.startsWith('  - '))
    .map((line) => line.slice('  - '.length));
}

/** A fresh temporary directory; the caller removes it. */
export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'provenant-config-'));
}

/** Indents every line of a PEM block so it can follow `key: |` at the given column. */
export function yamlBlock(text: string, column: number): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `${' '.repeat(column)}${line}`)
    .join('\n');
}
