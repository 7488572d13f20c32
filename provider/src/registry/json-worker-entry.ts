/**
 * A parse worker (see json-worker.ts): one document per message, answered with the task's bounded
 * result or the reason the document is unusable. Nothing here touches the network or the filesystem.
 */
import { parentPort } from 'node:worker_threads';
import {
  assertFewValues,
  MAX_JSON_VALUES,
  parseJson,
  UnusableJson,
  type ParseReply,
  type ParseTask,
} from './json-worker.ts';
import { MAX_MANIFEST_JSON_VALUES, shapeManifest } from './manifest.ts';

interface Request {
  readonly task: ParseTask;
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly arg: string | undefined;
}

type Outcome = { ok: true; value: unknown } | { ok: false; found: string };

function run({ task, bytes, arg }: Request): Outcome {
  const text = (): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    switch (task) {
      case 'manifest':
        assertFewValues(bytes, MAX_MANIFEST_JSON_VALUES);
        return { ok: true, value: shapeManifest(text(), arg) };
      case 'json':
        assertFewValues(bytes, MAX_JSON_VALUES);
        parseJson(text());
        // The caller parses the document itself once it knows that is cheap: nothing to copy back.
        return { ok: true, value: undefined };
    }
  } catch (err) {
    if (err instanceof UnusableJson) return { ok: false, found: err.found };
    throw err;
  }
}

/*
 * Parses run at normal priority. A niced thread starves whenever the machine is busy (a loaded node, a
 * CPU limit) and its parses then time out, failing admissions; the event loop is kept free by the parse
 * happening on this thread at all, not by its priority.
 */

parentPort?.on('message', (request: Request) => {
  const reply: ParseReply = { ...run(request), bytes: request.bytes };
  parentPort?.postMessage(reply, [request.bytes.buffer]);
});
