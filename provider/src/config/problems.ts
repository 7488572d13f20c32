/**
 * Describes what is wrong with a config file without quoting it. A config holds secrets (registry
 * passwords, the Redis URL, the cache HMAC key), and a broken file can put one anywhere: in a value the
 * schema refuses, in a key (`{ password:hunter2 }` is one key in YAML flow style), or in the line a YAML
 * parser would print around a syntax error. So a problem names only what the schema defines (field
 * paths, allowed fields and values) and points at everything else by line and column.
 */
import type { ErrorObject } from 'ajv';
import { isMap, isScalar, type Document, type ErrorCode, type LineCounter, type YAMLError } from 'yaml';

/** What each YAML syntax error means, in our words: the parser's own messages may quote the file. */
const YAML_ERROR_DESCRIPTIONS: Readonly<Record<ErrorCode, string>> = {
  ALIAS_PROPS: 'an alias cannot have an anchor or a tag',
  BAD_ALIAS: 'an alias names no anchor defined before it',
  BAD_DIRECTIVE: 'unknown or malformed % directive',
  BAD_DQ_ESCAPE: 'invalid escape sequence in a double-quoted string',
  BAD_INDENT: 'bad indentation',
  BAD_PROP_ORDER: 'anchors and tags must come after the ? or : indicator',
  BAD_SCALAR_START: 'a plain value cannot start with this character (quote it)',
  BLOCK_AS_IMPLICIT_KEY: 'a block value cannot be a key',
  BLOCK_IN_FLOW: 'a block value cannot appear inside [ ] or { }',
  DUPLICATE_KEY: 'duplicate key',
  IMPOSSIBLE: 'unparseable YAML',
  KEY_OVER_1024_CHARS: 'a key is longer than 1024 characters',
  MISSING_CHAR: 'a closing bracket, quote, comma or ": " is missing',
  MULTILINE_IMPLICIT_KEY: 'a key cannot span lines',
  MULTIPLE_ANCHORS: 'a value has more than one anchor',
  MULTIPLE_DOCS: 'more than one YAML document',
  MULTIPLE_TAGS: 'a value has more than one tag',
  NON_STRING_KEY: 'a key is not a string',
  RESOURCE_EXHAUSTION: 'too many aliases',
  TAB_AS_INDENT: 'a tab is used for indentation',
  TAG_RESOLVE_FAILED: 'unknown or mismatched tag',
  UNEXPECTED_TOKEN: 'unexpected token',
  BAD_COLLECTION_TYPE: 'a tag does not fit its collection',
};

/** `line L, column C: what is wrong`, for each syntax error. */
export function yamlProblems(errors: readonly YAMLError[], lines: LineCounter): string[] {
  return errors.map((e) => `${at(lines, e.pos[0])}: ${YAML_ERROR_DESCRIPTIONS[e.code] ?? 'syntax error'}`);
}

/**
 * Schema problems by JSON-pointer path. Paths hold only field names the schema defines and array
 * indices (no map-typed fields exist), so they are safe; an unknown field is the one thing that comes
 * from the file, and it is pointed at rather than quoted. Needs ajv's `verbose` for `parentSchema`.
 */
export function schemaProblems(errors: readonly ErrorObject[], doc: Document, lines: LineCounter): string[] {
  // A field with a fixed set of values fails one `const` per value plus an `anyOf`: say it once.
  const allowed = new Map<string, string[]>();
  for (const e of errors) {
    if (e.keyword === 'const')
      allowed.set(e.instancePath, [...(allowed.get(e.instancePath) ?? []), String(e.params['allowedValue'])]);
  }
  const enumProblems = [...allowed].map(
    ([path, values]) => `${path || '/'}: must be one of ${values.join(', ')}`,
  );
  // A union of object shapes (registries[].auth) fails every branch: say which shapes are allowed.
  const unions = new Set(errors.filter((e) => objectBranches(e) !== undefined).map((e) => e.instancePath));
  const others = errors.filter(
    (e) =>
      !(allowed.has(e.instancePath) && (e.keyword === 'const' || e.keyword === 'anyOf')) &&
      !(unions.has(e.instancePath) && (e.keyword === 'additionalProperties' || e.keyword === 'required')),
  );
  return [...new Set([...others.map((e) => describeSchemaError(e, doc, lines)), ...enumProblems])];
}

function describeSchemaError(e: ErrorObject, doc: Document, lines: LineCounter): string {
  const path = e.instancePath === '' ? '/' : e.instancePath;
  switch (e.keyword) {
    case 'additionalProperties': {
      const where = keyOffset(doc, e.instancePath, String(e.params['additionalProperty']));
      const fields = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return `${path}: unknown field${where === undefined ? '' : ` at ${at(lines, where)}`} (allowed: ${fields.join(', ')})`;
    }
    case 'required':
      return `${path}: missing required field "${String(e.params['missingProperty'])}"`;
    case 'anyOf': {
      const shapes = objectBranches(e);
      if (shapes === undefined) return `${path}: ${e.message ?? e.keyword}`;
      return `${path}: expected exactly the fields of one of: ${shapes.map((f) => f.join(' and ')).join('; ')}`;
    }
    case 'discriminator':
      return `${path}/type: must be one of static, cosign, notaryv1, notation`;
    default:
      // ajv's messages (without `verbose` data) quote only the schema: "must be string", "must be >= 0".
      return `${path}: ${e.message ?? e.keyword}`;
  }
}

/** The field names of each branch, when an `anyOf` error is about a union of object shapes. */
function objectBranches(e: ErrorObject): string[][] | undefined {
  if (e.keyword !== 'anyOf' || !Array.isArray(e.schema)) return undefined;
  const branches = e.schema as { type?: unknown; properties?: object }[];
  if (!branches.every((b) => b.type === 'object' && b.properties !== undefined)) return undefined;
  return branches.map((b) => Object.keys(b.properties ?? {}));
}

/** Where the key `name` of the mapping at `pointer` starts in the source. */
function keyOffset(doc: Document, pointer: string, name: string): number | undefined {
  const segments = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
  const node = segments.length === 0 ? doc.contents : doc.getIn(segments, true);
  if (!isMap(node)) return undefined;
  const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === name);
  return isScalar(pair?.key) ? pair.key.range?.[0] : undefined;
}

function at(lines: LineCounter, offset: number): string {
  const { line, col } = lines.linePos(offset);
  return `line ${line}, column ${col}`;
}
