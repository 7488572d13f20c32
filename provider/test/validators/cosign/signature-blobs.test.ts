/**
 * Where cosign signatures are fetched from: a signature blob that would be slow to parse on the event
 * loop (too many JSON values) counts as broken content, and does not hide the signature next to it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../../src/reference/index.ts';
import { closeParseWorkers, OCI_MANIFEST, RegistryClient } from '../../../src/registry/index.ts';
import { MAX_JSON_VALUES } from '../../../src/registry/json-worker.ts';
import {
  ANNOTATION,
  fetchSignatures,
  SIMPLE_SIGNING_MEDIA_TYPE,
  signatureTag,
} from '../../../src/validators/cosign/signatures.ts';
import { hostileServers, sha256Digest } from '../../helpers/hostile-server.ts';

describe('fetchSignatures', () => {
  const { hostile, onCleanup } = hostileServers();
  afterAll(() => closeParseWorkers());

  it('skips a signature payload with too many JSON values, keeping the one next to it', async () => {
    const digest = sha256Digest('image');
    const flood = Buffer.from(`{"critical":{"x":[${'0,'.repeat(2 * MAX_JSON_VALUES)}0]}}`);
    const payload = Buffer.from(
      JSON.stringify({
        critical: { type: 'cosign container image signature', image: { 'docker-manifest-digest': digest } },
      }),
    );
    const layer = (blob: Buffer) => ({
      mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
      digest: sha256Digest(blob),
      size: blob.length,
      annotations: { [ANNOTATION.signature]: 'c2ln' },
    });
    const sig = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [layer(flood), layer(payload)] }),
    );
    const blobs = new Map([flood, payload].map((b) => [`/v2/app/blobs/${sha256Digest(b)}`, b]));
    const server = await hostile((req: IncomingMessage, res: ServerResponse) => {
      const body = req.url === `/v2/app/manifests/${signatureTag(digest)}` ? sig : blobs.get(req.url ?? '');
      if (body === undefined) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': body.length }).end(body);
    });
    const registry = new RegistryClient({
      registries: [server.registry],
      requestTimeoutMs: 5000,
      maxRetries: 0,
      maxManifestBytes: 1024 * 1024,
    });
    onCleanup(() => registry.close());

    const found = await fetchSignatures(
      registry,
      parseReference(`${server.host}/app:v1`),
      digest,
      AbortSignal.timeout(10_000),
    );
    expect(found.items.map((s) => s.source)).toEqual([`${signatureTag(digest)} layer 1`]);
  });
});
