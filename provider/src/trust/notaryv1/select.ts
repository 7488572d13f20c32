/**
 * Which digest the trust data signs for an image: the target named by the tag in every accepted role
 * (they must agree), or — for a digest reference — a target with that digest in every accepted role.
 * Notary stores a target's sha256 over the image manifest, which is the manifest's digest.
 */
import type { ImageReference } from '../../reference/index.ts';
import { ProvenantError, type ErrorCode } from '../../types/errors.ts';
import type { FileMeta } from './metadata.ts';
import type { TrustedRepository } from './verify.ts';

export function signedDigest(repo: TrustedRepository, image: ImageReference, gun: string): string {
  const fail = (code: ErrorCode, detail: string): ProvenantError =>
    new ProvenantError(code, `trust data of ${gun} for image ${image.original}: ${detail}`, {
      image: image.original,
    });
  const accepted = repo.accepted.map((role) => ({
    role,
    targets: repo.roles.get(role) ?? new Map<string, FileMeta>(),
  }));
  const roles = repo.accepted.join(', ');

  if (!image.hadTag && image.digest !== undefined) {
    const missing = accepted.filter(
      ({ targets }) => ![...targets.values()].some((t) => digestOf(t) === image.digest),
    );
    if (missing.length > 0) {
      throw fail(
        'NOTARY_DIGEST_NOT_SIGNED',
        `expected a target with digest ${image.digest} signed by ${missing.map((m) => m.role).join(', ')}, found none`,
      );
    }
    return image.digest;
  }

  const tag = image.tag ?? 'latest';
  const missing = accepted.filter(({ targets }) => !targets.has(tag)).map((m) => m.role);
  if (missing.length > 0) {
    const others = [...repo.roles]
      .filter(([role, t]) => !repo.accepted.includes(role) && t.has(tag))
      .map(([r]) => r);
    if (others.length > 0 || missing.length < accepted.length) {
      throw fail(
        'NOTARY_DELEGATION_NOT_SIGNED',
        `expected tag '${tag}' signed by ${roles}, found it not signed by ${missing.join(', ')}${others.length > 0 ? ` (signed only by ${others.join(', ')}, which the rule does not accept)` : ''}`,
      );
    }
    throw fail(
      'NOTARY_TAG_NOT_SIGNED',
      `expected a target for tag '${tag}' in ${roles}, found none (validated targets don't contain reference: no tag '${tag}' found in targets)`,
    );
  }
  const digests = new Set(accepted.map(({ targets }) => digestOf(targets.get(tag) as FileMeta)));
  if (digests.size !== 1) {
    throw fail(
      'NOTARY_AMBIGUOUS_DIGEST',
      `expected one digest for tag '${tag}' across ${roles}, found ${digests.size}: ${[...digests].join(', ')}`,
    );
  }
  const digest = [...digests][0] as string;
  if (image.digest !== undefined && image.digest !== digest) {
    throw fail(
      'NOTARY_DIGEST_NOT_SIGNED',
      `expected digest ${image.digest} for tag '${tag}', found ${digest} signed`,
    );
  }
  return digest;
}

function digestOf(target: FileMeta): string {
  return `sha256:${target.hashes['sha256'] ?? ''}`;
}
