/** The provider's registry client as integration tests use it: short timeouts, and coded failures. */
import { expect } from 'vitest';
import type { RegistryConfig } from '../../provider/src/config/index.ts';
import { RegistryClient, type RegistryClientOptions } from '../../provider/src/registry/index.ts';
import { ProvenantError } from '../../provider/src/types/errors.ts';

export function testRegistryClient(
  registries: RegistryConfig[],
  options: Partial<RegistryClientOptions> = {},
): RegistryClient {
  return new RegistryClient({
    registries,
    requestTimeoutMs: 3000,
    maxRetries: 0,
    maxManifestBytes: 4 << 20,
    ...options,
  });
}

/** Awaits `p`, which must reject with a ProvenantError, and returns it. */
export async function codedFailure(p: Promise<unknown>): Promise<ProvenantError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProvenantError);
  return error as ProvenantError;
}

export const testSignal = (): AbortSignal => AbortSignal.timeout(8000);
