import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import {
  normalizedPinned,
  parseReference,
  pinnedReference,
  registryApiHost,
} from '../../src/reference/index.ts';
import { ProvenantError } from '../../src/types/errors.ts';

/** A real-looking digest of the given text, so tables read as names rather than hex. */
function sha256(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

function sha512(text: string): string {
  return `sha512:${createHash('sha512').update(text).digest('hex')}`;
}

const D = sha256('image');
const OLD = sha256('old image');
const NEW = sha256('new image');
const D512 = sha512('image');
const HEX64 = D.slice('sha256:'.length);

/** Runs `action` and returns what it threw, failing the test when it throws nothing. */
function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (err) {
    return err;
  }
  throw new Error('expected a ProvenantError, but nothing was thrown');
}

interface ValidCase {
  readonly input: string;
  readonly registry: string;
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  readonly hadTag: boolean;
  readonly normalized: string;
}

function valid(
  input: string,
  registry: string,
  repository: string,
  tag: string | undefined,
  digest: string | undefined,
  hadTag: boolean,
  normalized: string,
): ValidCase {
  return { input, registry, repository, tag, digest, hadTag, normalized };
}

const LONG_TAG = `v${'1'.repeat(127)}`;
// 255 characters once normalised (docker.io/ added): the longest name distribution allows.
const LONGEST_NAME = `team/${'a'.repeat(240)}`;

