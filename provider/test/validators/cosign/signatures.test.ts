import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  signatureId,
  simpleSigningPayload,
  type CosignSignature,
} from '../../../src/validators/cosign/signatures.ts';

const legacy = (signature: string, source = 'layer 0'): CosignSignature => ({
  kind: 'legacy',
  source,
  payload: Buffer.from('{}'),
  signature,
  certificate: undefined,
  chain: undefined,
  rekorBundle: undefined,
});

const bundle = (json: unknown): CosignSignature => ({
  kind: 'bundle',
  source: 'referrer',
  bytes: Buffer.from(JSON.stringify(json, null, 2)),
});

describe('signature identity (what a threshold counts once)', () => {
  it('is the same for a copied .sig layer, wherever it is stored', () => {
    expect(signatureId(legacy('MEUCIQ==', 'layer 0'))).toBe(signatureId(legacy('MEUCIQ==', 'layer 1')));
    expect(signatureId(legacy('MEUCIQ=='))).not.toBe(signatureId(legacy('MEUCIg==')));
    // Base64 with different unused bits (IQ== and IR==) decodes to the same signature bytes.
    expect(signatureId(legacy('MEUCIQ=='))).toBe(signatureId(legacy('MEUCIR==')));
  });

  it('is the DSSE signature of a bundle, not its serialisation', () => {
    const envelope = { payloadType: 't', payload: 'cA==', signatures: [{ sig: 'MEUCIQ==', keyid: '' }] };
    const compact = {
      kind: 'bundle',
      source: 'a',
      bytes: Buffer.from(JSON.stringify({ dsseEnvelope: envelope })),
    };
    const spaced = bundle({ mediaType: 'x', dsseEnvelope: envelope });
    expect(signatureId(compact as CosignSignature)).toBe(signatureId(spaced));
    expect(signatureId(spaced)).toBe(signatureId(legacy('MEUCIQ==')));
  });
});

describe("cosign's simple-signing payload, rebuilt", () => {
  it('is byte for byte the layer cosign v3 pushed for an image (its digest and size)', () => {
    // `cosign sign --key … 127.0.0.1:32881/a/b@sha256:7b6e…` (cosign v3, legacy .sig): the layer's
    // descriptor was size 235, digest sha256:dc86ac6a….
    const bytes = Buffer.from(
      simpleSigningPayload(
        '127.0.0.1:32881/a/b',
        'sha256:7b6e369fc5ca82a7c6082b8a43e550192da5ead39967af54e6cf82259bb84912',
      ),
    );
    expect(bytes.length).toBe(235);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(
      'dc86ac6aa2f905ab379c9fe59fdc493ef28c16551b51a4aabe57123ff2a18bc7',
    );
  });
});
