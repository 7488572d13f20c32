/** Structured JSON logs (pino). Authorization headers and credentials are never logged. */
import { pino, type DestinationStream } from 'pino';

import type { Logger } from 'pino';
export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'provenant' },
      redact: { paths: ['req.headers.authorization', '*.password', '*.auth', 'auth'], censor: '[redacted]' },
    },
    destination,
  );
}
