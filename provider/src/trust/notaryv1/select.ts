/**
 * Which digest the trust data signs for an image: the target named by the tag in every accepted role
 * (they must agree), or — for a digest reference — a target with that digest in every accepted role.
 * A Notary target's hashes are over the image manifest, so its sha256 is the manifest's digest.
 */
import type { ImageReference } from '../../reference/index.ts';
import { ProvenantError, type ErrorCode } from '../../types/errors.ts';
import type { FileMeta } from './metadata.ts';
import type { TrustedRepository } from './verify.ts';

type Fail = (code: ErrorCode, detail: string) => ProvenantError;

export function signedDigest(repo: TrustedRepository, image: ImageReference, gun: string): string {
  const fail: Fail = (code, detail) =>
    new ProvenantError(code, `trust data of ${gun} for image ${image.original}: ${detail}`, {
      image: image.original,
    });
  if (!image.hadTag && image.digest !== undefined) return signedAsDigest(repo, image.digest, fail);
  const digest = signedForTag(repo, image.tag ?? 'latest', fail);
  if (image.digest !== undefined && image.digest !== digest) {
    throw fail(
      'NOTARY_DIGEST_NOT_SIGNED',
      `expected digest ${image.digest} for tag '${image.tag ?? 'latest'}', found ${digest} signed`,
    );
  }
  return digest;
}

/** `repo@digest`: every accepted role must have some target with that digest. */
function signedAsDigest(repo: TrustedRepository, digest: string, fail: Fail): string {
  const [alg = '', hex = ''] = digest.split(':');
  const missing = repo.accepted.filter(
    (role) => ![...(repo.roles.get(role)?.values() ?? [])].some((t) => t.hashes[alg] === hex),
  );
  if (missing.length > 0) {
    throw fail(
      'NOTARY_DIGEST_NOT_SIGNED',
      `expected a target with digest ${digest} signed by ${missing.join(', ')}, found none`,
    );
  }
  return digest;
}

function signedForTag(repo: TrustedRepository, tag: string, fail: Fail): string {
  const roles = repo.accepted.join(', ');
  const targets = repo.accepted.map((role) => repo.roles.get(role)?.get(tag));
  const missing = repo.accepted.filter((_, i) => targets[i] === undefined);
  if (missing.length > 0) {
    const others = [...repo.roles]
      .filter(([role, t]) => !repo.accepted.includes(role) && t.has(tag))
      .map(([role]) => role);
    if (others.length === 0 && missing.length === repo.accepted.length) {
      throw fail(
        'NOTARY_TAG_NOT_SIGNED',
        `expected a target for tag '${tag}' in ${roles}, found none (validated targets don't contain reference: no tag '${tag}' found in targets)`,
      );
    }
    const by = missing.length === repo.accepted.length ? 'signed only by' : 'also signed by';
    const note = others.length > 0 ? ` (${by} ${others.join(', ')}, which the rule does not accept)` : '';
    throw fail(
      'NOTARY_DELEGATION_NOT_SIGNED',
      `expected tag '${tag}' signed by ${roles}, found it not signed by ${missing.join(', ')}${note}`,
    );
  }
  const digests = new Set(targets.map((t) => digestOf(t as FileMeta)));
  if (digests.size !== 1) {
    throw fail(
      'NOTARY_AMBIGUOUS_DIGEST',
      `expected one digest for tag '${tag}' across ${roles}, found ${digests.size}: ${[...digests].join(', ')}`,
    );
  }
  return [...digests][0] as string;
}

function digestOf(target: FileMeta): string {
  return `sha256:${target.hashes['sha256'] ?? ''}`;
}
