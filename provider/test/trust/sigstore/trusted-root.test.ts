import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  embeddedPublicGoodRoot,
  overrideTrustedRoot,
  parseTrustedRoot,
  SigstoreTrust,
  TrustedRootError,
} from '../../../src/trust/sigstore/index.ts';
import { ProvenantError } from '../../../src/types/errors.ts';

describe('Sigstore trusted roots', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'provenant-trusted-root-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('embeds the public-good root with the production Rekor log', () => {
    const root = embeddedPublicGoodRoot();
    expect(root.tlogs.map((t) => t.baseUrl)).toContain('https://rekor.sigstore.dev');
    expect(root.certificateAuthorities.length).toBeGreaterThan(0);
  });

  it.each([
    ['not JSON', 'nope', /is not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['another media type', '{"mediaType":"application/json"}', /mediaType "application\/json"/],
  ])('refuses a trusted root that is %s', (_, text, message) => {
    expect(() => parseTrustedRoot(text, 'test.json')).toThrow(TrustedRootError);
    expect(() => parseTrustedRoot(text, 'test.json')).toThrow(message);
  });

  it('refuses an unreadable sigstore.trustedRoot at start with CONFIG_UNREADABLE', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{}');
    const attempt = (): SigstoreTrust => new SigstoreTrust({ trustedRoot: bad });
    expect(attempt).toThrow(ProvenantError);
    expect(attempt).toThrow(/sigstore.trustedRoot: .*bad.json has mediaType null/);
    expect(() => new SigstoreTrust({ trustedRoot: path.join(dir, 'missing.json') })).toThrow(
      /cannot read trusted root/,
    );
  });

  it('replaces the log key with host.rekorPubkey, its log ID being the SHA-256 of the key', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const base = embeddedPublicGoodRoot();
    const root = overrideTrustedRoot(base, { rekorPubkey: pem });
    expect(root.tlogs).toHaveLength(1);
    expect(root.tlogs[0]?.logId?.keyId.equals(createHash('sha256').update(der).digest())).toBe(true);
    // Everything not overridden stays.
    expect(root.certificateAuthorities).toEqual(base.certificateAuthorities);
    expect(() => overrideTrustedRoot(base, { fulcioCert: 'no certificate here' })).toThrow(
      /holds no PEM certificate/,
    );
  });
});
