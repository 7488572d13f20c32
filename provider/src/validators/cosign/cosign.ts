/**
 * The `cosign` validator: the image's digest, every cosign signature stored for it (legacy `.sig` tag
 * and v3 bundle referrers), each checked against the trust roots the rule selects, then Connaisseur's
 * threshold / required rules. The answer is the admitted digest and the roots that vouched for it.
 */
import { traceStep } from '../../observability/trace.ts';
import type { RuleOptionsConfig, ValidatorConfig } from '../../config/index.ts';
import { parseReference } from '../../reference/index.ts';
import type { ImageReference } from '../../reference/index.ts';
import type { RegistryClient } from '../../registry/index.ts';
import { compileIdentityPattern, parsePublicKey } from '../../trust/cosign/index.ts';
import type { TrustedRoot } from '@sigstore/protobuf-specs';
import { overrideTrustedRoot, type SigstoreTrust, type TrustOverrides } from '../../trust/sigstore/index.ts';
import { ProvenantError, type ErrorCode } from '../../types/errors.ts';
import type { ValidationRequest, Validated, Validator } from '../types.ts';
import { loadAttestationRequirement } from './attestation-config.ts';
import { DigestMemo } from './digest-memo.ts';
import { checkAttestation, fetchAttestations, type AttestationRequirement } from './attestations.ts';
import { evaluatePolicy, selectRoots, type PolicyOutcome } from './policy.ts';
import { fetchSignatures, signatureId, type CosignSignature } from './signatures.ts';
import { warmUpLegacyCheck } from './warm-up.ts';
import { checkSignature, FAILURE_RANK, type Check, type CheckOptions, type RootMaterial } from './verify.ts';

type CosignValidatorConfig = Extract<ValidatorConfig, { type: 'cosign' }>;
type Rejection = Extract<Check, { ok: false }> & { readonly source: string };

/** What was found and checked for one repository@digest under one rule's options (see gather). */
interface Evidence {
  /** Readable signatures found. */
  readonly found: number;
  readonly tampered: readonly ProvenantError[];
  readonly outcome: PolicyOutcome;
  readonly rejections: ReadonlyMap<string, Rejection>;
  /** The attestation check, when one is required and the signatures met the policy. */
  readonly attestation?: AttestationEvidence | undefined;
  /** The Sigstore trusted root the checks consulted, if any. */
  readonly trustedRoot?: TrustedRoot | undefined;
}

type AttestationEvidence =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly predicateType: string;
      readonly signers: readonly string[];
      readonly found: number;
      readonly failures: readonly string[];
      readonly denied: boolean;
      readonly tampered: readonly ProvenantError[];
    };

/** Results remembered per validator: the distinct digests of about one audit request. */
const MEMO_ENTRIES = 2048;
/**
 * The longest a result is shared, whatever the verdict TTLs: the tags of one image arrive together (one
 * audit pass, one pod), and a verdict built from shared evidence is cached for its full TTL again, so
 * this bounds how much older than its TTL says an answer can be.
 */
export const MEMO_MAX_MS = 30_000;

export interface CosignValidatorDeps {
  readonly registry: RegistryClient;
  readonly sigstore: SigstoreTrust;
  /**
   * An attestation the signers must also have made (predicate type, optional Rego policy), already
   * loaded; when absent, the validator's `attestation:` config block is loaded instead.
   */
  readonly attestation?: AttestationRequirement | undefined;
  /**
   * How long the signatures verified for one repository@digest answer other tags of it (DigestMemo):
   * as long as the verdict cache keeps an admission / a denial (`cache.ttlSeconds`,
   * `cache.negativeTtlSeconds`). Absent: shared only while in flight.
   */
  readonly verdictTtlSeconds?: { readonly admitted: number; readonly denied: number } | undefined;
}

export class CosignValidator implements Validator {
  readonly type = 'cosign';
  readonly name: string;
  private readonly roots: ReadonlyMap<string, RootMaterial>;
  /** Per root, who stands behind it (signerOf). */
  private readonly signers: ReadonlyMap<string, string>;
  private readonly attestation: Promise<AttestationRequirement | undefined>;
  private readonly overrides: TrustOverrides | undefined;
  /** The shared root with this validator's `host.*` overrides applied, recomputed when it is refreshed. */
  private overridden: { base: TrustedRoot; root: TrustedRoot } | undefined;
  private readonly memo: DigestMemo<Evidence>;

