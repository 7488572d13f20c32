import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import selfsigned from 'selfsigned';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { loadConfigFile, parseConfig } from '../../src/config/index.ts';
import { MAX_CONFIG_NESTING } from '../../src/config/load.ts';
import { configProblems, makeTempDir, provenantErrorFrom, TEST_SOURCE, yamlBlock } from './helpers.ts';

// Unknown fields are pointed at, never quoted (a broken file can turn a secret into a key).
const WITH_FIELDS =
  '(allowed: trustRoot, threshold, required, delegations, verifyInTransparencyLog, verifySCT, mode, verificationLevel, verifyTimestamp)';
const NOTARY_FIELDS = '(allowed: name, type, host, cert, trustRoots, auth)';

const MINIMAL = `
validators:
  - name: default
    type: static
policy:
  - pattern: "*:*"
`;

function publicKeyPem(): string {
  return generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  }).publicKey;
}

function certificatePem(commonName: string): string {
  return selfsigned.generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048,
    algorithm: 'sha256',
  }).cert;
}

/** A config in Connaisseur's shape using every validator type and most rule options. */
function connaisseurShapedConfig(pem: { docker: string; sse: string; cosign: string; notation: string }) {
  return `
validators:
  - name: default
    type: static
    approve: true
  - name: deny
    type: static
    approve: false
  - name: dockerhub-basics
    type: notaryv1
    host: notary.docker.io
    trustRoots:
      - name: docker-official
        key: |
${yamlBlock(pem.docker, 10)}
      - name: securesystemsengineering-official
        key: |
${yamlBlock(pem.sse, 10)}
  - name: team-cosign
    type: cosign
    host:
      rekor: https://rekor.sigstore.dev
    auth:
      useKeychain: true
    trustRoots:
      - name: default
        key: |
${yamlBlock(pem.cosign, 10)}
      - name: ci
        keyless:
          issuer: https://token.actions.githubusercontent.com
          subjectRegex: "^https://github.com/acme/.*$"
  - name: team-notation
    type: notation
    auth:
      secretName: notation-credentials
    trustRoots:
      - name: default
        cert: |
${yamlBlock(pem.notation, 10)}
        tsCert: |
${yamlBlock(pem.notation, 10)}
policy:
  - pattern: "*:*"
    validator: deny
  - pattern: "docker.io/library/*"
    validator: dockerhub-basics
    with:
      trustRoot: docker-official
      delegations: [phbelitz]
  - pattern: "registry.acme.io/team/*:*"
    validator: team-cosign
    with:
      trustRoot: "*"
      threshold: 2
      required: [ci]
      verifyInTransparencyLog: true
      verifySCT: false
      mode: insecureValidateOnly
  - pattern: "registry.acme.io/notation/*"
    validator: team-notation
    with:
      verificationLevel: permissive
      verifyTimestamp: afterCertExpiry
  - pattern: "registry.acme.io/public/*"
`;
}

describe('a Connaisseur-shaped config', () => {
  let text: string;
  beforeAll(() => {
    const certificate = certificatePem('notation.acme.io');
    text = connaisseurShapedConfig({
      docker: publicKeyPem(),
      sse: publicKeyPem(),
      cosign: publicKeyPem(),
      notation: certificate,
    });
  });

  it('loads unchanged, its notation validator and rule options included', () => {
    const config = parseConfig(text, TEST_SOURCE, '/');
    expect(config.validators.map((v) => v.type)).toContain('notation');
    expect(config.policy.find((r) => r.validator === 'team-notation')?.with).toEqual({
      verificationLevel: 'permissive',
      verifyTimestamp: 'afterCertExpiry',
    });
  });

  it('loads once its policy uses only static validators', () => {
    const staticOnly = `
validators:
  - name: default
    type: static
    approve: true
  - name: deny
    type: static
policy:
  - pattern: "*:*"
    validator: deny
  - pattern: "registry.acme.io/public/*"
    with: { trustRoot: default, mode: insecureValidateOnly }
`;
    const config = parseConfig(staticOnly, TEST_SOURCE, '/');
    expect(config.validators.map((v) => [v.name, v.type === 'static' && v.approve])).toEqual([
      ['default', true],
      ['deny', false],
    ]);
    expect(config.policy[1]).toEqual({
      pattern: 'registry.acme.io/public/*',
      validator: 'default',
      with: { trustRoot: 'default', mode: 'insecureValidateOnly' },
    });
  });

  it.each([
    [
      'with.key, a v2 key Connaisseur v3 also rejects',
      'with: { key: alice }',
      `/policy/0/with: unknown field at line 7, column 13 ${WITH_FIELDS}`,
    ],
    [
      'an unknown rule field',
      'validtor: deny',
      '/policy/0: unknown field at line 7, column 5 (allowed: pattern, validator, with)',
    ],
  ])('refuses %s', (_title, extra, problem) => {
    const bad = `${MINIMAL}    ${extra}\n`;
    expect(configProblems(bad)).toEqual([problem]);
  });

  it("refuses notaryv1's isAcr, which Connaisseur v3 rejects as an unknown field", () => {
    const bad = `
validators:
  - name: default
    type: notaryv1
    isAcr: true
    trustRoots: [{ name: default, key: k }]
policy:
  - pattern: "*:*"
`;
    expect(configProblems(bad)).toEqual([
      `/validators/0: unknown field at line 5, column 5 ${NOTARY_FIELDS}`,
    ]);
  });
});