const VALID_CASES: readonly ValidCase[] = [
  // Docker Hub without a registry: official images get `library/`, the tag defaults to `latest`.
  valid('nginx', 'docker.io', 'library/nginx', 'latest', undefined, false, 'docker.io/library/nginx:latest'),
  valid('nginx:1.25', 'docker.io', 'library/nginx', '1.25', undefined, true, 'docker.io/library/nginx:1.25'),
  valid(
    'nginx:latest',
    'docker.io',
    'library/nginx',
    'latest',
    undefined,
    true,
    'docker.io/library/nginx:latest',
  ),
  valid(
    'test-image',
    'docker.io',
    'library/test-image',
    'latest',
    undefined,
    false,
    'docker.io/library/test-image:latest',
  ),
  valid(
    'library/nginx',
    'docker.io',
    'library/nginx',
    'latest',
    undefined,
    false,
    'docker.io/library/nginx:latest',
  ),
  valid('team/app:v1', 'docker.io', 'team/app', 'v1', undefined, true, 'docker.io/team/app:v1'),
  valid(
    'path/to/repo/image:tag',
    'docker.io',
    'path/to/repo/image',
    'tag',
    undefined,
    true,
    'docker.io/path/to/repo/image:tag',
  ),
  valid('0/1', 'docker.io', '0/1', 'latest', undefined, false, 'docker.io/0/1:latest'),
  // Docker Hub's aliases all become `docker.io`.
  valid(
    'docker.io/nginx',
    'docker.io',
    'library/nginx',
    'latest',
    undefined,
    false,
    'docker.io/library/nginx:latest',
  ),
  valid(
    'docker.io/library/nginx',
    'docker.io',
    'library/nginx',
    'latest',
    undefined,
    false,
    'docker.io/library/nginx:latest',
  ),
  valid('docker.io/team/app:v1', 'docker.io', 'team/app', 'v1', undefined, true, 'docker.io/team/app:v1'),
  valid(
    'index.docker.io/library/nginx',
    'docker.io',
    'library/nginx',
    'latest',
    undefined,
    false,
    'docker.io/library/nginx:latest',
  ),
  valid(
    'index.docker.io/nginx:1',
    'docker.io',
    'library/nginx',
    '1',
    undefined,
    true,
    'docker.io/library/nginx:1',
  ),
  valid('registry-1.docker.io/x/y:1', 'docker.io', 'x/y', '1', undefined, true, 'docker.io/x/y:1'),
  valid(
    'DOCKER.IO/nginx',
    'docker.io',
    'library/nginx',
    'latest',
    undefined,
    false,
    'docker.io/library/nginx:latest',
  ),
  // Connaisseur §5: only '.' or ':' marks a registry, so bare `localhost` is a Docker Hub namespace.
  valid(
    'localhost/x',
    'docker.io',
    'localhost/x',
    'latest',
    undefined,
    false,
    'docker.io/localhost/x:latest',
  ),
  valid(
    'localhost',
    'docker.io',
    'library/localhost',
    'latest',
    undefined,
    false,
    'docker.io/library/localhost:latest',
  ),
  valid('localhost:5000/x', 'localhost:5000', 'x', 'latest', undefined, false, 'localhost:5000/x:latest'),
  valid('localhost:5000/app@' + D, 'localhost:5000', 'app', undefined, D, false, `localhost:5000/app@${D}`),
  // A lone `host:port` has no '/', so Docker reads it as a Hub repository with a tag.
  valid(
    'registry.io:8080',
    'docker.io',
    'library/registry.io',
    '8080',
    undefined,
    true,
    'docker.io/library/registry.io:8080',
  ),
  valid(
    'foo.bar',
    'docker.io',
    'library/foo.bar',
    'latest',
    undefined,
    false,
    'docker.io/library/foo.bar:latest',
  ),
  // Other registries keep host and port; only the host is lowercased, and no `library/` is added.
  valid(
    'registry.io:8080/p/i:tag',
    'registry.io:8080',
    'p/i',
    'tag',
    undefined,
    true,
    'registry.io:8080/p/i:tag',
  ),
  valid('registry.io/nginx', 'registry.io', 'nginx', 'latest', undefined, false, 'registry.io/nginx:latest'),
  valid(
    'registry.io/a/b/c/d/e/f',
    'registry.io',
    'a/b/c/d/e/f',
    'latest',
    undefined,
    false,
    'registry.io/a/b/c/d/e/f:latest',
  ),
  valid(
    'Registry.Example.COM/team/app',
    'registry.example.com',
    'team/app',
    'latest',
    undefined,
    false,
    'registry.example.com/team/app:latest',
  ),
  valid(
    'my-registry.example.com:65535/a/b',
    'my-registry.example.com:65535',
    'a/b',
    'latest',
    undefined,
    false,
    'my-registry.example.com:65535/a/b:latest',
  ),
  valid('registry.io:1/a', 'registry.io:1', 'a', 'latest', undefined, false, 'registry.io:1/a:latest'),
  valid('ghcr.io/org/app:1.0.0', 'ghcr.io', 'org/app', '1.0.0', undefined, true, 'ghcr.io/org/app:1.0.0'),
  valid(
    'gcr.io/distroless/static:nonroot',
    'gcr.io',
    'distroless/static',
    'nonroot',
    undefined,
    true,
    'gcr.io/distroless/static:nonroot',
  ),
  valid(
    'mcr.microsoft.com/dotnet/runtime:8.0',
    'mcr.microsoft.com',
    'dotnet/runtime',
    '8.0',
    undefined,
    true,
    'mcr.microsoft.com/dotnet/runtime:8.0',
  ),
  valid(
    '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1',
    '123456789012.dkr.ecr.us-east-1.amazonaws.com',
    'app',
    '1',
    undefined,
    true,
    '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1',
  ),
  // IP addresses.
  valid(
    '127.0.0.1:5000/team/app:v1',
    '127.0.0.1:5000',
    'team/app',
    'v1',
    undefined,
    true,
    '127.0.0.1:5000/team/app:v1',
  ),
  valid('10.0.0.1/app', '10.0.0.1', 'app', 'latest', undefined, false, '10.0.0.1/app:latest'),
  // Case is the one difference in spelling that is folded rather than refused.
  valid(
    'REGISTRY.IO:5000/app',
    'registry.io:5000',
    'app',
    'latest',
    undefined,
    false,
    'registry.io:5000/app:latest',
  ),
  valid('0.example.com/app', '0.example.com', 'app', 'latest', undefined, false, '0.example.com/app:latest'),
  valid('[::1]:5000/app:v1', '[::1]:5000', 'app', 'v1', undefined, true, '[::1]:5000/app:v1'),
  valid(
    '[2001:db8::1]/team/app',
    '[2001:db8::1]',
    'team/app',
    'latest',
    undefined,
    false,
    '[2001:db8::1]/team/app:latest',
  ),
  valid(
    '[2001:DB8::1]:5000/app',
    '[2001:db8::1]:5000',
    'app',
    'latest',
    undefined,
    false,
    '[2001:db8::1]:5000/app:latest',
  ),
  // Digests: digest-only references stay tagless; `name:tag@digest` keeps both.
  valid(`nginx@${D}`, 'docker.io', 'library/nginx', undefined, D, false, `docker.io/library/nginx@${D}`),
  valid(
    `nginx:1.25@${D}`,
    'docker.io',
    'library/nginx',
    '1.25',
    D,
    true,
    `docker.io/library/nginx:1.25@${D}`,
  ),
  valid(
    `nginx@${D512}`,
    'docker.io',
    'library/nginx',
    undefined,
    D512,
    false,
    `docker.io/library/nginx@${D512}`,
  ),
  valid(`quay.io/org/app@${D}`, 'quay.io', 'org/app', undefined, D, false, `quay.io/org/app@${D}`),
  valid(`quay.io/org/app:v1@${D}`, 'quay.io', 'org/app', 'v1', D, true, `quay.io/org/app:v1@${D}`),
  valid(
    `sub.registry.io:5000/ns/app:1@${D}`,
    'sub.registry.io:5000',
    'ns/app',
    '1',
    D,
    true,
    `sub.registry.io:5000/ns/app:1@${D}`,
  ),
  valid(
    `index.docker.io/team/app:v1@${D}`,
    'docker.io',
    'team/app',
    'v1',
    D,
    true,
    `docker.io/team/app:v1@${D}`,
  ),
  // Repository separators and tag characters at the edges of the grammar.
  valid(
    'a__b/c_d/e.f/g-h---i',
    'docker.io',
    'a__b/c_d/e.f/g-h---i',
    'latest',
    undefined,
    false,
    'docker.io/a__b/c_d/e.f/g-h---i:latest',
  ),
  valid(
    'app:V1.0_rc-1',
    'docker.io',
    'library/app',
    'V1.0_rc-1',
    undefined,
    true,
    'docker.io/library/app:V1.0_rc-1',
  ),
  valid(
    'app:_underscore',
    'docker.io',
    'library/app',
    '_underscore',
    undefined,
    true,
    'docker.io/library/app:_underscore',
  ),
  valid(
    `app:${LONG_TAG}`,
    'docker.io',
    'library/app',
    LONG_TAG,
    undefined,
    true,
    `docker.io/library/app:${LONG_TAG}`,
  ),
  valid(
    LONGEST_NAME,
    'docker.io',
    LONGEST_NAME,
    'latest',
    undefined,
    false,
    `docker.io/${LONGEST_NAME}:latest`,
  ),
];

