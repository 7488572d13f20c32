/** Debian's redis-server on loopback and an ephemeral port, without persistence. */
import { LOOPBACK_HOST, freePort, startProcess } from './process.ts';
import { toolPath } from './tools.ts';

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` (with `:password@` when started with one). */
  readonly url: string;
  output(): string;
  stop(): Promise<void>;
}

/** `port`: listen there (default: a free port), so a restarted Redis keeps its URL. */
export async function startRedis(opts: { password?: string; port?: number } = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const server = await startProcess({
    name: 'redis-server',
    command: toolPath('redis-server'),
    args: [
      '--bind',
      LOOPBACK_HOST,
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
      ...(opts.password === undefined ? [] : ['--requirepass', opts.password]),
    ],
    ready: { kind: 'tcp', host: LOOPBACK_HOST, port },
  });
  const auth = opts.password === undefined ? '' : `:${encodeURIComponent(opts.password)}@`;
  return {
    url: `redis://${auth}${LOOPBACK_HOST}:${port}`,
    output: () => server.output(),
    stop: () => server.stop(),
  };
}
