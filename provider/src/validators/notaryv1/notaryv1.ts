/**
 * The `notaryv1` validator (Docker Content Trust): the digest a tag points at is whatever the
 * repository's verified Notary trust data signs, never what the registry says. The TUF work lives in
 * trust/notaryv1; this class maps Connaisseur's config and rule options onto it.
 */
import { traceStep } from '../../observability/trace.ts';
import type { KeyObject } from 'node:crypto';

import type { RegistryConfig, RuleConfig, TrustRootConfig, ValidatorConfig } from '../../config/index.ts';
import type { ImageReference } from '../../reference/index.ts';
import {
  NotaryClient,
  parseTrustRootKey,
  signedDigest,
  verifyTrustData,
  VersionMemory,
  type PinnedKey,
} from '../../trust/notaryv1/index.ts';
import type { NotaryCredentials } from '../../trust/notaryv1/index.ts';
import { ProvenantError } from '../../types/errors.ts';
import type { ValidationRequest, Validated, Validator } from '../types.ts';

export type NotaryV1Config = Extract<ValidatorConfig, { type: 'notaryv1' }>;

export interface NotaryV1Options {
  /** The clock for expiry checks; tests move it, production leaves it alone. */
  readonly now?: () => Date;
  readonly requestTimeoutMs?: number;
  readonly maxRetries?: number;
  /** Versions seen so far; share one across config reloads so rollback protection survives them. */
  readonly versions?: VersionMemory;
  /** Basic credentials for the Notary server's token server (from its `registries:` entry). */
  readonly credentials?: NotaryCredentials | undefined;
  /** The `registries:` section, for the egress policy of the Notary client. */
  readonly registries?: readonly RegistryConfig[] | undefined;
}

/** The Notary GUN: registry and repository, with Docker Hub spelled `docker.io` (Connaisseur). */
export function gunOf(image: ImageReference): string {
  return image.name;
}

export class NotaryV1Validator implements Validator {
  readonly type = 'notaryv1';
  readonly name: string;
  private readonly client: NotaryClient;
  private readonly roots: ReadonlyMap<string, KeyObject>;
  private readonly versions: VersionMemory;
  private readonly now: () => Date;

  constructor(config: NotaryV1Config, options: NotaryV1Options = {}) {
    this.name = config.name;
    this.client = new NotaryClient({
      host: config.host,
      ca: config.cert,
      requestTimeoutMs: options.requestTimeoutMs,
      maxRetries: options.maxRetries,
      credentials: options.credentials,
      registries: options.registries,
    });
    this.roots = new Map(
      config.trustRoots.map((r: TrustRootConfig) => [r.name, parseTrustRootKey(r.key ?? '')]),
    );
    this.now = options.now ?? (() => new Date());
    this.versions = options.versions ?? new VersionMemory();
  }

  async validate({ image, rule, signal }: ValidationRequest): Promise<Validated> {
    const gun = gunOf(image);
    const pinned = this.pinned(rule, image);
    traceStep(
      'signature',
      `Notary v1 trust data of ${gun}: root.json must be signed by ${pinned.map((p) => p.name).join(' and ')}${rule.with?.delegations !== undefined ? `; delegations required: ${rule.with.delegations.join(', ')}` : ''}`,
    );
    const repo = await verifyTrustData({
      gun,
      image: image.original,
      pinned,
      requiredDelegations: requiredDelegations(rule),
      source: this.client.source(gun, image.original, signal),
      now: this.now(),
      versions: this.versions,
      scope: `${this.client.origin} ${gun}`,
    });
    const digest = signedDigest(repo, image, gun);
    traceStep('signature', `trust data verified; ${digest} signed by ${repo.signers.join(', ')}`);
    return { digest, signers: repo.signers };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** `trustRoot` names one root, or `*` for all of them (Connaisseur: every key must sign root.json). */
  private pinned(rule: RuleConfig, image: ImageReference): PinnedKey[] {
    const wanted = rule.with?.trustRoot ?? 'default';
    if (wanted === '*') return [...this.roots].map(([name, key]) => ({ name, key }));
    const key = this.roots.get(wanted);
    if (key === undefined) {
      // Config loading refuses this (semantics.ts); kept for a validator built without it.
      throw new ProvenantError(
        'CONFIG_INVALID',
        `rule "${rule.pattern}" for image ${image.original} names trust root "${wanted}", which validator ${this.name} does not have`,
        { image: image.original },
      );
    }
    return [{ name: wanted, key }];
  }
}

/** Connaisseur adds `targets/` to a delegation name that lacks it. */
export function requiredDelegations(rule: RuleConfig): string[] {
  return (rule.with?.delegations ?? []).map((d) => (d.startsWith('targets/') ? d : `targets/${d}`));
}