interface InvalidCase {
  readonly input: string;
  /** A fragment of the message showing which rule fired. */
  readonly says: string;
}

const INVALID_CASES: readonly InvalidCase[] = [
  // Empty names and components.
  { input: '', says: 'found an empty string' },
  { input: ':', says: 'expected a tag' },
  { input: '@', says: 'expected a digest' },
  { input: '/', says: "separated by single '/'" },
  { input: ':tag', says: 'expected an image name' },
  { input: `@${D}`, says: 'expected an image name' },
  { input: '/nginx', says: "separated by single '/'" },
  { input: 'nginx/', says: "separated by single '/'" },
  { input: 'team//app', says: "separated by single '/'" },
  { input: 'registry.io//app', says: "separated by single '/'" },
  { input: 'registry.io/', says: "separated by single '/'" },
  { input: 'docker.io/', says: "separated by single '/'" },
  // Whitespace and control characters, which could also forge log lines.
  { input: ' ', says: 'found U+0020 at index 0' },
  { input: ' nginx', says: 'found U+0020 at index 0' },
  { input: 'nginx ', says: 'found U+0020 at index 5' },
  { input: 'ngi nx', says: 'found U+0020 at index 3' },
  { input: 'nginx\n', says: 'found U+000A' },
  { input: 'nginx\t:1', says: 'found U+0009' },
  { input: 'nginx\u0000', says: 'found U+0000' },
  { input: 'nginx\u007f', says: 'found U+007F' },
  { input: 'nginx\u0085', says: 'found U+0085' },
  { input: 'nginx\u00a0', says: 'found U+00A0' },
  // URLs instead of references.
  { input: 'https://registry.io/app', says: 'found "https://"' },
  { input: 'http://nginx', says: 'found "http://"' },
  { input: 'docker://nginx:1', says: 'found "docker://"' },
  // Uppercase or malformed repository components.
  { input: 'Nginx:1', says: "repository must be lowercase [a-z0-9] separated by '.', '_', '__', '-' or '/'" },
  { input: 'library/NGINX', says: 'found "library/NGINX"' },
  { input: 'registry.io/team/App', says: 'found "team/App"' },
  { input: 'MyRegistry/app', says: 'found "MyRegistry/app"' },
  { input: 'a___b', says: 'repository must be' },
  { input: 'a..b', says: 'repository must be' },
  { input: 'a._b', says: 'repository must be' },
  { input: '_app', says: 'repository must be' },
  { input: '-app', says: 'repository must be' },
  { input: 'app-', says: 'repository must be' },
  { input: 'app.', says: 'repository must be' },
  { input: 'team/-app', says: 'repository must be' },
  { input: 'ngïnx', says: 'repository must be' },
  { input: '*', says: 'repository must be' },
  { input: 'registry.io/app:tag:extra', says: 'found "app:tag"' },
  { input: 'a'.repeat(256), says: 'expected a name of at most 255 characters, found 256' },
  // Found by the property tests: short enough as written, too long once normalised, so the normal form
  // would not parse again (distribution's ParseNormalizedNamed refuses it too).
  { input: `team/${'a'.repeat(241)}`, says: 'of at most 255 characters, found 256' },
  { input: '0'.repeat(238), says: 'of at most 255 characters, found 256' },
  // Tags.
  { input: 'nginx:', says: 'found ""' },
  { input: `nginx:1.25@`, says: 'expected a digest' },
  { input: `nginx:${'a'.repeat(129)}`, says: 'expected a tag of 1 to 128' },
  { input: 'nginx:.hidden', says: 'found ".hidden"' },
  { input: 'nginx:-x', says: 'found "-x"' },
  { input: 'nginx:v1+build', says: 'found "v1+build"' },
  { input: 'nginx:1.0é', says: 'expected a tag' },
  { input: 'nginx:*', says: 'expected a tag' },
  // Digests.
  { input: 'nginx@', says: 'found ""' },
  { input: `nginx@@${D}`, says: "expected at most one '@', found 2" },
  { input: `nginx@${D}@${D}`, says: "expected at most one '@', found 2" },
  { input: 'nginx@sha256:', says: 'found "sha256:"' },
  { input: `nginx@sha256:${HEX64.toUpperCase()}`, says: 'sha256:<64 lowercase hex>' },
  { input: `nginx@sha256:${HEX64.slice(1)}`, says: 'sha256:<64 lowercase hex>' },
  { input: `nginx@sha256:${HEX64}0`, says: 'sha256:<64 lowercase hex>' },
  { input: `nginx@sha256:${'g'.repeat(64)}`, says: 'sha256:<64 lowercase hex>' },
  { input: `nginx@sha512:${HEX64}`, says: 'sha512:<128 lowercase hex>' },
  { input: `nginx@md5:${HEX64.slice(32)}`, says: 'found "md5:' },
  { input: `nginx@SHA256:${HEX64}`, says: 'found "SHA256:' },
  { input: `nginx@${HEX64}`, says: 'expected a digest' },
  { input: `nginx@:${HEX64}`, says: 'expected a digest' },
  { input: `nginx@constructor:${HEX64}`, says: 'expected a digest' },
  // Registry hosts.
  { input: '-registry.io/app', says: 'found "-registry.io"' },
  { input: 'registry-.io/app', says: 'found "registry-.io"' },
  { input: 'reg_istry.io/app', says: 'found "reg_istry.io"' },
  { input: 'registry..io/app', says: 'found "registry..io"' },
  { input: '.registry.io/app', says: 'found ".registry.io"' },
  { input: '[::1/app', says: 'bracketed IPv6 address' },
  { input: '[zz::1]:5000/app', says: 'found "[zz::1]"' },
  { input: '[fe80::1%eth0]:5000/app', says: 'found "[fe80::1%eth0]"' },
  { input: '[::ffff:1.2.3.4]/app', says: 'found "[::ffff:1.2.3.4]"' },
  { input: '::1/app', says: 'found ""' },
  // Registry ports.
  { input: 'registry.io:0/app', says: 'expected a registry port from 1 to 65535, found "0"' },
  { input: 'registry.io:65536/app', says: 'found "65536"' },
  { input: 'registry.io:port/app', says: 'found "port"' },
  { input: 'registry.io:/app', says: 'found ""' },
  { input: 'registry.io:-1/app', says: 'found "-1"' },
  { input: 'registry.io:80:80/app', says: 'found "80:80"' },
  { input: '[::1]:0/app', says: 'found "0"' },
  { input: 'nginx:v1/x', says: 'found "v1"' },
  // Other spellings of one address are refused: a rule for the canonical spelling must see every image.
  { input: '2130706433:5000/x', says: 'dotted-decimal form, found "2130706433" (write 127.0.0.1)' },
  { input: '127.1:5000/x', says: 'found "127.1" (write 127.0.0.1)' },
  { input: '0x7f.0.0.1:5000/x', says: 'found "0x7f.0.0.1" (write 127.0.0.1)' },
  { input: '0X7F.0.0.1:5000/x', says: 'found "0X7F.0.0.1" (write 127.0.0.1)' },
  { input: '0177.0.0.1:5000/x', says: 'found "0177.0.0.1" (write 127.0.0.1)' },
  { input: '127.000.000.001:5000/x', says: 'found "127.000.000.001" (write 127.0.0.1)' },
  { input: '169.254.43518:80/x', says: 'found "169.254.43518" (write 169.254.169.254)' },
  { input: '256.0.0.1/x', says: '(neither a hostname nor an IPv4 address)' },
  { input: 'registry.1/x', says: '(neither a hostname nor an IPv4 address)' },
  { input: 'registry.io.:5000/x', says: 'found "registry.io."' },
  { input: 'localhost.:5000/x', says: 'found "localhost."' },
  { input: '[0:0::1]:5000/x', says: 'RFC 5952 form, found "[0:0::1]" (write [::1])' },
  { input: '[0:0:0:0:0:0:0:1]:5000/x', says: '(write [::1])' },
  { input: '[2001:db8:0:0:0:0:0:1]/x', says: '(write [2001:db8::1])' },
  { input: '[2001:0db8::1]/x', says: '(write [2001:db8::1])' },
  {
    input: '[::ffff:7f00:1]:5000/x',
    says: 'IPv4 address written as one, found "[::ffff:7f00:1]" (write 127.0.0.1)',
  },
  { input: '[::FFFF:7F00:1]:5000/x', says: '(write 127.0.0.1)' },
  { input: '127.0.0.1:05000/x', says: 'without leading zeros, found "05000"' },
  { input: 'registry.io:0443/x', says: 'without leading zeros, found "0443"' },
  { input: 'registry.io:00/x', says: 'found "00"' },
  { input: 'registry.io:99999/x', says: 'found "99999"' },
  { input: 'registry.io:443/x', says: 'expected no default port (443 or 80) in the registry, found "443"' },
  { input: '127.0.0.1:80/x', says: 'found "80"' },
];