describe('defaults', () => {
  const config = parseConfig(MINIMAL, TEST_SOURCE, '/');

  it('serves on port 8443 on every interface with the documented limits', () => {
    expect(config.server).toEqual({
      host: '0.0.0.0',
      port: 8443,
      maxKeys: 1000,
      bodyLimitBytes: 1_048_576,
      requestDeadlineMs: 2500,
      headersTimeoutMs: 5000,
      bodyTimeoutMs: 10_000,
      idleTimeoutMs: 30_000,
      maxConnections: 1000,
      drainSeconds: 10,
      allowDevCertificate: false,
      tls: undefined,
      auth: {
        kyverno: {
          enabled: false,
          audience: 'kyverno-svc.kyverno.io',
          serviceAccounts: ['system:serviceaccount:kyverno:kyverno-admission-controller'],
          reviewCacheSeconds: 10,
          kubeconfig: undefined,
        },
      },
    });
  });

  it('caches verdicts for 30 seconds', () => {
    expect(config.cache).toEqual({ ttlSeconds: 30, negativeTtlSeconds: 5, maxEntries: 10_000 });
  });

  it('bounds every registry request in time, retries, size and concurrency, and contacts only listed registries', () => {
    expect(config.network).toEqual({
      requestTimeoutMs: 2000,
      maxRetries: 2,
      maxManifestBytes: 4 * 1024 * 1024,
      maxBlobBytes: 4 * 1024 * 1024,
      maxConcurrentRequests: 64,
      maxConcurrentRequestsPerRegistry: 16,
      egress: { allowUnlistedRegistries: false },
    });
  });

  it('gives a rule without a validator the validator "default"', () => {
    expect(config.policy[0]?.validator).toBe('default');
  });

  it('makes a static validator without approve deny', () => {
    expect(config.validators[0]).toEqual({ name: 'default', type: 'static', approve: false });
  });

  it('logs at info, knows no registries and has no private Sigstore', () => {
    expect(config.log.level).toBe('info');
    expect(config.registries).toEqual([]);
    expect(config.sigstore).toBeUndefined();
  });

  it('fills defaults inside sections that are only partly given', () => {
    const partial = parseConfig(
      `${MINIMAL}server: { port: 9443, tls: { cert: c, key: k } }\ncache: { ttlSeconds: 0 }\nregistries: [{ host: r.io }]\n`,
      TEST_SOURCE,
      '/',
    );
    expect(partial.server.port).toBe(9443);
    expect(partial.server.maxKeys).toBe(1000);
    expect(partial.server.tls?.minVersion).toBe('TLSv1.2');
    expect(partial.cache.ttlSeconds).toBe(0);
    expect(partial.cache.negativeTtlSeconds).toBe(5);
    expect(partial.registries[0]?.insecure).toBe(false);
  });
});

/** Paths of every object or array under `value` that is not frozen. */
function unfrozenPaths(value: unknown, path = ''): string[] {
  if (value === null || typeof value !== 'object') return [];
  const own = Object.isFrozen(value) ? [] : [path === '' ? '/' : path];
  return [...own, ...Object.entries(value).flatMap(([key, child]) => unfrozenPaths(child, `${path}/${key}`))];
}

describe('server timeouts', () => {
  it('refuses a headers timeout longer than the whole-request timeout it is part of', () => {
    expect(configProblems(`${MINIMAL}server: { headersTimeoutMs: 20000, bodyTimeoutMs: 10000 }\n`)).toEqual([
      '/server/headersTimeoutMs: expected at most server.bodyTimeoutMs (10000), found 20000',
    ]);
  });
});

