import { describe, expect, it } from 'vitest';

import { parseConfig } from '../../src/config/index.ts';
import { provenantErrorFrom, TEST_SOURCE } from './helpers.ts';
import { brokenSecretConfigs, secretConfig, SECRETS } from './secrets.ts';

describe('config problems', () => {
  it('loads the config that holds every secret when it is not broken', () => {
    expect(parseConfig(secretConfig(), TEST_SOURCE, '/').cache.hmacKey).toBe(SECRETS.hmacKey);
  });

  it.each(brokenSecretConfigs())('never quote a secret: %s', (_title, text) => {
    const err = provenantErrorFrom(() => parseConfig(text, TEST_SOURCE, '/'));
    expect(err.code).toBe('CONFIG_INVALID');
    for (const secret of Object.values(SECRETS)) expect(err.message).not.toContain(secret);
    // The number and the truncated key are secrets too, once broken.
    expect(err.message).not.toContain('1234567890987');
    expect(err.message).not.toContain(SECRETS.hmacKey.slice(0, 20));
  });

  it('point at a YAML syntax error by line and column', () => {
    const text = secretConfig().replace(`${SECRETS.registryPassword2} }`, SECRETS.registryPassword2);
    const err = provenantErrorFrom(() => parseConfig(text, TEST_SOURCE, '/'));
    expect(err.message).toMatch(/^config test\.yaml is not valid YAML:\n {2}- line \d+, column \d+: \S/);
  });

  it('point at an unknown field instead of naming it, listing the fields allowed there', () => {
    const text = secretConfig().replace('  hmacKey:', '  hmacKye: x\n  hmacKey:');
    expect(provenantErrorFrom(() => parseConfig(text, TEST_SOURCE, '/')).message).toContain(
      '/cache: unknown field at line 25, column 3 (allowed: ttlSeconds, negativeTtlSeconds, maxEntries, redis, hmacKey, hmacKeyFile, redisPasswordFile)',
    );
  });

  it('say which shapes a registry auth may take', () => {
    const text = secretConfig().replace('password:', 'token:');
    expect(provenantErrorFrom(() => parseConfig(text, TEST_SOURCE, '/')).message).toContain(
      '/registries/0/auth: expected exactly the fields of one of: username and password; dockerConfig; secret',
    );
  });
});

describe('cache key checks', () => {
  it('refuse a Redis cache without an HMAC key, and a key given twice', () => {
    const withoutKey = secretConfig().replace(/ {2}hmacKey: .*\n/, '');
    expect(provenantErrorFrom(() => parseConfig(withoutKey, TEST_SOURCE, '/')).message).toContain(
      '/cache: redis needs hmacKey or hmacKeyFile',
    );
    const both = secretConfig().replace('  hmacKey:', '  hmacKeyFile: /k\n  hmacKey:');
    expect(provenantErrorFrom(() => parseConfig(both, TEST_SOURCE, '/')).message).toContain(
      '/cache: expected exactly one of hmacKey or hmacKeyFile, found both',
    );
  });
});
