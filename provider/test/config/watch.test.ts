import { pbkdf2 } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ConfigWatcher, type LoadedConfig } from '../../src/config/index.ts';
import type { ProvenantError } from '../../src/types/errors.ts';
import { makeTempDir } from './helpers.ts';

const POLL_INTERVAL_MS = 50;
// Long enough for the watcher's first stat, so a write is seen as a change rather than the baseline.
const SETTLE_MS = 4 * POLL_INTERVAL_MS;
const WAIT = { timeout: 5000, interval: 20 };
const THREAD_POOL_SIZE = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);
const pbkdf2Async = promisify(pbkdf2);

function configText(port: number, validator = 'default'): string {
  return `
validators:
  - name: default
    type: static
policy:
  - pattern: "*:*"
    validator: ${validator}
server:
  port: ${port}
`;
}

/**
 * Replaces the file in one step, as Kubernetes does when it swaps a mounted ConfigMap: the watcher
 * polls by stat, so an in-place rewrite could be seen half-written (truncated, then filled).
 */
async function replaceFile(path: string, text: string): Promise<void> {
  const next = `${path}.next`;
  await writeFile(next, text);
  await rename(next, path);
}

describe('ConfigWatcher', () => {
  let dir: string;
  let file: string;
  let watcher: ConfigWatcher | undefined;
  const onReload = vi.fn<(loaded: LoadedConfig) => void>();
  const onError = vi.fn<(error: ProvenantError) => void>();

  beforeEach(async () => {
    dir = await makeTempDir();
    file = join(dir, 'provenant.yaml');
    await writeFile(file, configText(8443));
    onReload.mockClear();
    onError.mockClear();
    watcher = new ConfigWatcher(file, { onReload, onError }, POLL_INTERVAL_MS);
    await sleep(SETTLE_MS);
  });

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a valid change with the new config', async () => {
    await replaceFile(file, configText(18443));
    await vi.waitFor(() => expect(onReload).toHaveBeenCalled(), WAIT);
    const loaded = onReload.mock.calls.at(-1)?.[0];
    expect(loaded?.config.server.port).toBe(18443);
    expect(loaded?.source).toBe(resolve(file));
    expect(onError).not.toHaveBeenCalled();
  });

  it('reports an invalid change as CONFIG_INVALID without reloading', async () => {
    await replaceFile(file, configText(8443, 'missing'));
    await vi.waitFor(() => expect(onError).toHaveBeenCalled(), WAIT);
    const error = onError.mock.calls.at(-1)?.[0];
    expect(error?.code).toBe('CONFIG_INVALID');
    expect(error?.message).toContain('/policy/0/validator: no validator named "missing"');
    expect(onReload).not.toHaveBeenCalled();
  });

  it('reloads again once a broken file is fixed', async () => {
    await replaceFile(file, 'validators: [\n');
    await vi.waitFor(() => expect(onError).toHaveBeenCalled(), WAIT);
    await replaceFile(file, configText(28443));
    await vi.waitFor(() => expect(onReload).toHaveBeenCalled(), WAIT);
    expect(onReload.mock.calls.at(-1)?.[0].config.server.port).toBe(28443);
  });

  it('reports a deleted file as CONFIG_UNREADABLE', async () => {
    await rm(file);
    await vi.waitFor(() => expect(onError).toHaveBeenCalled(), WAIT);
    expect(onError.mock.calls.at(-1)?.[0].code).toBe('CONFIG_UNREADABLE');
    expect(onReload).not.toHaveBeenCalled();
  });

  it('reports a change made before its first poll, as on a busy start', async () => {
    const early = vi.fn<(loaded: LoadedConfig) => void>();
    // Occupy every thread of libuv's pool, as a busy start does, so watchFile's own first stat waits
    // until after the write below: that stat takes the changed file as its baseline and never reports it.
    const busy = Array.from({ length: THREAD_POOL_SIZE }, () => pbkdf2Async('x', 'y', 300_000, 32, 'sha256'));
    // Another file: Node shares one stat poller per path, and this one's is already running.
    const other = join(dir, 'other.yaml');
    writeFileSync(other, configText(8443));
    const starting = new ConfigWatcher(other, { onReload: early, onError: vi.fn() }, POLL_INTERVAL_MS);
    writeFileSync(other, configText(9443));
    await Promise.all(busy);
    try {
      await vi.waitFor(() => expect(early).toHaveBeenCalledTimes(1), WAIT);
      expect(early.mock.calls[0]?.[0].config.server.port).toBe(9443);
    } finally {
      starting.close();
    }
  });

  it('reports nothing after it is closed', async () => {
    // A second watcher that stays open shows when the change has been seen. Node shares one stat poller
    // per path and calls listeners in the order they were added, so an open first watcher would have
    // reported the change (its settle timer started first) before this one does.
    const control = vi.fn<(loaded: LoadedConfig) => void>();
    const open = new ConfigWatcher(file, { onReload: control, onError: vi.fn() }, POLL_INTERVAL_MS);
    try {
      await sleep(SETTLE_MS);
      watcher?.close();
      await replaceFile(file, configText(18443));
      await vi.waitFor(() => expect(control).toHaveBeenCalled(), WAIT);
      expect(onReload).not.toHaveBeenCalled();
      expect(onError).not.toHaveBeenCalled();
    } finally {
      open.close();
    }
  });
});