describe('the loaded config', () => {
  const config = parseConfig(
    `${MINIMAL}    with: { trustRoot: default, required: [a] }
server: { tls: { cert: c, key: k } }
registries: [{ host: r.io, auth: { username: u, password: p } }]
sigstore: { tufMirror: https://tuf.acme.io }
`,
    TEST_SOURCE,
    '/',
  );

  it('is frozen all the way down', () => {
    expect(unfrozenPaths(config)).toEqual([]);
    // Guard against a vacuous pass: the walk did reach the deepest values.
    expect(config.policy[0]?.with?.required).toEqual(['a']);
  });

  it('throws when code tries to change it', () => {
    const server = config.server as { port: number };
    expect(() => {
      server.port = 1;
    }).toThrow(TypeError);
    expect(() => (config.policy as unknown as unknown[]).push({})).toThrow(TypeError);
  });
});

describe('problems reported at once', () => {
  it('lists every bad field path, across sections and checks, in one CONFIG_INVALID error', () => {
    const bad = `
features: { detectionMode: true }
server: { port: "8443" }
cache: { ttlSeconds: -1 }
validators:
  - name: allow
    type: static
    approve: true
  - name: allow
    type: static
  - name: keyless
    type: cosign
    trustRoots:
      - name: default
        keyless: { issuer: "https://a.example", issuerRegex: "^https://", subject: me }
policy:
  - pattern: "[abc"
    validator: allow
  - pattern: "quay.io/*"
    validator: missing
`;
    const err = provenantErrorFrom(() => parseConfig(bad, TEST_SOURCE, '/'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`config ${TEST_SOURCE} is invalid (7 problems):`);
    for (const problem of [
      '/: unknown field at line 2, column 1 (allowed: validators, policy, server, registries, network, cache, sigstore, log, alerting)',
      '/server/port: must be integer',
      '/cache/ttlSeconds: must be >= 0',
      '/validators/1/name: duplicate name "allow" (also /validators/0)',
      '/validators/2/trustRoots/0/keyless: expected exactly one of issuer or issuerRegex',
      '/policy/0/pattern: pattern has an unclosed "[" at position 0',
      '/policy/1/validator: no validator named "missing"',
    ]) {
      expect(err.message).toContain(problem);
    }
  });

  it('lists every schema problem in the validators and policy lists in one error', () => {
    const bad = `
validators:
  - name: a
    type: fulcio
  - type: static
  - name: n
    type: notaryv1
    isAcr: true
    trustRoots: [{ name: default, key: k }]
policy:
  - validator: a
  - pattern: "*"
    with: { key: x }
network: { maxRetries: 9 }
`;
    expect(configProblems(bad)).toEqual([
      '/validators/0/type: must be one of static, cosign, notaryv1, notation',
      '/validators/1: missing required field "name"',
      `/validators/2: unknown field at line 8, column 5 ${NOTARY_FIELDS}`,
      '/policy/0: missing required field "pattern"',
      `/policy/1/with: unknown field at line 13, column 13 ${WITH_FIELDS}`,
      '/network/maxRetries: must be <= 5',
    ]);
  });

  it('reports a validator missing its trust roots without crashing the cross-field checks', () => {
    const bad = `
validators:
  - name: default
    type: cosign
policy:
  - pattern: "*:*"
`;
    expect(configProblems(bad)).toEqual(['/validators/0: missing required field "trustRoots"']);
  });

  it('requires at least one validator and one rule', () => {
    expect(configProblems('validators: []\npolicy: []\n')).toEqual([
      '/validators: must NOT have fewer than 1 items',
      '/policy: must NOT have fewer than 1 items',
    ]);
  });

  it('names both missing lists of an empty file', () => {
    expect(configProblems('')).toEqual([
      '/: missing required field "validators"',
      '/: missing required field "policy"',
    ]);
  });

  it('refuses a file that is not a mapping', () => {
    expect(configProblems('- validators\n- policy\n')).toEqual(['/: must be object']);
  });
});

describe('invalid YAML', () => {
  it.each([
    ['an unclosed flow sequence', 'validators: [\n'],
    ['a duplicate key', `${MINIMAL}policy: []\n`],
    ['a tab used for indentation', 'validators:\n\t- name: x\n'],
  ])('refuses %s as CONFIG_INVALID naming the source', (_title, text) => {
    const err = provenantErrorFrom(() => parseConfig(text, TEST_SOURCE, '/'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`config ${TEST_SOURCE} is not valid YAML`);
  });

  // Found fuzzing: yaml's composer overflowed the stack on a 5 000-deep flow sequence and V8 aborted
  // the process ("RegExpCompiler Allocation failed") instead of yaml reporting a parse error.
  it.each([
    ['flow sequences', `validators: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, 5001],
    ['flow mappings', `validators: ${'{a: '.repeat(300)}1${'}'.repeat(300)}\n`, 301],
    ['block sequences', `validators:\n  ${'- '.repeat(20_000)}x\n`, 20_001],
  ])('refuses %s nested thousands deep as CONFIG_INVALID, before composing them', (_title, text, depth) => {
    const err = provenantErrorFrom(() => parseConfig(text, TEST_SOURCE, '/'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toBe(
      `config ${TEST_SOURCE} is not valid YAML: collections nested ${depth} levels deep, at most ${MAX_CONFIG_NESTING} allowed`,
    );
  });

  it('survives loading a 5 000-deep config again and again, which used to abort the process', () => {
    // The third load aborted node (a fresh process, as `serve` reloading a broken ConfigMap): run in a
    // child, so that a regression fails this test instead of killing the test worker.
    const script = `
      import { parseConfig } from ${JSON.stringify(fileURLToPath(new URL('../../src/config/index.ts', import.meta.url)))};
      const text = 'validators: ' + '['.repeat(5000) + ']'.repeat(5000) + '\\n';
      for (let i = 0; i < 5; i++) try { parseConfig(text, 'deep.yaml', '/'); } catch (e) { console.log(e.code); }`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(out.trim().split('\n')).toEqual(Array(5).fill('CONFIG_INVALID'));
  });

  it('loads a config nested as deep as allowed', () => {
    const text = `${MINIMAL}x-deep: ${'['.repeat(MAX_CONFIG_NESTING - 1)}${']'.repeat(MAX_CONFIG_NESTING - 1)}\n`;
    // Composed and checked: its one problem is the unknown field, not its depth.
    expect(configProblems(text)).toEqual([expect.stringMatching(/^\/: unknown field at line \d+/)]);
  });
});

describe('loadConfigFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves relative TLS and CA paths against the directory of the file', async () => {
    await mkdir(join(dir, 'conf'));
    const file = join(dir, 'conf', 'provenant.yaml');
    await writeFile(
      file,
      `${MINIMAL}server:
  tls: { cert: tls.crt, key: /etc/provenant/tls.key, clientCA: ../ca/gatekeeper-ca.crt }
registries:
  - host: registry.acme.io
    ca: certs/acme-ca.pem
  - host: quay.io
`,
    );
    const { config, source } = loadConfigFile(file);
    expect(source).toBe(resolve(file));
    expect(config.server.tls).toEqual({
      cert: join(dir, 'conf', 'tls.crt'),
      key: '/etc/provenant/tls.key',
      clientCA: join(dir, 'ca', 'gatekeeper-ca.crt'),
      minVersion: 'TLSv1.2',
    });
    expect(config.registries.map((r) => r.ca)).toEqual([
      join(dir, 'conf', 'certs', 'acme-ca.pem'),
      undefined,
    ]);
  });

  it('resolves against the file, not the working directory, when given a relative path', async () => {
    const file = join(dir, 'provenant.yaml');
    await writeFile(file, `${MINIMAL}server: { tls: { cert: tls.crt, key: tls.key } }\n`);
    const { config } = loadConfigFile(relative(process.cwd(), file));
    expect(config.server.tls?.cert).toBe(join(dir, 'tls.crt'));
  });

  it('names the file in a CONFIG_INVALID error', async () => {
    const file = join(dir, 'provenant.yaml');
    await writeFile(file, `${MINIMAL}    validator: missing\n`);
    const err = provenantErrorFrom(() => loadConfigFile(file));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`config ${file} is invalid (1 problem):`);
    expect(err.message).toContain('/policy/0/validator: no validator named "missing"');
  });

  it('reports a missing file as CONFIG_UNREADABLE, keeping the cause', () => {
    const file = join(dir, 'absent.yaml');
    const err = provenantErrorFrom(() => loadConfigFile(file));
    expect(err.code).toBe('CONFIG_UNREADABLE');
    expect(err.message).toContain(file);
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('reports a directory as CONFIG_UNREADABLE', () => {
    const err = provenantErrorFrom(() => loadConfigFile(dir));
    expect(err.code).toBe('CONFIG_UNREADABLE');
    expect((err.cause as NodeJS.ErrnoException).code).toBe('EISDIR');
  });
});

describe('fields with a fixed set of values', () => {
  it('name the allowed values once instead of one complaint per value', () => {
    const problems = configProblems(`
validators: [{ name: default, type: static, approve: true }]
policy: [{ pattern: "*:*", with: { mode: rewrite } }]
log: { level: loud }
`);
    expect(problems).toContain('/policy/0/with/mode: must be one of mutate, insecureValidateOnly');
    expect(problems).toContain('/log/level: must be one of trace, debug, info, warn, error, fatal');
    expect(problems.filter((p) => p.startsWith('/log/level'))).toHaveLength(1);
  });
});
