import { describe, expect, it } from 'vitest';

import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { loadConfigFile, parseConfig, semanticWarnings } from '../../src/config/index.ts';
import { configProblems, makeTempDir, TEST_SOURCE } from './helpers.ts';

/** Problems other than "this build lacks the validator type", which every non-static validator has. */
function crossFieldProblems(text: string): string[] {
  try {
    parseConfig(text, TEST_SOURCE, '/');
    return [];
  } catch {
    return configProblems(text).filter((p) => !p.includes('is not supported by this build'));
  }
}

function withValidator(validatorYaml: string, policyYaml = '  - pattern: "*:*"\n    validator: v\n'): string {
  return `validators:\n${validatorYaml}policy:\n${policyYaml}`;
}

describe('validator checks', () => {
  it('refuses a notation trust root whose cert is not a PEM certificate, naming the field', () => {
    const text = withValidator(
      '  - name: v\n    type: notation\n    trustRoots: [{ name: default, cert: c }]\n',
    );
    expect(configProblems(text)).toEqual([
      '/validators/0/trustRoots/0/cert: validator v, trust root "default": expected PEM X.509 certificate(s) in cert, found no PEM CERTIFICATE block',
    ]);
  });

  it('refuses two validators with one name, naming the first', () => {
    const text = withValidator(
      '  - name: v\n    type: static\n  - name: w\n    type: static\n  - name: v\n    type: static\n',
    );
    expect(configProblems(text)).toEqual(['/validators/2/name: duplicate name "v" (also /validators/0)']);
  });

  it('refuses two trust roots with one name in a validator', () => {
    const text = withValidator(
      '  - name: v\n    type: cosign\n    trustRoots: [{ name: default, key: a }, { name: default, key: b }]\n',
    );
    expect(crossFieldProblems(text)).toEqual([
      '/validators/0/trustRoots/1/name: duplicate trust root name "default"',
    ]);
  });

  it.each([
    ['cosign', 'cert: c', 'expected exactly one of key or keyless for a cosign trust root, found cert'],
    [
      'cosign',
      'key: k, keyless: { issuer: i, subject: s }',
      'expected exactly one of key or keyless for a cosign trust root, found key, keyless',
    ],
    ['cosign', 'tsCert: t', 'expected exactly one of key or keyless for a cosign trust root, found none'],
    ['notaryv1', 'cert: c', 'expected exactly one of key for a notaryv1 trust root, found cert'],
    ['notation', 'key: k', 'expected exactly one of cert for a notation trust root, found key'],
  ])('refuses a %s trust root with %s', (type, material, problem) => {
    const text = withValidator(
      `  - name: v\n    type: ${type}\n    trustRoots: [{ name: default, ${material} }]\n`,
    );
    expect(crossFieldProblems(text)).toEqual([`/validators/0/trustRoots/0: ${problem}`]);
  });

  it.each([
    ['issuer and issuerRegex', '{ issuer: i, issuerRegex: r, subject: s }', 'issuer or issuerRegex'],
    ['neither issuer nor issuerRegex', '{ subject: s }', 'issuer or issuerRegex'],
    ['subject and subjectRegex', '{ issuer: i, subject: s, subjectRegex: r }', 'subject or subjectRegex'],
    ['neither subject nor subjectRegex', '{ issuerRegex: r }', 'subject or subjectRegex'],
  ])('refuses a keyless trust root with %s', (_title, keyless, pair) => {
    const text = withValidator(
      `  - name: v\n    type: cosign\n    trustRoots: [{ name: default, keyless: ${keyless} }]\n`,
    );
    expect(crossFieldProblems(text)).toEqual([
      `/validators/0/trustRoots/0/keyless: expected exactly one of ${pair}`,
    ]);
  });

  it.each([
    ['that does not compile', '('],
    ['that only JavaScript accepts (a lookahead, which RE2 and cosign refuse)', '^(?!mallory).*@corp[.]com$'],
  ])('refuses a keyless regular expression %s, naming the trust root', (_, pattern) => {
    const text = withValidator(
      `  - name: v\n    type: cosign\n    trustRoots: [{ name: default, keyless: { issuer: i, subjectRegex: "${pattern}" } }]\n`,
    );
    const problems = crossFieldProblems(text);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^\/validators\/0\/trustRoots\/0\/keyless\/subjectRegex \(trust root "default"\): not a valid RE2 regular expression/,
    );
  });

  it('accepts the RE2 syntax cosign users write that JavaScript refuses: inline flags, \\z', () => {
    const text = withValidator(
      '  - name: v\n    type: cosign\n    trustRoots: [{ name: default, keyless: { issuerRegex: "(?i)^https://ISSUER[.]example\\\\z", subjectRegex: "(?s)a.b" } }]\n',
    );
    expect(crossFieldProblems(text)).toEqual([]);
  });
});

