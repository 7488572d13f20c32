/**
 * The egress policy and digest pinning against a real registry (distribution 2.8) on loopback: the
 * registry is reached only when a registries: entry names it, through the address the policy checked,
 * whatever name or spelling an image uses for it.
 */
import type { LookupAddress } from 'node:dns';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseReference } from '../../../provider/src/reference/index.ts';
import type { RegistryClientOptions } from '../../../provider/src/registry/index.ts';
import { ProvenantError } from '../../../provider/src/types/errors.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { codedFailure, testRegistryClient, testSignal } from '../../harness/registry-client.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

/** Resolves `registry.test` to loopback, as a DNS server an attacker controls (or rebinds) would. */
const registryTestDns = ((
  hostname: string,
  _options: unknown,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
): void => {
  if (hostname !== 'registry.test') {
    const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
    err.code = 'ENOTFOUND';
    return void setImmediate(() => callback(err, []));
  }
  setImmediate(() => callback(null, [{ address: '127.0.0.1', family: 4 }]));
}) as unknown as RegistryClientOptions['lookup'];

describe('registry egress against a real registry', () => {
  let registry: RegistryServer;
  let pushed: PushedManifest;
  let port: string;

  beforeAll(async () => {
    registry = await startDistributionRegistry();
    pushed = await pushRandomImage(registry.url, 'team/app', 'v1');
    port = new URL(registry.url).port;
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('pins a tag to the digest of the manifest bytes the registry serves', async () => {
    const c = testRegistryClient([{ host: registry.host, insecure: true }]);
    try {
      expect(await c.resolveDigest(parseReference(`${registry.host}/team/app:v1`), testSignal())).toBe(
        pushed.digest,
      );
    } finally {
      await c.close();
    }
  });

  it('reaches the registry through a DNS name a registries: entry names, connecting to the checked address', async () => {
    const c = testRegistryClient([{ host: `registry.test:${port}`, insecure: true }], {
      lookup: registryTestDns,
    });
    try {
      const ref = parseReference(`registry.test:${port}/team/app:v1`);
      expect(await c.resolveDigest(ref, testSignal())).toBe(pushed.digest);
    } finally {
      await c.close();
    }
  });

  it('refuses the same registry when only a policy pattern lists the name and DNS answers loopback', async () => {
    const c = testRegistryClient([], {
      policyPatterns: [`registry.test:${port}/*`],
      lookup: registryTestDns,
    });
    try {
      const error = await codedFailure(
        c.resolveDigest(parseReference(`registry.test:${port}/team/app:v1`), testSignal()),
      );
      expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
      expect(error.message).toBe(
        `registry registry.test:${port} may not be contacted for registry.test:${port}/team/app:v1: it resolves to a loopback address`,
      );
    } finally {
      await c.close();
    }
  });

  it('refuses the registry under another spelling of its address before any connection', () => {
    for (const spelling of [
      `2130706433:${port}`,
      `127.1:${port}`,
      `0x7f.0.0.1:${port}`,
      `127.0.0.1:0${port}`,
    ]) {
      let error: unknown;
      try {
        parseReference(`${spelling}/team/app:v1`);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ProvenantError);
      expect((error as ProvenantError).code).toBe('REFERENCE_INVALID');
    }
  });

  it('refuses an unlisted spelling of loopback even when a catch-all pattern and allowUnlistedRegistries are set', async () => {
    const c = testRegistryClient([], {
      policyPatterns: ['*:*'],
      egress: { allowUnlistedRegistries: true },
      lookup: registryTestDns,
    });
    try {
      const error = await codedFailure(
        c.resolveDigest(parseReference(`registry.test:${port}/team/app:v1`), testSignal()),
      );
      expect(error.code).toBe('REGISTRY_EGRESS_DENIED');
      expect(error.message).toContain('loopback');
    } finally {
      await c.close();
    }
  });
});