  constructor(
    config: CosignValidatorConfig,
    private readonly deps: CosignValidatorDeps,
  ) {
    this.name = config.name;
    const ttl = deps.verdictTtlSeconds ?? { admitted: 0, denied: 0 };
    this.memo = new DigestMemo<Evidence>({
      ttlMs: (e) => Math.min(MEMO_MAX_MS, 1000 * (admits(e) ? ttl.admitted : ttl.denied)),
      max: MEMO_ENTRIES,
    });
    this.attestation =
      deps.attestation !== undefined
        ? Promise.resolve(deps.attestation)
        : config.attestation === undefined
          ? Promise.resolve(undefined)
          : loadAttestationRequirement(config.name, config.attestation);
    // Observed by ready(); a rejection must not also surface as an unhandled one.
    this.attestation.catch(() => undefined);
    this.roots = new Map(config.trustRoots.map((r) => [r.name, rootMaterial(config.name, r)]));
    this.signers = new Map([...this.roots].map(([name, root]) => [name, signerOf(root)]));
    const { rekorPubkey, ctLogPubkey, fulcioCert } = config.host ?? {};
    this.overrides =
      rekorPubkey === undefined && ctLogPubkey === undefined && fulcioCert === undefined
        ? undefined
        : { rekorPubkey, ctLogPubkey, fulcioCert };
    // Bad PEM in host.* is a configuration error: find it now, not on the first admission.
    if (this.overrides !== undefined) this.trustedRoot();
  }

  /** Resolves once the attestation policy (if any) is compiled; rejects with CONFIG_INVALID otherwise. */
  async ready(): Promise<void> {
    await this.attestation;
  }

  warmUp(): void {
    warmUpLegacyCheck(() => this.trustedRoot());
  }