describe('rule checks', () => {
  const cosign =
    '  - name: v\n    type: cosign\n    trustRoots: [{ name: alice, key: a }, { name: bob, key: b }]\n';

  it('refuses a rule naming a validator that does not exist', () => {
    const text = withValidator('  - name: v\n    type: static\n', '  - pattern: "*:*"\n    validator: w\n');
    expect(configProblems(text)).toEqual(['/policy/0/validator: no validator named "w"']);
  });

  it('explains that a rule without a validator uses "default"', () => {
    const text = withValidator('  - name: v\n    type: static\n', '  - pattern: "*:*"\n');
    expect(configProblems(text)).toEqual([
      '/policy/0/validator: no validator named "default" (a rule without validator uses "default")',
    ]);
  });

  it('refuses a pattern that is not a valid glob, with the glob error', () => {
    const text = withValidator('  - name: v\n    type: static\n', '  - pattern: "{a,b"\n    validator: v\n');
    expect(configProblems(text)).toEqual(['/policy/0/pattern: pattern has an unclosed "{"']);
  });

  it('refuses a pattern with a "/" inside braces, naming the rule and the pattern (issue 10 item 6)', () => {
    const text = withValidator(
      '  - name: v\n    type: static\n',
      '  - pattern: "*:*"\n    validator: v\n  - pattern: "{reg.io/team,x}/*"\n    validator: v\n',
    );
    const problems = configProblems(text);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^\/policy\/1\/pattern: pattern "\{reg\.io\/team,x\}\/\*" has a "\/" inside "\{…\}"/,
    );
  });

  it('refuses a trust root the validator does not have', () => {
    const text = withValidator(
      cosign,
      '  - pattern: "*:*"\n    validator: v\n    with: { trustRoot: carol }\n',
    );
    expect(crossFieldProblems(text)).toEqual([
      '/policy/0/with/trustRoot: validator "v" has no trust root "carol"',
    ]);
  });

  it('falls back to the trust root "default" and refuses it when absent', () => {
    expect(crossFieldProblems(withValidator(cosign))).toEqual([
      '/policy/0/with/trustRoot: validator "v" has no trust root "default"',
    ]);
  });

  it('accepts "*" for all trust roots', () => {
    const text = withValidator(
      cosign,
      '  - pattern: "*:*"\n    validator: v\n    with: { trustRoot: "*" }\n',
    );
    expect(crossFieldProblems(text)).toEqual([]);
  });

  it('refuses a required trust root the validator does not have', () => {
    const text = withValidator(
      cosign,
      '  - pattern: "*:*"\n    validator: v\n    with: { trustRoot: "*", required: [alice, dave] }\n',
    );
    expect(crossFieldProblems(text)).toEqual([
      '/policy/0/with/required: validator "v" has no trust root "dave"',
    ]);
  });

  it('refuses required combined with delegations, as Connaisseur does', () => {
    const text = withValidator(
      cosign,
      '  - pattern: "*:*"\n    validator: v\n    with: { trustRoot: "*", required: [alice], delegations: [d] }\n',
    );
    expect(crossFieldProblems(text)).toEqual([
      '/policy/0/with: "required" and "delegations" cannot be combined',
    ]);
  });

  it('ignores trust-root options on a rule for a static validator, as they do not apply', () => {
    const text = withValidator(
      '  - name: v\n    type: static\n',
      '  - pattern: "*:*"\n    validator: v\n    with: { trustRoot: nobody, required: [x] }\n',
    );
    expect(parseConfig(text, TEST_SOURCE, '/').policy[0]?.with).toEqual({
      trustRoot: 'nobody',
      required: ['x'],
    });
  });
});

describe('sigstore checks', () => {
  it('refuses a TUF root without the mirror it belongs to', () => {
    const text =
      withValidator('  - name: v\n    type: static\n', '  - pattern: "*:*"\n    validator: v\n') +
      'sigstore: { tufRoot: root.json }\n';
    expect(crossFieldProblems(text)).toEqual([
      '/sigstore/tufRoot: an initial TUF root needs sigstore.tufMirror, the repository it belongs to',
    ]);
  });
});

describe('load-time warnings (issue 10 item 6)', () => {
  const policy =
    '  - pattern: "*:*"\n    validator: v\n' +
    '  - pattern: "library/evil*"\n    validator: v\n' +
    '  - pattern: "docker.io/test:*"\n    validator: v\n' +
    '  - pattern: "docker.io/library/*"\n    validator: v\n';
  const text = withValidator('  - name: v\n    type: static\n', policy);

  it('loads a pattern that can never match, with a warning naming it and the form that would match', () => {
    expect(semanticWarnings(parseConfig(text, TEST_SOURCE, '/'))).toEqual([
      expect.stringMatching(
        /^\/policy\/1\/pattern: "library\/evil\*" can never match: .*"docker\.io\/library\/evil\*" would match$/,
      ),
      expect.stringMatching(
        /^\/policy\/2\/pattern: "docker\.io\/test:\*" can never match: .*"docker\.io\/library\/test:\*" would match$/,
      ),
    ]);
  });

  it('gives no warning for patterns that can match', () => {
    const clean = withValidator(
      '  - name: v\n    type: static\n',
      '  - pattern: "docker.io/library/*"\n    validator: v\n',
    );
    expect(semanticWarnings(parseConfig(clean, TEST_SOURCE, '/'))).toEqual([]);
  });

  it('hands the warnings to whoever loads the file', async () => {
    const dir = await makeTempDir();
    try {
      const file = join(dir, 'config.yaml');
      await writeFile(file, text);
      const loaded = loadConfigFile(file);
      expect(loaded.config.policy).toHaveLength(4);
      expect(loaded.warnings).toEqual(semanticWarnings(loaded.config));
      expect(loaded.warnings).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
