/**
 * The trusted root validators read on the admission path. It is always in memory: a static
 * `sigstore.trustedRoot` file read at start, or the public-good root embedded in @sigstore/tuf. Reading
 * it never does I/O on a request; a later refresh (TUF) swaps the value, requests in flight keep theirs.
 */
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import { ProvenantError } from '../../types/errors.ts';
import { embeddedPublicGoodRoot, loadTrustedRootFile } from './trusted-root.ts';

export interface SigstoreTrustOptions {
  /** Path of a static trusted_root.json (private Sigstore); absent: public-good. */
  readonly trustedRoot?: string | undefined;
}

export class SigstoreTrust {
  private root: TrustedRoot | undefined;

  /** A static trusted root is read here, at start or reload, so a bad file never reaches a request. */
  constructor(options: SigstoreTrustOptions = {}) {
    if (options.trustedRoot === undefined) return;
    try {
      this.root = loadTrustedRootFile(options.trustedRoot);
    } catch (err) {
      throw new ProvenantError('CONFIG_UNREADABLE', `sigstore.trustedRoot: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** The current trusted root; the embedded public-good one is decoded on first use. */
  current(): TrustedRoot {
    this.root ??= embeddedPublicGoodRoot();
    return this.root;
  }

  /** Replaces the root (a TUF refresh); validators see it on their next signature. */
  update(root: TrustedRoot): void {
    this.root = root;
  }
}
