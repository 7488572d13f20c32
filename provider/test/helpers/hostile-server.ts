/**
 * A hand-built HTTP "registry" on 127.0.0.1 for faults no real registry produces on demand: slow
 * answers, 5xx and 429 bursts, oversized or endless bodies, stalls. Every request is recorded; close()
 * drops open (stalled) connections, so a test never waits on its own server.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { RegistryConfig } from '../../src/config/index.ts';
import { afterEach } from 'vitest';

import { OCI_MANIFEST } from '../../src/registry/index.ts';
import { ProvenantError } from '../../src/types/errors.ts';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
}

export type Handler = (req: IncomingMessage, res: ServerResponse, index: number) => void;

export interface HostileServer {
  /** `127.0.0.1:<port>`, the registry part of image references served here. */
  readonly host: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** A `registries:` entry for it (plain HTTP). */
  readonly registry: RegistryConfig;
  readonly close: () => Promise<void>;
}

export async function startHostileServer(handler: Handler): Promise<HostileServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const host = `127.0.0.1:${port}`;
  return {
    host,
    port,
    requests,
    registry: { host, insecure: true },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A small OCI image manifest, different for every `seed`. */
export function manifestBytes(seed: string): Buffer {
  const config = {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    size: 2,
    digest: sha256Digest(seed),
  };
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }));
}

/** Answers a manifest request (HEAD or GET) with the manifest and its Docker-Content-Digest. */
export function serveManifest(req: IncomingMessage, res: ServerResponse, manifest: Buffer): void {
  res.writeHead(200, {
    'content-type': OCI_MANIFEST,
    'content-length': manifest.length,
    'docker-content-digest': sha256Digest(manifest),
  });
  res.end(req.method === 'HEAD' ? undefined : manifest);
}

export interface Failure {
  readonly error: ProvenantError;
  readonly elapsedMs: number;
}

/** Runs `work`, which must fail with a ProvenantError, and says how long it took. */
export async function failureOf(work: () => Promise<unknown>): Promise<Failure> {
  const started = performance.now();
  try {
    await work();
  } catch (err) {
    if (!(err instanceof ProvenantError)) throw err;
    return { error: err, elapsedMs: performance.now() - started };
  }
  throw new Error('expected a ProvenantError, but the call succeeded');
}

/**
 * Hostile servers (and anything else registered with `onCleanup`) for one describe block, closed after
 * each test in reverse order.
 */
export function hostileServers(): {
  hostile: (handler: Handler) => Promise<HostileServer>;
  onCleanup: (cleanup: () => Promise<void>) => void;
} {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    hostile: async (handler) => {
      const server = await startHostileServer(handler);
      cleanups.push(server.close);
      return server;
    },
    onCleanup: (cleanup) => void cleanups.push(cleanup),
  };
}
