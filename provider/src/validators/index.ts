/** Validators are plug-ins chosen by `type`; each lives in its own folder. */
import type { RegistryConfig, ValidatorConfig } from '../config/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import { notaryBaseUrl, VersionMemory, type NotaryCredentials } from '../trust/notaryv1/index.ts';
import { RegistryHosts } from '../registry/hosts.ts';
import { NotaryV1Validator } from './notaryv1/notaryv1.ts';
import { SigstoreTrust } from '../trust/sigstore/index.ts';
import { CosignValidator } from './cosign/cosign.ts';
import { NotationValidator } from './notation/notation.ts';
import { StaticValidator } from './static/static.ts';
import type { Validator } from './types.ts';

export type { Validator, ValidationRequest, Validated } from './types.ts';
export { StaticValidator } from './static/static.ts';
export { NotaryV1Validator } from './notaryv1/notaryv1.ts';
export { CosignValidator } from './cosign/cosign.ts';
export { NotationValidator } from './notation/notation.ts';

export interface ValidatorDeps {
  readonly registry: RegistryClient;
  /** The `network:` section, for validators that talk to servers other than registries (Notary). */
  readonly network?: { readonly requestTimeoutMs: number; readonly maxRetries: number } | undefined;
  /** Sigstore trusted root for keyless cosign roots and transparency logs; default public-good. */
  readonly sigstore?: SigstoreTrust | undefined;
  /** The `registries:` section: a Notary server's credentials come from its entry there. */
  readonly registries?: readonly RegistryConfig[] | undefined;
  /**
   * The `cache:` section: cosign shares a digest's verified signatures between its tags for as long as
   * the verdict they lead to is cached (absent: only while in flight).
   */
  readonly cache?: { readonly ttlSeconds: number; readonly negativeTtlSeconds: number } | undefined;
}

/** What this replica has seen of Notary trust data outlives config reloads (rollback protection). */
const NOTARY_VERSIONS = new VersionMemory();

let publicGood: SigstoreTrust | undefined;

export function createValidator(config: ValidatorConfig, deps: ValidatorDeps): Validator {
  switch (config.type) {
    case 'static':
      return new StaticValidator(config.name, config.approve, deps.registry);
    case 'cosign':
      return new CosignValidator(config, {
        registry: deps.registry,
        sigstore: deps.sigstore ?? (publicGood ??= new SigstoreTrust()),
        verdictTtlSeconds:
          deps.cache === undefined
            ? undefined
            : { admitted: deps.cache.ttlSeconds, denied: deps.cache.negativeTtlSeconds },
      });
    case 'notaryv1':
      return new NotaryV1Validator(config, {
        versions: NOTARY_VERSIONS,
        requestTimeoutMs: deps.network?.requestTimeoutMs,
        maxRetries: deps.network?.maxRetries,
        credentials: notaryCredentials(config.host, deps.registries),
        registries: deps.registries,
      });
    case 'notation':
      return new NotationValidator(config, {
        registry: deps.registry,
        registries: deps.registries,
        requestTimeoutMs: deps.network?.requestTimeoutMs,
      });
  }
}

/**
 * Notary's token server wants the same kind of credentials a registry does: they come from the
 * `registries:` entry for the Notary host (`username`/`password`), as Docker's client takes them from its
 * config for that host.
 */
function notaryCredentials(
  host: string,
  registries: readonly RegistryConfig[] | undefined,
): NotaryCredentials | undefined {
  if (registries === undefined) return undefined;
  let key: string;
  try {
    key = notaryBaseUrl(host).host.toLowerCase();
  } catch {
    return undefined; // refused at load with a clear message (semantics)
  }
  const auth = new RegistryHosts(registries).lookup(key)?.auth;
  return auth !== undefined && 'username' in auth
    ? { username: auth.username, password: auth.password }
    : undefined;
}
