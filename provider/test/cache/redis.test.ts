import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { cacheHmacKey, MIN_HMAC_KEY_BYTES } from '../../src/cache/index.ts';
import { ProvenantError } from '../../src/types/errors.ts';

const KEY = 'k'.repeat(MIN_HMAC_KEY_BYTES - 1) + 'Z';

function thrown(action: () => unknown): ProvenantError {
  try {
    action();
  } catch (err) {
    if (err instanceof ProvenantError) return err;
    throw err;
  }
  throw new Error('nothing was thrown');
}

describe('cache HMAC key', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'provenant-hmac-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is taken from cache.hmacKey', () => {
    expect(cacheHmacKey({ hmacKey: KEY }).toString()).toBe(KEY);
  });

  it('is read from cache.hmacKeyFile, without the trailing newline a mounted Secret may carry', async () => {
    const file = join(dir, 'key');
    await writeFile(file, `${KEY}\n`);
    expect(cacheHmacKey({ hmacKeyFile: file }).toString()).toBe(KEY);
  });

  it('refuses a key shorter than 32 bytes without quoting it', async () => {
    const file = join(dir, 'short');
    await writeFile(file, 'short-secret-key');
    const error = thrown(() => cacheHmacKey({ hmacKeyFile: file }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('holds 16 bytes: expected at least 32');
    expect(error.message).not.toContain('short-secret-key');
  });

  it('reports an unreadable key file as CONFIG_UNREADABLE', () => {
    const error = thrown(() => cacheHmacKey({ hmacKeyFile: join(dir, 'missing') }));
    expect(error.code).toBe('CONFIG_UNREADABLE');
    expect(error.message).toContain('ENOENT');
  });
});
