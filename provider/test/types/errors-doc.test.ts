import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { ERROR_CODES, ProvenantError, toProvenantError, type ErrorCode } from '../../src/types/errors.ts';

const ERRORS_DOC_PATH = new URL('../../../docs/errors.md', import.meta.url);

interface DocRow {
  readonly code: string;
  readonly transient: string;
  readonly meaning: string;
  readonly whatToDo: string;
  /** The `##` heading the row's table sits under. */
  readonly heading: string;
  readonly line: number;
}

/** Every body row of every markdown table in the document, with the section it belongs to. */
function parseDocRows(markdown: string): DocRow[] {
  const rows: DocRow[] = [];
  let heading = '';
  let inTable = false;
  markdown.split('\n').forEach((text, i) => {
    if (text.startsWith('## ')) heading = text.slice(3);
    if (!text.startsWith('|')) {
      inTable = false;
      return;
    }
    const wasInTable = inTable;
    inTable = true;
    // The first line of a table is its header; the separator row is all dashes.
    if (!wasInTable || /^\|[\s|:-]+\|$/.test(text)) return;
    const [code = '', transient = '', meaning = '', whatToDo = ''] = text
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim());
    rows.push({ code: code.replace(/`/g, ''), transient, meaning, whatToDo, heading, line: i + 1 });
  });
  return rows;
}

const rows = parseDocRows(readFileSync(ERRORS_DOC_PATH, 'utf8'));
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

/** The area a code belongs to: its prefix up to and including the first `_`, or the whole code. */
function area(code: string): string {
  const underscore = code.indexOf('_');
  return underscore === -1 ? code : code.slice(0, underscore + 1);
}

describe('docs/errors.md', () => {
  it('has one table row for every code in ERROR_CODES and no other', () => {
    const documented = rows.map((r) => r.code);
    const missing = codes.filter((c) => !documented.includes(c));
    const extra = documented.filter((c) => !(codes as string[]).includes(c));
    const duplicated = documented.filter((c, i) => documented.indexOf(c) !== i);
    expect({ missing, extra, duplicated }).toEqual({ missing: [], extra: [], duplicated: [] });
  });

  it.each(codes)('marks %s transient exactly when ERROR_CODES does', (code) => {
    const row = rows.find((r) => r.code === code);
    expect(row?.transient, `transient column for ${code}`).toBe(ERROR_CODES[code].transient ? 'yes' : 'no');
  });

  it.each(codes)('gives %s the summary from ERROR_CODES as its meaning and a hint', (code) => {
    const row = rows.find((r) => r.code === code);
    expect(row?.meaning).toBe(ERROR_CODES[code].summary);
    expect(row?.whatToDo.length ?? 0, `"what to do" for ${code}`).toBeGreaterThan(10);
  });

  it('lists each code under the heading of its area', () => {
    const misplaced = rows
      .filter((r) => !r.heading.includes(`\`${area(r.code)}\``))
      .map((r) => `${r.code} (line ${r.line}) under "${r.heading}"`);
    expect(misplaced).toEqual([]);
  });
});

describe('ProvenantError', () => {
  it('renders an item error as "<CODE>: <message>"', () => {
    const err = new ProvenantError('POLICY_NO_MATCHING_RULE', 'no rule matches image nginx', {
      image: 'nginx',
    });
    expect(err.toItemError()).toBe('POLICY_NO_MATCHING_RULE: no rule matches image nginx');
  });

  it('keeps the code, image and cause it was given', () => {
    const cause = new Error('socket hang up');
    const err = new ProvenantError('REGISTRY_UNREACHABLE', 'cannot reach r.io', { image: 'r.io/a', cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('ProvenantError');
    expect(err.code).toBe('REGISTRY_UNREACHABLE');
    expect(err.image).toBe('r.io/a');
    expect(err.cause).toBe(cause);
  });

  it('has no cause property when none was given', () => {
    const err = new ProvenantError('CONFIG_INVALID', 'bad');
    expect('cause' in err).toBe(false);
    expect(err.image).toBeUndefined();
  });

  it('takes its transient flag from ERROR_CODES', () => {
    expect(new ProvenantError('REGISTRY_TIMEOUT', 'slow').transient).toBe(true);
    expect(new ProvenantError('REGISTRY_UNAUTHORIZED', 'denied').transient).toBe(false);
    expect(new ProvenantError('INTERNAL', 'bug').transient).toBe(true);
  });
});

describe('toProvenantError', () => {
  it('returns a ProvenantError unchanged, even when given another image', () => {
    const original = new ProvenantError('REFERENCE_INVALID', 'bad reference', { image: 'A' });
    const wrapped = toProvenantError(original, 'other');
    expect(wrapped).toBe(original);
    expect(wrapped.code).toBe('REFERENCE_INVALID');
    expect(wrapped.image).toBe('A');
  });

  it('wraps any other Error as INTERNAL, keeping it as the cause', () => {
    const cause = new TypeError("Cannot read properties of undefined (reading 'x')");
    const wrapped = toProvenantError(cause, 'nginx');
    expect(wrapped).toBeInstanceOf(ProvenantError);
    expect(wrapped.code).toBe('INTERNAL');
    expect(wrapped.image).toBe('nginx');
    expect(wrapped.cause).toBe(cause);
    expect(wrapped.toItemError()).toBe(
      "INTERNAL: unexpected failure: Cannot read properties of undefined (reading 'x')",
    );
    expect(wrapped.transient).toBe(true);
  });

  it('wraps thrown non-Error values as INTERNAL with their text', () => {
    const wrapped = toProvenantError('plain string');
    expect(wrapped.code).toBe('INTERNAL');
    expect(wrapped.message).toBe('unexpected failure: plain string');
    expect(wrapped.image).toBeUndefined();
    expect(wrapped.cause).toBe('plain string');
  });
});
