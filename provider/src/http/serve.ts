/** Listening over HTTPS, with the serving certificate reloaded from disk when it rotates. */
import { unwatchFile, watchFile } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { TokenReviewer } from '../auth/index.ts';
import type { Config } from '../config/index.ts';
import type { Logger, Metrics } from '../observability/index.ts';
import type { Runtime } from '../service/index.ts';
import { toProvenantError } from '../types/errors.ts';
import { buildServer } from './app.ts';
import { servingTls, type CertificateExpiries } from './tls.ts';

export const CERT_POLL_INTERVAL_MS = 1000;

export interface RunningServer {
  readonly url: string;
  readonly tlsDescription: string;
  /**
   * Stops accepting connections, closes idle ones and answers the requests on open ones (each answer
   * closes its connection); connections still open after server.bodyTimeoutMs + server.requestDeadlineMs
   * (a client that never reads its answer) are dropped.
   */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly runtime: Runtime;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly server: Config['server'];
  /** --port, overriding server.port. */
  readonly port?: number | undefined;
  /** Reviews Kyverno's tokens (server.auth.kyverno); default: the Kubernetes API's TokenReview. */
  readonly tokenReviewer?: TokenReviewer | undefined;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const { host } = opts.server;
  const tls = servingTls(opts.server);
  recordExpiries(opts.metrics, tls.expiries);
  const app = await buildServer({
    runtime: opts.runtime,
    metrics: opts.metrics,
    logger: opts.logger,
    https: tls.options,
    clientCertificates: tls.clientCertificateRequired,
    tokenReviewer: opts.tokenReviewer,
    warmUp: true,
  });
  await app.listen({ host, port: opts.port ?? opts.server.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.server.port;
  const server = app.server as HttpsServer;
  const reload = (): void => {
    try {
      const { context, expiries } = tls.reload();
      server.setSecureContext({ ...tls.options, ...context });
      recordExpiries(opts.metrics, expiries);
      opts.logger.info({ files: tls.files }, 'serving certificate reloaded');
    } catch (err) {
      const error = toProvenantError(err);
      opts.logger.error({ code: error.code }, `keeping the previous serving certificate: ${error.message}`);
    }
  };
  for (const file of tls.files)
    watchFile(file, { interval: CERT_POLL_INTERVAL_MS, persistent: false }, reload);
  const closeGraceMs = opts.server.bodyTimeoutMs + opts.server.requestDeadlineMs;
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tlsDescription: tls.description,
    close: async () => {
      for (const file of tls.files) unwatchFile(file, reload);
      const force = setTimeout(() => server.closeAllConnections(), closeGraceMs);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
    },
  };
}

/** provenant_tls_certificate_expiry_timestamp_seconds follows the certificates actually served. */
function recordExpiries(metrics: Metrics, expiries: CertificateExpiries): void {
  for (const { certificate, notAfterSeconds } of expiries)
    metrics.tlsCertificateExpiry.set({ certificate }, notAfterSeconds);
}
