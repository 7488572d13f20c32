import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { configFingerprint } from '../../src/cache/index.ts';
import { parseConfig, type Config } from '../../src/config/index.ts';

/** A config naming one file of each kind that decides a verdict, relative to `dir`. */
function configNamingFiles(dir: string, password = 'pw'): Config {
  return parseConfig(
    `
validators:
  - name: signed
    type: cosign
    trustRoots: [{ name: default, key: "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----" }]
    attestation: { predicateType: https://slsa.dev/provenance/v1, policy: policy.rego }
policy:
  - pattern: "*:*"
    validator: signed
registries:
  - host: registry.example
    ca: ca.pem
    auth: { username: robot, password: ${password} }
sigstore:
  tufMirror: https://tuf.example
  tufRoot: root.json
  trustedRoot: trusted_root.json
`,
    'fingerprint test',
    dir,
  );
}

const FILES = ['ca.pem', 'policy.rego', 'root.json', 'trusted_root.json'];

describe('config fingerprint', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'provenant-fingerprint-'));
    for (const file of FILES) await writeFile(join(dir, file), `original ${file}`);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is the same for the same config and the same files', () => {
    expect(configFingerprint(configNamingFiles(dir))).toBe(configFingerprint(configNamingFiles(dir)));
  });

  it.each(FILES)('changes when the contents of %s change, though its path does not', async (file) => {
    const before = configFingerprint(configNamingFiles(dir));
    await writeFile(join(dir, file), `edited ${file}`);
    expect(configFingerprint(configNamingFiles(dir))).not.toBe(before);
  });

  it('does not depend on registry credentials, which decide access rather than trust', () => {
    expect(configFingerprint(configNamingFiles(dir, 'one'))).toBe(
      configFingerprint(configNamingFiles(dir, 'two')),
    );
  });
});
