/**
 * A parse worker (see json-worker.ts): one document per message, answered with the task's bounded
 * result or the reason the document is unusable. Nothing here touches the network or the filesystem.
 */
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { boundedJson, UnusableJson, type ParseReply, type ParseTask } from './json-worker.ts';
import { shapeManifest } from './manifest.ts';

interface Request {
  readonly task: ParseTask;
  readonly bytes: Uint8Array;
  readonly arg: string | undefined;
}

function run({ task, bytes, arg }: Request): ParseReply {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    switch (task) {
      case 'manifest':
        return { ok: true, value: shapeManifest(text, arg) };
      case 'json':
        boundedJson(text);
        // The caller parses the document itself once it knows that is cheap: nothing to copy back.
        return { ok: true, value: undefined };
    }
  } catch (err) {
    if (err instanceof UnusableJson) return { ok: false, found: err.found };
    throw err;
  }
}

/**
 * The lowest scheduling priority for this thread only (Linux nice values are per thread): when CPU is
 * short, the event loop answering probes and small requests runs before a hostile document's parse.
 */
try {
  setPriority(19);
} catch {
  // Platforms without per-thread priorities parse at normal priority.
}

parentPort?.on('message', (request: Request) => parentPort?.postMessage(run(request)));
