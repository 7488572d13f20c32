import { describe, expect, it } from 'vitest';
import { parseDockerConfig, registryKey } from '../../src/registry/index.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('parseDockerConfig', () => {
  it('reads auths as base64 user:password or username/password, keyed by registry host', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:pw:with:colons') },
          'registry.acme.io:5000': { username: 'ci', password: 'secret' },
          'https://Quay.IO': { identitytoken: 'refresh-token-only' },
        },
      }),
    );
    expect(config.auths.get('docker.io')).toEqual({ username: 'hub', password: 'pw:with:colons' });
    expect(config.auths.get('registry.acme.io:5000')).toEqual({ username: 'ci', password: 'secret' });
    // An identity token alone gives no basic credentials.
    expect(config.auths.has('quay.io')).toBe(false);
  });

  it('reads credHelpers and credsStore', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        credHelpers: { '123.dkr.ecr.eu-west-1.amazonaws.com': 'ecr-login' },
        credsStore: 'pass',
      }),
    );
    expect(config.credHelpers.get('123.dkr.ecr.eu-west-1.amazonaws.com')).toBe('ecr-login');
    expect(config.credsStore).toBe('pass');
  });

  it.each([
    ['not JSON', '{', 'expected JSON'],
    ['an array', '[]', 'expected a JSON object'],
    ['auth without a colon', JSON.stringify({ auths: { r: { auth: b64('nocolon') } } }), 'user:password'],
    ['a helper name with a path', JSON.stringify({ credHelpers: { r: '../../bin/sh' } }), 'helper name'],
    ['a non-object auths', JSON.stringify({ auths: 'x' }), 'auths: expected an object'],
  ])('refuses %s with a message that does not echo secrets', (_label, text, message) => {
    expect(() => parseDockerConfig(text)).toThrow(message);
  });
});

describe('registryKey', () => {
  it.each([
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['http://127.0.0.1:5000/', '127.0.0.1:5000'],
    ['GHCR.io', 'ghcr.io'],
  ])('%s → %s', (key, host) => expect(registryKey(key)).toBe(host));
});
