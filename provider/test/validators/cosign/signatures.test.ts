import { describe, expect, it } from 'vitest';
import { signatureId, type CosignSignature } from '../../../src/validators/cosign/signatures.ts';

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