describe('parseReference', () => {
  it('hands out the same frozen reference for an input it parsed lately, and refuses a bad one every time', () => {
    const first = parseReference('registry.example/team/app:1.0');
    expect(parseReference('registry.example/team/app:1.0')).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    for (let i = 0; i < 2; i++)
      expect(() => parseReference('registry.example/Team/app:1.0')).toThrow(
        /REFERENCE_INVALID|repository must be/,
      );
  });

  it.each(VALID_CASES)('normalises $input to $normalized', (c) => {
    expect(parseReference(c.input)).toEqual({
      original: c.input,
      registry: c.registry,
      repository: c.repository,
      tag: c.tag,
      digest: c.digest,
      hadTag: c.hadTag,
      name: `${c.registry}/${c.repository}`,
      normalized: c.normalized,
    });
  });

  it.each(INVALID_CASES)('rejects $input because the message says $says', ({ input, says }) => {
    const err = thrownBy(() => parseReference(input));
    expect(err).toBeInstanceOf(ProvenantError);
    expect(err).toMatchObject({ code: 'REFERENCE_INVALID', image: input });
    const { message } = err as ProvenantError;
    expect(message).toContain(`invalid image reference ${JSON.stringify(input)}: `);
    expect(message).toContain(says);
  });

  it.each([
    { value: 42, type: 'number' },
    { value: null, type: 'null' },
    { value: undefined, type: 'undefined' },
    { value: { image: 'nginx' }, type: 'object' },
    { value: ['nginx'], type: 'an array' },
  ])('rejects a $type at runtime with the same error type', ({ value, type }) => {
    const err = thrownBy(() => parseReference(value as unknown as string));
    expect(err).toBeInstanceOf(ProvenantError);
    expect(err).toMatchObject({
      code: 'REFERENCE_INVALID',
      message: `invalid image reference: expected a string, found ${type}`,
    });
  });

  it('rejects input longer than 1024 characters, quoting only its start', () => {
    const input = `registry.io/${'a'.repeat(2000)}`;
    const err = thrownBy(() => parseReference(input));
    expect(err).toBeInstanceOf(ProvenantError);
    expect(err).toMatchObject({ code: 'REFERENCE_INVALID', image: input });
    const { message } = err as ProvenantError;
    expect(message).toContain(`invalid image reference "${input.slice(0, 64)}…"`);
    expect(message).toContain('expected at most 1024 characters, found 2012');
    expect(message.length).toBeLessThan(200);
  });

  it('escapes control characters when it quotes the input', () => {
    const err = thrownBy(() => parseReference('nginx\nlevel=info msg=forged'));
    expect((err as ProvenantError).message).toContain('"nginx\\nlevel=info msg=forged"');
    expect((err as ProvenantError).message).not.toContain('\n');
  });

  it('returns a frozen reference', () => {
    expect(Object.isFrozen(parseReference('nginx'))).toBe(true);
  });
});

