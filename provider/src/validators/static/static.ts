/**
 * The `static` validator: `approve: true` admits any image the rule covers, pinned to the digest the
 * registry serves for it; `approve: false` denies with Connaisseur's message.
 */
import type { RegistryClient } from '../../registry/index.ts';
import { ProvenantError } from '../../types/errors.ts';
import type { ValidationRequest, Validated, Validator } from '../types.ts';

export class StaticValidator implements Validator {
  readonly type = 'static';

  constructor(
    readonly name: string,
    private readonly approve: boolean,
    private readonly registry: RegistryClient,
  ) {}

  async validate({ image, rule, signal }: ValidationRequest): Promise<Validated> {
    if (!this.approve) {
      throw new ProvenantError(
        'POLICY_STATIC_DENY',
        `static deny for image ${image.original} using rule "${rule.pattern}" (validator ${this.name})`,
        { image: image.original },
      );
    }
    return { digest: await this.registry.resolveDigest(image, signal), signers: [] };
  }
}
