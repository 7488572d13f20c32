import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.ts';

const yaml = (attestation: string): string => `
validators:
  - name: slsa
    type: cosign
    trustRoots: [{ name: default, key: "-----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\\n-----END PUBLIC KEY-----" }]
    attestation: ${attestation}
policy:
  - pattern: "*:*"
    validator: slsa
`;

describe('cosign attestation config', () => {
  it('resolves the policy file relative to the config file', () => {
    const config = parseConfig(
      yaml('{ predicateType: "https://slsa.dev/provenance/v1", policy: policies/slsa.rego }'),
      'test',
      '/etc/provenant',
    );
    const v = config.validators[0];
    expect(v?.type === 'cosign' && v.attestation).toEqual({
      predicateType: 'https://slsa.dev/provenance/v1',
      policy: '/etc/provenant/policies/slsa.rego',
    });
  });

  it('refuses an attestation block without a predicate type, naming the path', () => {
    expect(() => parseConfig(yaml('{ policy: slsa.rego }'), 'test', '/etc')).toThrow(
      '/validators/0/attestation',
    );
  });
});
