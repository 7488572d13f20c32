/**
 * Attestations made by the real `cosign attest` (legacy `.att` tag and v3 bundles), a required predicate
 * type, and a Rego condition on the predicate compiled by the real `opa build -t wasm` and evaluated
 * in-process. The validator is configured as users configure it (`attestation:` with a `.rego` file
 * compiled at load by the real opa, or a `.wasm` file opa built), and a broken policy never gets ready.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuleConfig, ValidatorConfig } from '../../../provider/src/config/index.ts';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { RegistryClient } from '../../../provider/src/registry/index.ts';
import { SigstoreTrust } from '../../../provider/src/trust/sigstore/index.ts';
import { ProvenantError } from '../../../provider/src/types/errors.ts';
import { CosignValidator } from '../../../provider/src/validators/cosign/cosign.ts';
import {
  cosignAttest,
  cosignKeyPair,
  cosignSign,
  type CosignKey,
  type SignatureFormat,
} from '../../harness/cosign.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { buildWasm } from '../../harness/opa.ts';
import { makeTempDir } from '../../harness/process.ts';
import { toolPath } from '../../harness/tools.ts';
import {
  startDistributionRegistry,
  startReferrersRegistry,
  type RegistryServer,
} from '../../harness/registry.ts';

const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';
const ENTRYPOINT = 'provenant/slsa/allow';
const TRUSTED_BUILDER = 'https://ci.acme.test/builder';
const POLICY = `package provenant.slsa

import rego.v1

default allow := false

allow if input.predicate.builder.id == "${TRUSTED_BUILDER}"
`;

describe.each([
  ['legacy .att tags (docker-registry), a .rego policy', 'legacy', () => startDistributionRegistry(), 'rego'],
  ['v3 bundles (olareg referrers), an opa-built .wasm policy', 'bundle', startReferrersRegistry, 'wasm'],
] as const)('cosign attestations in %s', (_, format: SignatureFormat, startRegistry, policyKind) => {
  let registry: RegistryServer;
  let dir: string;
  let alice: CosignKey;
  let mallory: CosignKey;
  let client: RegistryClient;
  let validator: CosignValidator;
  const rule: RuleConfig = {
    pattern: '*:*',
    validator: 'attested',
    with: { trustRoot: 'alice', verifyInTransparencyLog: false },
  };

  async function predicate(builder: string): Promise<string> {
    const file = path.join(dir, `predicate-${builder.replace(/\W/g, '')}.json`);
    await writeFile(file, JSON.stringify({ builder: { id: builder }, buildType: 'https://acme.test/build' }));
    return file;
  }

  /** A new image signed by alice, attested by `attester` with a predicate naming `builder`. */
  async function image(repository: string, attester?: CosignKey, builder = TRUSTED_BUILDER): Promise<string> {
    const pushed = await pushRandomImage(registry.url, repository, 'v1');
    const pinned = `${registry.host}/${repository}@${pushed.digest}`;
    await cosignSign(pinned, alice, format);
    if (attester !== undefined)
      await cosignAttest(pinned, attester, await predicate(builder), 'slsaprovenance', format);
    return pinned;
  }

  async function validate(reference: string): Promise<{ digest: string } | ProvenantError> {
    return validator
      .validate({ image: parseReference(reference), rule, signal: AbortSignal.timeout(10_000) })
      .catch((e: unknown) => e as ProvenantError);
  }

  beforeAll(async () => {
    [registry, dir] = await Promise.all([startRegistry(), makeTempDir('cosign-attest')]);
    [alice, mallory] = await Promise.all([cosignKeyPair(dir, 'alice'), cosignKeyPair(dir, 'mallory')]);
    process.env['PROVENANT_OPA'] = toolPath('opa');
    const policy = path.join(dir, `slsa.${policyKind}`);
    if (policyKind === 'rego') await writeFile(policy, POLICY);
    else await writeFile(policy, await buildWasm(dir, 'slsa', POLICY, ENTRYPOINT));
    const config: ValidatorConfig = {
      name: 'attested',
      type: 'cosign',
      trustRoots: [{ name: 'alice', key: alice.publicKey }],
      attestation: { predicateType: SLSA_V02, policy, entrypoint: ENTRYPOINT },
    };
    client = new RegistryClient({
      registries: [{ host: registry.host, insecure: true }],
      requestTimeoutMs: 5000,
      maxRetries: 0,
      maxManifestBytes: 4 * 1024 * 1024,
    });
    validator = new CosignValidator(config, { registry: client, sigstore: new SigstoreTrust() });
    await validator.ready();
  });

  afterAll(async () => {
    await client?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('admits an image attested by its signer with a predicate the Rego policy allows', async () => {
    const pinned = await image('attested/app', alice);
    const result = await validate(pinned);
    expect(result instanceof ProvenantError ? result.message : result).toMatchObject({
      digest: pinned.split('@')[1],
    });
  });

  it('rejects a predicate the policy denies with COSIGN_ATTESTATION_DENIED naming the image', async () => {
    const pinned = await image('attested/untrusted-builder', alice, 'https://evil.test/builder');
    const result = await validate(pinned);
    expect(result instanceof ProvenantError && result.code).toBe('COSIGN_ATTESTATION_DENIED');
    expect(result instanceof ProvenantError && result.message).toContain(pinned);
  });

  it('rejects a signed image without an attestation with COSIGN_ATTESTATION_MISSING', async () => {
    const pinned = await image('attested/none');
    const result = await validate(pinned);
    expect(result instanceof ProvenantError && result.code).toBe('COSIGN_ATTESTATION_MISSING');
  });

  it('rejects an attestation by a key that is not the trust root with COSIGN_ATTESTATION_MISSING', async () => {
    const pinned = await image('attested/mallory', mallory);
    const result = await validate(pinned);
    expect(result instanceof ProvenantError && result.code).toBe('COSIGN_ATTESTATION_MISSING');
    expect(result instanceof ProvenantError && result.message).toContain('does not verify');
  });

  it('never gets ready with a policy that does not compile: CONFIG_INVALID naming the validator and file', async () => {
    const broken = path.join(dir, `broken.${policyKind === 'rego' ? 'rego' : 'wasm'}`);
    await writeFile(broken, policyKind === 'rego' ? 'package provenant.slsa\nallow if {' : 'not wasm');
    const v = new CosignValidator(
      {
        name: 'broken',
        type: 'cosign',
        trustRoots: [{ name: 'alice', key: alice.publicKey }],
        attestation: { predicateType: SLSA_V02, policy: broken, entrypoint: ENTRYPOINT },
      },
      { registry: client, sigstore: new SigstoreTrust() },
    );
    const error = await v.ready().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProvenantError);
    expect((error as ProvenantError).code).toBe('CONFIG_INVALID');
    expect((error as ProvenantError).message).toContain(`validator broken, attestation.policy ${broken}`);
  });
});
