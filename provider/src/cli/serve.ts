/** `provenant serve`: the provider process. */
import { ConfigWatcher } from '../config/index.ts';
import { startServer } from '../http/index.ts';
import { Metrics, createLogger, type Logger } from '../observability/index.ts';
import { closeParseWorkers, warmUpHttpClient } from '../registry/index.ts';
import { Runtime } from '../service/index.ts';
import type { Parsed } from './args.ts';
import { loadConfig } from './load.ts';

/**
 * How the process is asked to stop. `requested` aborts at the first SIGTERM or SIGINT; `now` at SIGINT
 * (an operator's Ctrl-C) or a second signal, and cuts the drain short.
 */
export interface Shutdown {
  readonly requested: AbortSignal;
  readonly now: AbortSignal;
}

export async function serve(args: Parsed, shutdown: Shutdown): Promise<number> {
  const { config, source, warnings } = loadConfig(args.config);
  const logger = createLogger(config.log.level);
  for (const warning of warnings) logger.warn({ config: source }, warning);
  const metrics = new Metrics();
  const runtime = new Runtime(config, source, {
    metrics,
    warn: (message) => logger.warn(message),
    refreshPublicGood: true,
    sendAlerts: true,
    onSigstoreRefresh: (error) =>
      error === undefined
        ? logger.info('sigstore trusted root refreshed through TUF')
        : logger.warn(`sigstore TUF refresh failed, keeping the last good trusted root: ${error.message}`),
  });
  try {
    // Attestation policies compile before the first request is accepted: a broken one stops the start.
    await runtime.ready();
    runtime.verifier.warmUp();
    // A warm-up that cannot run (no loopback listener allowed, say) only leaves the first request slower.
    await warmUpHttpClient().catch((err: unknown) =>
      logger.debug(`HTTP client warm-up skipped: ${(err as Error).message}`),
    );
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const server = await startServer({
    runtime,
    metrics,
    logger,
    server: config.server,
    port: args.port,
  });
  const watcher =
    args.config === undefined
      ? undefined
      : new ConfigWatcher(args.config, {
          onReload: (loaded) => {
            for (const warning of loaded.warnings) logger.warn({ config: loaded.source }, warning);
            runtime.replace(loaded.config, loaded.source).then(
              () => {
                metrics.configReloads.inc({ result: 'ok' });
                logger.info(
                  { config: loaded.source },
                  'config reloaded (server, log and cache sections apply at restart)',
                );
              },
              (err: unknown) => {
                metrics.configReloads.inc({ result: 'error' });
                logger.error(
                  { code: (err as { code?: string }).code },
                  `config reload refused, keeping the last good config: ${(err as Error).message}`,
                );
              },
            );
          },
          onError: (error) => {
            metrics.configReloads.inc({ result: 'error' });
            logger.error(
              { code: error.code },
              `config reload refused, keeping the last good config: ${error.message}`,
            );
          },
        });
  process.stdout.write(
    `provenant listening on ${server.url}\n  config: ${source}\n  tls: ${server.tlsDescription}\n`,
  );
  await aborted(shutdown.requested);
  await drain(runtime, config.server.drainSeconds, shutdown.now, logger);
  watcher?.close();
  // The listener closes, open connections finish their requests; only then can the registry client and
  // caches close without failing a verification in flight.
  await server.close();
  await runtime.close();
  await closeParseWorkers();
  logger.info('stopped');
  return 0;
}

/**
 * Kubernetes removes a terminating pod from its Service endpoints while it sends SIGTERM, and clients
 * learn of it only later: for server.drainSeconds the replica reports not-ready but still answers every
 * request, in flight or arriving. Pair it with terminationGracePeriodSeconds above drainSeconds +
 * (bodyTimeoutMs + requestDeadlineMs) / 1000.
 */
async function drain(runtime: Runtime, seconds: number, now: AbortSignal, logger: Logger): Promise<void> {
  runtime.drain();
  if (now.aborted || seconds === 0) {
    logger.info('shutting down');
    return;
  }
  logger.info(`shutting down: not ready, still answering for ${seconds} s (server.drainSeconds)`);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => (timer = setTimeout(resolve, seconds * 1000))),
    aborted(now),
  ]);
  clearTimeout(timer);
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