describe('pinnedReference', () => {
  it.each([
    { input: 'nginx', digest: D, pinned: `nginx@${D}` },
    { input: 'nginx:1.25', digest: D, pinned: `nginx:1.25@${D}` },
    { input: 'docker.io/library/nginx:1.25', digest: D, pinned: `docker.io/library/nginx:1.25@${D}` },
    { input: 'Registry.IO/team/app:T', digest: D, pinned: `Registry.IO/team/app:T@${D}` },
    { input: 'localhost:5000/app:v1', digest: D, pinned: `localhost:5000/app:v1@${D}` },
    { input: '[::1]:5000/app', digest: D, pinned: `[::1]:5000/app@${D}` },
    { input: `a/b:t@${OLD}`, digest: NEW, pinned: `a/b:t@${NEW}` },
    { input: `nginx@${OLD}`, digest: NEW, pinned: `nginx@${NEW}` },
    { input: `nginx:1.25@${D}`, digest: D, pinned: `nginx:1.25@${D}` },
    { input: 'nginx:1.25', digest: D512, pinned: `nginx:1.25@${D512}` },
  ])("pins $input to a digest keeping the user's spelling", ({ input, digest, pinned }) => {
    expect(pinnedReference(parseReference(input), digest)).toBe(pinned);
  });

  it('leaves a reference already pinned to the digest unchanged', () => {
    const input = `ghcr.io/org/app:v1@${D}`;
    expect(pinnedReference(parseReference(input), D)).toBe(input);
  });
});

