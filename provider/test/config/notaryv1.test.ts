import { generateKeyPairSync } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { parseConfig } from '../../src/config/index.ts';
import { configProblems, TEST_SOURCE, yamlBlock } from './helpers.ts';

const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ format: 'pem', type: 'spki' })
  .toString();

function config(validator: string, rule = ''): string {
  return `validators:
  - name: dct
    type: notaryv1
${validator}policy:
  - pattern: "*:*"
    validator: dct
${rule}`;
}

const roots = (key: string): string =>
  `    trustRoots:\n      - name: default\n        key: |\n${yamlBlock(key, 10)}\n`;

describe('notaryv1 validator config', () => {
  it('loads with a PEM ECDSA root key and defaults the host to notary.docker.io', () => {
    const loaded = parseConfig(config(roots(ecKey)), TEST_SOURCE, '/');
    const v = loaded.validators[0];
    expect(v?.type === 'notaryv1' && v.host).toBe('notary.docker.io');
  });

  it("refuses a trust root key that is not a PEM public key, with Connaisseur's message", () => {
    expect(configProblems(config(roots('MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE')))).toEqual([
      '/validators/0/trustRoots/0/key: wrong format, provide a PEM encoded public key',
    ]);
  });

  it('refuses a host that is not a URL', () => {
    expect(configProblems(config(`    host: "https://exa mple"\n${roots(ecKey)}`))).toEqual([
      '/validators/0/host: invalid url for notary host "https://exa mple"',
    ]);
  });

  it('refuses credentials it would otherwise ignore', () => {
    const problems = configProblems(config(`    auth: { secretName: notary-creds }\n${roots(ecKey)}`));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^\/validators\/0\/auth: Connaisseur's validator auth is not read by this build; give the Notary host's credentials in a registries: entry/,
    );
  });

  it('refuses a rule naming a trust root the validator lacks', () => {
    expect(configProblems(config(roots(ecKey), '    with: { trustRoot: ops }\n'))).toEqual([
      '/policy/0/with/trustRoot: validator "dct" has no trust root "ops"',
    ]);
  });
});
