/**
 * A short rendering of an untrusted JSON value for an error message: its JSON text, cut to
 * `maxChars`. JSON.stringify recurses, so a value nested a few thousand levels deep (a few KiB of
 * `[[[…]]]` from a registry or a Notary server) overflows the stack with a RangeError; such a value is
 * named by its kind instead, so that a coded refusal never turns into an uncoded crash.
 */
export function preview(value: unknown, maxChars = 80): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return Array.isArray(value) ? 'a deeply nested array' : `a deeply nested ${typeof value}`;
  }
  if (text === undefined) return 'nothing';
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}
