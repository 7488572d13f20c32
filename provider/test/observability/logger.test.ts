import { Writable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { secretConfig, SECRETS } from '../config/secrets.ts';

/** A logger writing into a string. */
function capture(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: createLogger('info', sink), text: () => text };
}

describe('logger', () => {
  const config = parseConfig(secretConfig(), 'logger test', '/');

  it.each([
    ['the whole config under a key', { config }],
    ['the whole config at the top level', { ...config }],
    ['the cache section', { cache: config.cache }],
    ['the registries list', { registries: config.registries }],
    ['one registry entry', { registry: config.registries[0] }],
    [
      'a request with credentials',
      { req: { headers: { authorization: `Basic ${SECRETS.registryPassword}` } } },
    ],
  ])('redacts the secrets of %s', (_title, fields) => {
    const { logger, text } = capture();
    logger.info(fields, 'logged');
    expect(text()).toContain('[redacted]');
    for (const secret of Object.values(SECRETS)) expect(text()).not.toContain(secret);
  });

  it('still logs what is not secret', () => {
    const { logger, text } = capture();
    logger.info({ config }, 'logged');
    expect(text()).toContain('registry.example');
    expect(text()).toContain('"ttlSeconds":30');
  });
});
