/**
 * A Runtime built from YAML text (static validators only), and a fastify server around it for
 * `inject()`: the same objects `provenant serve` builds, without TLS or a listening socket.
 */
import type { FastifyInstance } from 'fastify';

import { parseConfig, type Config } from '../../src/config/index.ts';
import { buildServer } from '../../src/http/index.ts';
import { createLogger, Metrics } from '../../src/observability/index.ts';
import { Runtime } from '../../src/service/index.ts';

export const TEST_CONFIG_SOURCE = 'test config';

export function configFromYaml(yaml: string): Config {
  return parseConfig(yaml, TEST_CONFIG_SOURCE, process.cwd());
}

export function runtimeFromYaml(yaml: string, metrics = new Metrics(false)): Runtime {
  return new Runtime(configFromYaml(yaml), TEST_CONFIG_SOURCE, { metrics });
}

export interface TestServer {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly metrics: Metrics;
  /** Closes the server, then the runtime (idempotent). */
  readonly close: () => Promise<void>;
}

export async function serverFromYaml(yaml: string): Promise<TestServer> {
  const metrics = new Metrics(false);
  const runtime = runtimeFromYaml(yaml, metrics);
  const app = await buildServer({ runtime, metrics, logger: createLogger('silent') });
  let closed = false;
  return {
    app,
    runtime,
    metrics,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
      await runtime.close();
    },
  };
}

/** The two static validators most tests use: `allow` (approve: true) and `deny` (approve: false). */
export const STATIC_ALLOW_DENY = `validators:
  - name: allow
    type: static
    approve: true
  - name: deny
    type: static
    approve: false
`;
