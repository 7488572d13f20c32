/**
 * `trustRoots[].key` is PEM text, as in Connaisseur, or (Provenant's addition) the path of a PEM file,
 * relative to the config file like every other path in it: a value without a PEM header that contains
 * a `/` or a `.` (`ci.pub`, `keys/release.pem`). The file is read at load and its text replaces the
 * path, so a missing or unreadable key stops the start, and a reload keeps the last good config.
 * Anything else (a URI such as `awskms://…`, a bare word) is left for the key checks to refuse.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

const PEM_MARKER = '-----BEGIN ';
const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const FILE_NAME = /[./]/;

interface RawTrustRoot {
  key?: unknown;
}

/** Replaces key paths by the files' text in `raw` (freshly parsed YAML); returns the problems found. */
export function inlineKeyFiles(raw: unknown, baseDir: string): string[] {
  const validators = (raw as { validators?: unknown }).validators;
  if (!Array.isArray(validators)) return [];
  return validators.flatMap((v: { trustRoots?: unknown }, i) =>
    Array.isArray(v.trustRoots)
      ? v.trustRoots.flatMap((root: RawTrustRoot, j) =>
          inlineKeyFile(root, baseDir, `/validators/${i}/trustRoots/${j}/key`),
        )
      : [],
  );
}

function inlineKeyFile(root: RawTrustRoot, baseDir: string, at: string): string[] {
  const key = root.key;
  if (typeof key !== 'string' || !isFilePath(key.trim())) return [];
  const path = isAbsolute(key.trim()) ? key.trim() : resolve(baseDir, key.trim());
  try {
    root.key = readFileSync(path, 'utf8');
    return [];
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    return [
      `${at}: expected PEM text or a readable PEM file, found ${JSON.stringify(key)} (${path}: ${why})`,
    ];
  }
}

function isFilePath(key: string): boolean {
  return !key.includes(PEM_MARKER) && !URI_SCHEME.test(key) && FILE_NAME.test(key);
}
