/**
 * The benchmark's floor: a bare Node HTTPS server (same certificate, TLS 1.3) that does only what any
 * provider must: read the ProviderRequest, parse it, and answer every key with a fixed value. No
 * framework, no validation, no cache. `GET /stats` reports its event-loop delay p99 since the last call.
 *   node --import tsx test/bench/floor.ts PORT CERT KEY
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const [port, cert, key] = process.argv.slice(2) as [string, string, string];
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

const server = https.createServer(
  { cert: readFileSync(cert), key: readFileSync(key), minVersion: 'TLSv1.3', keepAliveTimeout: 60_000 },
  (req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      const eventLoopP99Ms = delay.percentile(99) / 1e6;
      delay.reset();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ eventLoopP99Ms }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { keys: string[] } };
      const items = body.request.keys.map((k) => ({ key: k, value: 'fixed', error: '' }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
          kind: 'ProviderResponse',
          response: { idempotent: true, items, systemError: '' },
        }),
      );
    });
  },
);
server.listen(Number(port), '127.0.0.1');