describe('normalizedPinned', () => {
  it.each([
    { input: 'nginx', digest: D, pinned: `docker.io/library/nginx:latest@${D}` },
    { input: 'nginx:1.25', digest: D, pinned: `docker.io/library/nginx:1.25@${D}` },
    { input: `nginx@${OLD}`, digest: NEW, pinned: `docker.io/library/nginx@${NEW}` },
    { input: `index.docker.io/team/app:v1@${OLD}`, digest: NEW, pinned: `docker.io/team/app:v1@${NEW}` },
    { input: `localhost:5000/app@${OLD}`, digest: NEW, pinned: `localhost:5000/app@${NEW}` },
    { input: 'Registry.IO:5000/app:v1', digest: D, pinned: `registry.io:5000/app:v1@${D}` },
    { input: 'quay.io/org/app', digest: D512, pinned: `quay.io/org/app:latest@${D512}` },
  ])('pins the normalised form of $input', ({ input, digest, pinned }) => {
    expect(normalizedPinned(parseReference(input), digest)).toBe(pinned);
  });
});

describe('pinning to an invalid digest', () => {
  const pinners = [
    { pin: pinnedReference, fn: 'pinnedReference' },
    { pin: normalizedPinned, fn: 'normalizedPinned' },
  ];
  const digests = ['', 'latest', 'sha256:abc', `sha256:${HEX64.toUpperCase()}`, `md5:${HEX64}`];
  it.each(pinners.flatMap((p) => digests.map((digest) => ({ ...p, digest }))))(
    '$fn rejects the digest $digest',
    ({ pin, digest }) => {
      const err = thrownBy(() => pin(parseReference('nginx:1'), digest));
      expect(err).toBeInstanceOf(ProvenantError);
      expect(err).toMatchObject({ code: 'REFERENCE_INVALID', image: 'nginx:1' });
      expect((err as ProvenantError).message).toBe(
        `cannot pin image reference "nginx:1": expected a digest sha256:<64 lowercase hex> or sha512:<128 lowercase hex>, found ${JSON.stringify(digest)}`,
      );
    },
  );
});

describe('registryApiHost', () => {
  it.each([
    { registry: 'docker.io', host: 'registry-1.docker.io' },
    { registry: 'ghcr.io', host: 'ghcr.io' },
    { registry: 'localhost:5000', host: 'localhost:5000' },
    { registry: '127.0.0.1:5000', host: '127.0.0.1:5000' },
    { registry: '[::1]:5000', host: '[::1]:5000' },
  ])('contacts $host for $registry', ({ registry, host }) => {
    expect(registryApiHost(registry)).toBe(host);
  });

  it.each(['nginx', 'index.docker.io/library/nginx', 'registry-1.docker.io/x/y:1'])(
    'contacts registry-1.docker.io for the Docker Hub image %s',
    (input) => {
      expect(registryApiHost(parseReference(input).registry)).toBe('registry-1.docker.io');
    },
  );
});
