/**
 * The type guard for what the shared cache hands back. Redis entries are authenticated (cache/redis.ts),
 * but a verdict is only believed in the exact shape this build writes: strings where strings belong,
 * a sha256 or sha512 digest, a known mode, a known error code that is not transient (those are never cached).
 */
import { ERROR_CODES, type ErrorCode } from '../types/errors.ts';
import type { CachedOutcome } from './verifier.ts';

// OCI image-spec descriptor digests: the registered algorithms, lowercase hex.
const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MODES: ReadonlySet<unknown> = new Set(['mutate', 'insecureValidateOnly']);

export function isCachedOutcome(value: unknown): value is CachedOutcome {
  if (!isRecord(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 1) return false;
  if (keys[0] === 'verdict') return isVerdict(value['verdict']);
  if (keys[0] === 'error') return isCachedError(value['error']);
  return false;
}

function isVerdict(v: unknown): boolean {
  return (
    isRecord(v) &&
    typeof v['image'] === 'string' &&
    typeof v['digest'] === 'string' &&
    DIGEST_PATTERN.test(v['digest']) &&
    typeof v['validator'] === 'string' &&
    Array.isArray(v['signers']) &&
    v['signers'].every((s) => typeof s === 'string') &&
    (v['notes'] === undefined ||
      (Array.isArray(v['notes']) && v['notes'].every((s) => typeof s === 'string'))) &&
    typeof v['rule'] === 'string' &&
    MODES.has(v['mode'])
  );
}

function isCachedError(e: unknown): boolean {
  if (!isRecord(e) || !hasExactly(e, ['code', 'message']) || typeof e['message'] !== 'string') return false;
  const code = e['code'];
  return (
    typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) && !ERROR_CODES[code as ErrorCode].transient
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasExactly(v: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(v);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(v, k));
}
