/**
 * A fresh process's first registry request pays for code that has never run: undici's request path and
 * the WebAssembly HTTP parser (llhttp) it compiles on its first connection. `provenant serve` pays it
 * before it listens, with one request to a throwaway server on loopback in this process (never to a
 * registry, so nothing leaves the machine and no egress rule is involved).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';

export async function warmUpHttpClient(): Promise<void> {
  const server = createServer((_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent = new Agent();
  try {
    const { port } = server.address() as AddressInfo;
    const res = await request(`http://127.0.0.1:${port}/v2/`, { dispatcher: agent });
    await res.body.text();
  } finally {
    await agent.close();
    await new Promise((resolve) => server.close(resolve));
  }
}
