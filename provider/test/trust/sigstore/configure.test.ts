import { describe, expect, it } from 'vitest';
import { configureSigstore } from '../../../src/trust/sigstore/tuf.ts';

describe('configureSigstore', () => {
  it('uses the embedded public-good root, without TUF, when nothing asks for a refresh', () => {
    const configured = configureSigstore(undefined);
    expect(configured.trust).toBeUndefined();
    configured.stop();
  });

  it('keeps the public-good root current through TUF for serve, in the background', async () => {
    const refreshed = new Promise<Error | undefined>((resolve) => {
      const configured = configureSigstore(
        undefined,
        (error) => {
          configured.stop();
          resolve(error);
        },
        true,
      );
      // The embedded root answers at once, whatever the network does.
      expect(configured.trust?.current().certificateAuthorities.length).toBeGreaterThan(0);
    });
    // Offline (as here) the refresh fails and is reported; online it succeeds. Either way it reports.
    const error = await refreshed;
    expect(error === undefined || error instanceof Error).toBe(true);
  }, 15_000);

  it('never refreshes when sigstore.offline is set', () => {
    const configured = configureSigstore({ offline: true }, () => undefined, true);
    expect(configured.trust).toBeUndefined();
  });
});