  private trustedRoot(): TrustedRoot {
    const base = this.deps.sigstore.current();
    if (this.overrides === undefined) return base;
    if (this.overridden?.base !== base) {
      try {
        this.overridden = { base, root: overrideTrustedRoot(base, this.overrides) };
      } catch (err) {
        throw new ProvenantError(
          'CONFIG_INVALID',
          `validator ${this.name}, host: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    return this.overridden.root;
  }

  async validate({ image, rule, signal }: ValidationRequest): Promise<Validated> {
    const digest = await this.deps.registry.resolveDigest(image, signal);
    const { value: evidence, shared } = await this.memo.run(
      memoKey(image, digest, rule.with),
      signal,
      () => this.gather(image, digest, rule.with, signal),
      (e) => e.trustedRoot === undefined || e.trustedRoot === this.trustedRoot(),
      () =>
        new ProvenantError(
          'REGISTRY_TIMEOUT',
          `the signatures of ${image.original} (${digest}) were not fetched and verified in time`,
          { image: image.original },
        ),
    );
    if (shared)
      traceStep(
        'signature',
        `the signatures of ${image.registry}/${image.repository}@${digest} were verified for this rule by a concurrent or recent request: its result is used`,
      );
    return this.judge(evidence, image, digest);
  }

  /**
   * Everything the verdict depends on besides the name the image was asked by: fetched and checked once
   * per repository, digest and rule options (DigestMemo). Throws only when it could not look (transient
   * or access failures), which is never remembered.
   */
  private async gather(
    image: ImageReference,
    digest: string,
    ruleOptions: RuleOptionsConfig | undefined,
    signal: AbortSignal,
  ): Promise<Evidence> {
    const selection = selectRoots(ruleOptions, [...this.roots.keys()]);
    const { items: signatures, tampered } = await fetchSignatures(this.deps.registry, image, digest, signal);
    traceStep(
      'signature',
      `${signatures.length} cosign signature(s) found for ${digest}${tampered.length > 0 ? `, ${tampered.length} skipped: bytes not matching their digest` : ''}; roots checked: ${selection.roots.join(', ')}${selection.threshold > 0 ? `, distinct signers needed: ${selection.threshold}` : ''}${selection.required.length > 0 ? `, required: ${selection.required.join(', ')}` : ''}`,
    );
    let trustedRoot: TrustedRoot | undefined;
    const options: CheckOptions = {
      digest,
      verifyTlog: ruleOptions?.verifyInTransparencyLog ?? true,
      verifySct: ruleOptions?.verifySCT ?? true,
      // Recorded, so that a remembered result is not reused once a TUF refresh replaced the root.
      trustedRoot: () => (trustedRoot = this.trustedRoot()),
    };
    if (signatures.length === 0)
      return { found: 0, tampered, outcome: { ok: false, reason: 'none' }, rejections: new Map() };
    const valid = new Map<string, ReadonlySet<string>>();
    const rejections = new Map<string, Rejection>();
    for (const name of selection.roots) {
      const { ids, best } = this.checkRoot(name, signatures, options);
      valid.set(name, ids);
      if (best !== undefined) rejections.set(name, best);
    }
    const outcome = evaluatePolicy(selection, valid, (root) => this.signerOf(root));
    traceStep('signature', `policy: ${describeOutcome(outcome)}`);
    const requirement = await this.attestation;
    const attestation =
      outcome.ok && requirement !== undefined
        ? await this.checkAttestations(image, digest, outcome.signers, options, requirement, signal)
        : undefined;
    return { found: signatures.length, tampered, outcome, rejections, attestation, trustedRoot };
  }

  /** The verdict for the image as it was asked for: its digest and signers, or an error naming it. */
  private judge(evidence: Evidence, image: ImageReference, digest: string): Validated {
    const { outcome, tampered, attestation } = evidence;
    if (evidence.found === 0) {
      throwIfTampered(tampered, image, digest, 'no readable cosign signature');
      throw this.error(
        'COSIGN_NO_SIGNATURES',
        image,
        `image ${image.original} (${digest}) has no cosign signature: expected a ${digest.replace(':', '-')}.sig tag or a Sigstore bundle referrer, found neither`,
      );
    }
    if (!outcome.ok) {
      throwIfTampered(tampered, image, digest, 'too few valid cosign signatures');
      throw this.rejection(outcome, image, digest, evidence.rejections);
    }
    if (attestation !== undefined && !attestation.ok) throw this.attestationError(attestation, image, digest);
    return { digest, signers: outcome.signers };
  }

  /** At least one attestation of the required type by a root that signed, allowed by the policy. */
  private async checkAttestations(
    image: ImageReference,
    digest: string,
    signers: readonly string[],
    options: CheckOptions,
    requirement: AttestationRequirement,
    signal: AbortSignal,
  ): Promise<AttestationEvidence> {
    const { items: attestations, tampered } = await fetchAttestations(
      this.deps.registry,
      image,
      digest,
      signal,
    );
    const failures: string[] = [];
    let denied = false;
    for (const name of signers) {
      const root = this.roots.get(name);
      if (root === undefined) continue;
      for (const attestation of attestations) {
        const check = checkAttestation(attestation, root, options, requirement);
        if (check.ok) return { ok: true };
        if (check.failure === 'policy') denied = true;
        if (check.failure !== 'malformed' || attestations.length === 1)
          failures.push(`${name}: ${check.detail} (${attestation.source})`);
      }
    }
    return {
      ok: false,
      predicateType: requirement.predicateType,
      signers,
      found: attestations.length,
      failures,
      denied,
      tampered,
    };
  }

  private attestationError(
    a: Extract<AttestationEvidence, { ok: false }>,
    image: ImageReference,
    digest: string,
  ): ProvenantError {
    throwIfTampered(a.tampered, image, digest, `no valid ${a.predicateType} attestation`);
    const found = a.failures.length === 0 ? '' : ` (${a.failures.join('; ')})`;
    if (a.denied) {
      return this.error(
        'COSIGN_ATTESTATION_DENIED',
        image,
        `image ${image.original} (${digest}) has a verified ${a.predicateType} attestation, but the policy rejects its predicate: expected an attestation the policy allows${found}`,
      );
    }
    return this.error(
      'COSIGN_ATTESTATION_MISSING',
      image,
      `image ${image.original} (${digest}) has no ${a.predicateType} attestation by its signers (${a.signers.join(', ')}): expected one, found ${a.found} attestation(s) or bundles, none valid${found}`,
    );
  }

  private checkRoot(
    name: string,
    signatures: readonly CosignSignature[],
    options: CheckOptions,
  ): { ids: ReadonlySet<string>; best: Rejection | undefined } {
    const root = this.root(name);
    const ids = new Set<string>();
    let best: Rejection | undefined;
    for (const sig of signatures) {
      const check = checkSignature(sig, root, options);
      traceStep(
        'signature',
        check.ok
          ? `${sig.source}: counts for trust root "${name}"`
          : `${sig.source}: does not count for trust root "${name}": ${check.failure}: ${check.detail}`,
      );
      if (check.ok) ids.add(signatureId(sig));
      else if (best === undefined || FAILURE_RANK[check.failure] > FAILURE_RANK[best.failure])
        best = { ...check, source: sig.source };
    }
    return { ids, best };
  }

  private root(name: string): RootMaterial {
    const root = this.roots.get(name);
    // Config loading refuses rules naming unknown roots; this guards a programming error.
    if (root === undefined) throw new Error(`validator ${this.name} has no trust root ${name}`);
    return root;
  }

  /** Who stands behind a root (computed once per root: exporting a key costs more than a verification). */
  private signerOf(name: string): string {
    const signer = this.signers.get(name);
    // Config loading refuses rules naming unknown roots; this guards a programming error.
    if (signer === undefined) throw new Error(`validator ${this.name} has no trust root ${name}`);
    return signer;
  }

  private rejection(
    outcome: Exclude<PolicyOutcome, { ok: true }>,
    image: ImageReference,
    digest: string,
    rejections: ReadonlyMap<string, Rejection>,
  ): ProvenantError {
    const why = [...rejections]
      .map(([root, r]) => `trust root "${root}": ${r.detail} (${r.source})`)
      .join('; ');
    const because = why === '' ? '' : ` (${why})`;
    switch (outcome.reason) {
      case 'threshold':
        return this.error(
          'COSIGN_THRESHOLD_NOT_MET',
          image,
          `image ${image.original} (${digest}) has too few valid cosign signatures: expected at least ${outcome.needed} from distinct signers, found ${outcome.found}${because}`,
        );
      case 'required':
        return this.error(
          'COSIGN_REQUIRED_SIGNER_MISSING',
          image,
          `image ${image.original} (${digest}) lacks signatures from required trust roots: expected ${outcome.missing.map((r) => `"${r}"`).join(', ')} to sign, found no valid signature from them${because}`,
        );
      case 'none':
        return this.noValidSignature(image, digest, rejections);
    }
  }

  /** A single named root without any valid signature: say what came closest, with its own code. */
  private noValidSignature(
    image: ImageReference,
    digest: string,
    rejections: ReadonlyMap<string, Rejection>,
  ): ProvenantError {
    const [root, r] =
      [...rejections].sort(([, a], [, b]) => FAILURE_RANK[b.failure] - FAILURE_RANK[a.failure])[0] ?? [];
    if (root === undefined || r === undefined) {
      return this.error(
        'COSIGN_SIGNATURE_INVALID',
        image,
        `image ${image.original} (${digest}) has no valid cosign signature`,
      );
    }
    const subject = `image ${image.original} (${digest})`;
    const at = `trust root "${root}", ${r.source}`;
    switch (r.failure) {
      case 'malformed':
        return this.error(
          'COSIGN_SIGNATURE_MALFORMED',
          image,
          `${subject} has no readable cosign signature: ${r.detail} (${at})`,
        );
      case 'signature':
        return this.error(
          'COSIGN_SIGNATURE_INVALID',
          image,
          `${subject} is not signed by trust root "${root}": expected a signature by its ${this.roots.get(root)?.kind === 'keyless' ? 'keyless identity' : 'key'}, found only signatures that do not verify (${r.detail}; ${r.source})`,
        );
      case 'certificate':
        return this.error('COSIGN_CERTIFICATE_INVALID', image, `${subject}: ${r.detail} (${at})`);
      case 'identity':
        return this.error('COSIGN_IDENTITY_MISMATCH', image, `${subject}: ${r.detail} (${r.source})`);
      case 'digest':
        return this.digestError(image, digest, r, at);
      case 'tlog-missing':
        return this.error(
          'COSIGN_TLOG_MISSING',
          image,
          `${subject}: expected a transparency log entry (verifyInTransparencyLog), found none: ${r.detail} (${at})`,
        );
      case 'tlog-invalid':
        return this.error('COSIGN_TLOG_INVALID', image, `${subject}: ${r.detail} (${at})`);
    }
  }

  /** A copied signature names another repository; a payload for another digest names this one. */
  private digestError(image: ImageReference, digest: string, r: Rejection, at: string): ProvenantError {
    const found = r.claim?.digests.join(', ') || 'no digest';
    const signedFor = r.claim?.dockerReference;
    if (signedFor !== undefined && !sameRepository(signedFor, image)) {
      return this.error(
        'COSIGN_SIGNATURE_COPIED',
        image,
        `image ${image.original} (${digest}) carries a signature made for another image: expected a payload for ${image.registry}/${image.repository}@${digest}, found one for ${signedFor}@${found} (${at})`,
      );
    }
    return this.error(
      'COSIGN_DIGEST_MISMATCH',
      image,
      `image ${image.original} has a signature for another digest: expected ${digest}, found ${found} (${at})`,
    );
  }

  private error(code: ErrorCode, image: ImageReference, message: string): ProvenantError {
    return new ProvenantError(code, `${message} [validator ${this.name}]`, { image: image.original });
  }
}

function rootMaterial(validator: string, root: CosignValidatorConfig['trustRoots'][number]): RootMaterial {
  try {
    return parseRootMaterial(root);
  } catch (err) {
    throw new ProvenantError(
      'CONFIG_INVALID',
      `validator ${validator}, trust root "${root.name}": ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Config semantics guarantee key or keyless and RE2 patterns; this re-checks for validators built without it. */
function parseRootMaterial(root: CosignValidatorConfig['trustRoots'][number]): RootMaterial {
  if (root.key !== undefined) return { name: root.name, kind: 'key', key: parsePublicKey(root.key) };
  const k = root.keyless;
  if (k === undefined) throw new Error('expected key or keyless');
  return {
    name: root.name,
    kind: 'keyless',
    identity: {
      issuer: k.issuer,
      subject: k.subject,
      issuerRegex: k.issuerRegex === undefined ? undefined : compileIdentityPattern(k.issuerRegex),
      subjectRegex: k.subjectRegex === undefined ? undefined : compileIdentityPattern(k.subjectRegex),
    },
  };
}

/** Who stands behind a root: its key, or its keyless identity; two roots with one signer count once. */
function signerOf(root: RootMaterial): string {
  if (root.kind === 'key')
    return `key:${root.key.key.export({ type: 'spki', format: 'der' }).toString('base64')}`;
  const { issuer, issuerRegex, subject, subjectRegex } = root.identity;
  return `keyless:${JSON.stringify([issuer, issuerRegex?.source, subject, subjectRegex?.source])}`;
}

/**
 * When nothing admits the image, tampering wins over any other explanation: a signature object whose
 * bytes do not match its digest is an attack (or a broken proxy), not an unsigned image.
 */
function throwIfTampered(
  tampered: readonly ProvenantError[],
  image: ImageReference,
  digest: string,
  found: string,
): void {
  const first = tampered[0];
  if (first === undefined) return;
  throw new ProvenantError(
    first.code,
    `image ${image.original} (${digest}) has ${found}, and ${tampered.length} signature object(s) in the registry were tampered with: ${first.message}`,
    { image: image.original, cause: first },
  );
}

/** Whether the evidence leads to an admission (judge returns rather than throws). */
function admits(e: Evidence): boolean {
  return e.found > 0 && e.outcome.ok && (e.attestation === undefined || e.attestation.ok);
}

/**
 * What a shared result may answer: the same repository and digest at the same registry, under rule
 * options that are the same, verbatim (options written differently only miss the memo). The validator
 * (its roots, attestation policy, host overrides) is fixed per memo, which belongs to the instance.
 */
export function memoKey(
  image: ImageReference,
  digest: string,
  options: RuleOptionsConfig | undefined,
): string {
  return JSON.stringify([image.registry, image.repository, digest, options ?? null]);
}

function sameRepository(dockerReference: string, image: ImageReference): boolean {
  try {
    const signed = parseReference(dockerReference);
    return signed.registry === image.registry && signed.repository === image.repository;
  } catch {
    return false;
  }
}

/** A policy outcome in words, for verify --explain. */
function describeOutcome(outcome: PolicyOutcome): string {
  if (outcome.ok) return `met by ${outcome.signers.join(', ')}`;
  switch (outcome.reason) {
    case 'threshold':
      return `not met: ${outcome.found} distinct signer(s), ${outcome.needed} needed`;
    case 'required':
      return `not met: required signer(s) missing: ${outcome.missing.join(', ')}`;
    case 'none':
      return 'not met: no checked trust root has a valid signature';
  }
}
