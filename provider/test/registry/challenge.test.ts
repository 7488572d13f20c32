import { describe, expect, it } from 'vitest';

import { parseChallenge } from '../../src/registry/index.ts';

describe('parseChallenge', () => {
  it("reads Docker Hub's bearer challenge", () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"';
    expect(parseChallenge(header)).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/nginx:pull',
      },
    });
  });

  it("reads GHCR's bearer challenge", () => {
    const header = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/app:pull"';
    expect(parseChallenge(header)).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:acme/app:pull' },
    });
  });

  it("reads Quay's bearer challenge without a scope", () => {
    expect(parseChallenge('Bearer realm="https://quay.io/v2/auth",service="quay.io"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://quay.io/v2/auth', service: 'quay.io' },
    });
  });

  it("reads distribution's basic challenge", () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({
      scheme: 'basic',
      params: { realm: 'Registry Realm' },
    });
  });

  it('keeps commas inside quoted values and accepts spaces between parameters', () => {
    const header =
      'Bearer realm="https://auth.test/token", scope="repository:a/b:pull,push" , service=auth.test';
    expect(parseChallenge(header)?.params).toEqual({
      realm: 'https://auth.test/token',
      scope: 'repository:a/b:pull,push',
      service: 'auth.test',
    });
  });

  it('lowercases the scheme and parameter names and unescapes quoted pairs', () => {
    expect(parseChallenge('BEARER Realm="say \\"hi\\"",SERVICE="s"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'say "hi"', service: 's' },
    });
  });

  it('reads the first challenge when several are listed', () => {
    expect(parseChallenge('Basic realm="first", Bearer realm="https://second.test/token"')).toEqual({
      scheme: 'basic',
      params: { realm: 'first' },
    });
  });

  it('reads a scheme without parameters as a challenge with none', () => {
    expect(parseChallenge('Bearer')).toEqual({ scheme: 'bearer', params: {} });
  });

  it.each([undefined, '', '   ', '123 realm="x"', '"Bearer"', '= realm', ',,,'])(
    'gives undefined for the garbage header %j',
    (header) => {
      expect(parseChallenge(header)).toBeUndefined();
    },
  );
});
