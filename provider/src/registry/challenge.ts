/**
 * Parsing `WWW-Authenticate` challenges (RFC 7235 §4.1) as registries send them
 * (distribution spec: token authentication, `Bearer realm="…",service="…",scope="…"`).
 */
export interface Challenge {
  readonly scheme: string; // lowercased: 'basic' | 'bearer' | …
  readonly params: Readonly<Record<string, string>>;
}

const PARAM = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/y;

export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*([A-Za-z]+)(?:\s+|$)/.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  PARAM.lastIndex = match[0].length;
  for (let m = PARAM.exec(header); m !== null; m = PARAM.exec(header)) {
    params[(m[1] as string).toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
    if (PARAM.lastIndex >= header.length) break;
  }
  return { scheme: (match[1] as string).toLowerCase(), params };
}
