import { describe, expect, it } from 'vitest';
import { warmUpLegacyCheck } from '../../../src/validators/cosign/warm-up.ts';

describe('warmUpLegacyCheck', () => {
  it('verifies a signature made in memory through the legacy check, offline, without the Sigstore root', () => {
    let consulted = false;
    expect(() =>
      warmUpLegacyCheck(() => {
        consulted = true;
        throw new Error('a key root without the tlog check must not need the trusted root');
      }),
    ).not.toThrow();
    expect(consulted).toBe(false);
  });
});
