/** `provenant serve`: the provider process. */
import { ConfigWatcher } from '../config/index.ts';
import { startServer } from '../http/index.ts';
import { Metrics, createLogger } from '../observability/index.ts';
import { closeParseWorkers } from '../registry/index.ts';
import { Runtime } from '../service/index.ts';
import type { Parsed } from './args.ts';
import { loadConfig } from './load.ts';

export async function serve(args: Parsed, signal: AbortSignal): Promise<number> {
  const { config, source } = loadConfig(args.config);
  const logger = createLogger(config.log.level);
  const metrics = new Metrics();
  const runtime = new Runtime(config, source, {
    metrics,
    warn: (message) => logger.warn(message),
    refreshPublicGood: true,
    onSigstoreRefresh: (error) =>
      error === undefined
        ? logger.info('sigstore trusted root refreshed through TUF')
        : logger.warn(`sigstore TUF refresh failed, keeping the last good trusted root: ${error.message}`),
  });
  try {
    // Attestation policies compile before the first request is accepted: a broken one stops the start.
    await runtime.ready();
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const server = await startServer({
    runtime,
    metrics,
    logger,
    host: config.server.host,
    port: args.port ?? config.server.port,
    tls: config.server.tls,
  });
  const watcher =
    args.config === undefined
      ? undefined
      : new ConfigWatcher(args.config, {
          onReload: (loaded) => {
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
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  logger.info('shutting down');
  watcher?.close();
  await runtime.close();
  await server.close();
  await closeParseWorkers();
  return 0;
}
