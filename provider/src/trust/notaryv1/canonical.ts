/**
 * Canonical JSON as Notary v1 signs it (github.com/docker/go `canonical/json`, MarshalCanonical):
 * object keys in byte order, no whitespace, and — unlike encoding/json — strings escape only `"` and
 * `\`. Notary refuses floating-point numbers in canonical form, so only integers are accepted here.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
}

export function canonicalJson(value: unknown): Buffer {
  try {
    return Buffer.from(encode(value), 'utf8');
  } catch (err) {
    // encode recurses: metadata nested thousands deep overflows the stack (a RangeError, as does a
    // string past V8's length limit). Refused like any other value Notary could not have signed.
    if (err instanceof RangeError) throw new CanonicalJsonError(`not encodable: ${err.message}`);
    throw err;
  }
}

function encode(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new CanonicalJsonError(`not an integer: ${value}`);
      return String(value);
    case 'string':
      return encodeString(value);
    case 'object':
      if (Array.isArray(value)) return `[${value.map(encode).join(',')}]`;
      return encodeObject(value as Record<string, unknown>);
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      break;
  }
  throw new CanonicalJsonError(`not representable in JSON: ${typeof value}`);
}

function encodeString(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function encodeObject(obj: Record<string, unknown>): string {
  // Go sorts map keys by their UTF-8 bytes, which differs from UTF-16 order outside the BMP.
  const keys = Object.keys(obj).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${encodeString(k)}:${encode(obj[k])}`).join(',')}}`;
}
