/**
 * Structured JSON logs (pino). Secrets never reach a log line: messages about the config never quote it
 * (config/problems.ts), request credentials are redacted, and so is every secret-bearing field of
 * anything logged (registries[].auth, cache.redis, cache.hmacKey, ...) at any depth, so a config logged
 * whole, in part, or nested under another object is covered.
 */
import { pino, type DestinationStream } from 'pino';

import type { Logger } from 'pino';
export type { Logger };

/** Fields whose values are secret wherever they appear (compared case-insensitively). */
const SECRET_FIELDS: ReadonlySet<string> = new Set([
  'password',
  'auth',
  'redis',
  'hmackey',
  'token',
  'authorization',
  'proxy-authorization',
  'cookie',
  // alerting receivers: headers carry API keys, URLs (Slack, Teams) carry a secret path.
  'customheaders',
  'receiverurl',
]);
const CENSOR = '[redacted]';
/** Deeper than any config; beyond it a value is dropped rather than walked. */
const MAX_DEPTH = 12;

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'provenant' },
      // Serialized requests (fastify) are redacted by path; everything else by field name, below.
      redact: {
        paths: ['req.headers.authorization', 'req.headers["proxy-authorization"]', 'req.headers.cookie'],
        censor: CENSOR,
      },
      formatters: { log: (object) => redactSecrets(object, 0) as Record<string, unknown> },
    },
    destination,
  );
}

/**
 * A copy of `value` with secret fields censored. Config objects are frozen, so they are copied rather
 * than censored in place (pino's path redaction writes into the object). Only plain objects and arrays
 * are walked; errors and other class instances go to pino's serializers unchanged.
 */
export function redactSecrets(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) return CENSOR;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      SECRET_FIELDS.has(k.toLowerCase()) && v !== undefined ? CENSOR : redactSecrets(v, depth + 1),
    ]),
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
