/**
 * The `notation` validator (Notary Project signatures, as Connaisseur 3.9+ and `notation verify` check
 * them): the image's manifest, every Notary signature attached to it (referrers API, or the referrers
 * tag `sha256-<hex>` on registries without it), each verified against the trust roots the rule selects
 * at the rule's verification level (trust/notation). One signature that passes admits the image.
 */
import { traceStep } from '../../observability/trace.ts';
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RegistryConfig, RuleConfig, ValidatorConfig } from '../../config/index.ts';
import type { ImageReference } from '../../reference/index.ts';
import type { Descriptor, Manifest, RegistryClient } from '../../registry/index.ts';
import { EgressPolicy } from '../../registry/egress.ts';
import { Transport } from '../../registry/transport.ts';
// Values come from the small modules; the verifier itself (JOSE, COSE, CMS and X.509 parsing: jose,
// cbor-x, pkijs, asn1js) is loaded on the first signature checked, so a process without Notation
// signatures to check never holds it (see README.md, Performance).
import { LEVEL_ACTIONS } from '../../trust/notation/levels.ts';
import {
  COSE_MEDIA_TYPE,
  JWS_MEDIA_TYPE,
  SIGNATURE_ARTIFACT_TYPE,
} from '../../trust/notation/media-types.ts';
import { parseCertificates } from '../../trust/notation/trust-roots.ts';
import {
  identityTrusted,
  parseTrustPolicies,
  policyFor,
  type TrustPolicy,
} from '../../trust/notation/trust-policy.ts';
import type { RevocationFetch, SignatureOutcome, TrustedCertificate } from '../../trust/notation/index.ts';
import { ProvenantError, type ErrorCode } from '../../types/errors.ts';
import { merged, unlessBroken, type Fetched } from '../cosign/signatures.ts';
import type { ValidationRequest, Validated, Validator } from '../types.ts';
import type * as NotationVerify from '../../trust/notation/verify.ts';

export type NotationValidatorConfig = Extract<ValidatorConfig, { type: 'notation' }>;

/** notation-go reads at most 50 signatures per artifact (`maxSignatureAttempts` default). */
export const MAX_NOTATION_SIGNATURES = 50;
/** An envelope is a few KiB (payload, a chain of a few certificates, a timestamp token). */
export const MAX_ENVELOPE_BYTES = 256 * 1024;

/** All OCSP and CRL requests of one verification together (ms): well inside the default request deadline. */
export const REVOCATION_BUDGET_MS = 1500;
/** A CRL of a code-signing CA is small; an OCSP answer a few KiB. */
export const MAX_REVOCATION_BYTES = 4 * 1024 * 1024;

/** Which failure explains a rejection best: the one that got furthest through the checks. */
const FAILURE_RANK: readonly ErrorCode[] = [
  'NOTATION_ENVELOPE_MALFORMED',
  'NOTATION_SIGNATURE_INVALID',
  'NOTATION_CERTIFICATE_INVALID',
  'NOTATION_CERTIFICATE_UNTRUSTED',
  'NOTATION_IDENTITY_UNTRUSTED',
  'NOTATION_TIMESTAMP_INVALID',
  'NOTATION_CERTIFICATE_EXPIRED',
  'NOTATION_EXPIRED',
  'NOTATION_REVOCATION_UNKNOWN',
  'NOTATION_REVOKED',
  'NOTATION_DIGEST_MISMATCH',
];

interface StoredSignature {
  /** The signature manifest's digest, to name it in messages. */
  readonly source: string;
  readonly mediaType: string;
  readonly envelope: Buffer;
}

export interface NotationValidatorDeps {
  readonly registry: RegistryClient;
  /** The `registries:` section: hosts it names are reachable for OCSP and CRLs at any address. */
  readonly registries?: readonly RegistryConfig[] | undefined;
  readonly requestTimeoutMs?: number | undefined;
  /** The clock for validity checks; tests move it, production leaves it alone. */
  readonly now?: () => Date;
}

export class NotationValidator implements Validator {
  readonly type = 'notation';
  readonly name: string;
  private readonly roots: ReadonlyMap<string, readonly X509Certificate[]>;
  /** Each root's `tsCert`: the TSA certificates that vouch for timestamps on its signatures. */
  private readonly tsaRoots: ReadonlyMap<string, readonly X509Certificate[]>;
  private readonly now: () => Date;
  /** The validator's trustpolicy.json, when it names one: it replaces the rules' `with` options. */
  private readonly policies: readonly TrustPolicy[] | undefined;
  /** OCSP and CRL requests, through the egress policy (purpose `revocation`). */
  private readonly transport: Transport;

  constructor(
    config: NotationValidatorConfig,
    private readonly deps: NotationValidatorDeps,
  ) {
    this.name = config.name;
    this.roots = new Map(
      config.trustRoots.map((r) => [r.name, parseCertificates(r.cert ?? '', config.name, r.name)]),
    );
    this.tsaRoots = new Map(
      config.trustRoots.map((r) => [
        r.name,
        r.tsCert === undefined ? [] : parseCertificates(r.tsCert, config.name, r.name),
      ]),
    );
    this.now = deps.now ?? (() => new Date());
    this.policies = config.trustPolicy === undefined ? undefined : loadTrustPolicies(config, this.roots);
    this.transport = new Transport({
      requestTimeoutMs: deps.requestTimeoutMs ?? REVOCATION_BUDGET_MS,
      maxRetries: 0,
      egress: new EgressPolicy({ registries: deps.registries ?? [] }),
    });
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  async validate({ image, rule, signal }: ValidationRequest): Promise<Validated> {
    const manifest = await this.deps.registry.fetchManifest(
      image,
      image.digest ?? image.tag ?? 'latest',
      signal,
    );
    const { digest } = manifest;
    const policy = this.trustPolicy(image);
    // A skip policy admits without looking at signatures (trust-store-trust-policy.md, level skip).
    if (policy?.level === 'skip')
      return { digest, signers: [], notes: [`skip: trust policy ${policy.name} verifies nothing`] };
    const { items: signatures, tampered } = await this.fetchSignatures(image, digest, signal);
    if (signatures.length === 0) {
      if (tampered[0] !== undefined) throw tampered[0];
      throw new ProvenantError(
        'NOTATION_NO_SIGNATURES',
        `image ${image.original} (${digest}) has no Notation signature: expected a referrer of artifact type ${SIGNATURE_ARTIFACT_TYPE}, found none`,
        { image: image.original },
      );
    }
    const level = policy?.level ?? rule.with?.verificationLevel ?? 'strict';
    const trusted = policy === undefined ? this.selectRoots(rule, image) : this.storeCertificates(policy);
    const tsaNames =
      policy === undefined
        ? [...new Set(trusted.map((t) => t.name))]
        : policy.trustStores.filter((t) => t.type === 'tsa').map((t) => t.name);
    const options = {
      target: { mediaType: manifest.mediaType, digest, size: manifest.body.length },
      trusted,
      actions: policy?.actions ?? LEVEL_ACTIONS[level],
      now: this.now(),
      tsaRoots: tsaNames.flatMap((name) =>
        policy === undefined ? (this.tsaRoots.get(name) ?? []) : this.tsaStore(name),
      ),
      verifyTimestamp: policy?.verifyTimestamp ?? rule.with?.verifyTimestamp ?? 'always',
      identityTrusted:
        policy === undefined ? undefined : (leaf: X509Certificate) => identityTrusted(policy, leaf),
      fetchRevocation: this.revocationFetch(image, signal),
    };
    const outcomes: { source: string; outcome: SignatureOutcome }[] = [];
    traceStep(
      'signature',
      `${signatures.length} Notation signature(s) found for ${digest}; level ${level}; trusted certificates of: ${[...new Set(trusted.map((t) => t.name))].join(', ')}`,
    );
    for (const s of signatures) {
      const outcome = await (await notationVerifier()).verifySignature(s.mediaType, s.envelope, options);
      traceStep(
        'signature',
        outcome.ok
          ? `${s.source}: counts, chains to ${outcome.roots.join(', ') || 'no root'}${outcome.logged.length > 0 ? ` (logged only: ${outcome.logged.map((f) => f.code).join(', ')})` : ''}`
          : `${s.source}: does not count: ${outcome.failure.code}: ${outcome.failure.detail}`,
      );
      outcomes.push({ source: s.source, outcome });
    }
    const passed = outcomes.flatMap(({ outcome }) => (outcome.ok ? [outcome] : []));
    const best = passed.find((o) => o.logged.length === 0) ?? passed[0];
    if (best !== undefined) {
      // A level that only logs a failure admits; the item's value says what it let through.
      const notes = best.logged.map((f) => `${level}: admitted despite ${f.code} (${f.detail})`);
      return { digest, signers: best.roots, notes };
    }
    throw this.rejection(image, digest, trusted, outcomes);
  }

  /**
   * GETs of OCSP responders and CRLs for one verification: all of them share one time budget inside the
   * request's deadline, so a slow responder costs at most REVOCATION_BUDGET_MS, then counts as no answer.
   */
  private revocationFetch(image: ImageReference, signal: AbortSignal): RevocationFetch {
    const budget = AbortSignal.any([signal, AbortSignal.timeout(REVOCATION_BUDGET_MS)]);
    return async (url) => {
      const res = await this.transport.send({
        method: 'GET',
        url,
        // One request per connection: responders are not registries (openssl ocsp serves one
        // connection at a time, and a kept-alive one would hold it).
        headers: { accept: 'application/ocsp-response, application/pkix-crl', connection: 'close' },
        maxBytes: MAX_REVOCATION_BYTES,
        signal: budget,
        image: image.original,
        purpose: 'revocation',
      });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      return res.body;
    };
  }

  /**
   * With a trustpolicy.json, the policy of the image's repository (`registry/repository`), else its `*`
   * policy; no policy for the image is a rejection, as in `notation verify`.
   */
  private trustPolicy(image: ImageReference): TrustPolicy | undefined {
    if (this.policies === undefined) return undefined;
    const policy = policyFor(this.policies, `${image.registry}/${image.repository}`);
    if (policy !== undefined) return policy;
    throw new ProvenantError(
      'NOTATION_NO_TRUST_POLICY',
      `image ${image.original}: expected a trust policy of validator ${this.name} whose registryScopes name ${image.registry}/${image.repository} (or "*"), found none`,
      { image: image.original },
    );
  }

  /** A policy's `ca:` and `signingAuthority:` stores: the named roots' certificates. */
  private storeCertificates(policy: TrustPolicy): TrustedCertificate[] {
    return policy.trustStores.flatMap(({ type, name }) =>
      type === 'tsa' ? [] : (this.roots.get(name) ?? []).map((cert) => ({ name, cert, type })),
    );
  }

  /** A policy's `tsa:NAME` store: that root's tsCert, or its cert when it has none. */
  private tsaStore(name: string): readonly X509Certificate[] {
    const tsCerts = this.tsaRoots.get(name) ?? [];
    return tsCerts.length > 0 ? tsCerts : (this.roots.get(name) ?? []);
  }

  /** `with.trustRoot`: one name, or `*` for any root (Connaisseur: OR over the roots). */
  private selectRoots(rule: RuleConfig, image: ImageReference): TrustedCertificate[] {
    const wanted = rule.with?.trustRoot ?? 'default';
    const names = wanted === '*' ? [...this.roots.keys()] : [wanted];
    return names.flatMap((name) => {
      const certs = this.roots.get(name);
      if (certs === undefined)
        // Config loading refuses this (semantics.ts); kept for a validator built without it.
        throw new ProvenantError(
          'CONFIG_INVALID',
          `rule "${rule.pattern}" for image ${image.original} names trust root "${name}", which validator ${this.name} does not have`,
          { image: image.original },
        );
      return certs.map((cert) => ({ name, cert, type: 'ca' as const }));
    });
  }

  private rejection(
    image: ImageReference,
    digest: string,
    trusted: readonly TrustedCertificate[],
    outcomes: readonly { source: string; outcome: SignatureOutcome }[],
  ): ProvenantError {
    const failures = outcomes.flatMap(({ source, outcome }) =>
      outcome.ok ? [] : [{ source, ...outcome.failure }],
    );
    const worst = failures.reduce((a, b) =>
      FAILURE_RANK.indexOf(b.code) > FAILURE_RANK.indexOf(a.code) ? b : a,
    );
    const roots = [...new Set(trusted.map((t) => t.name))].join(', ');
    return new ProvenantError(
      worst.code,
      `image ${image.original} (${digest}) has no valid Notation signature for trust root(s) ${roots}: ${worst.detail} (signature ${worst.source}; ${failures.length} signature(s) checked)`,
      { image: image.original },
    );
  }

  /** Signature manifests naming the image as subject; one broken signature does not hide the others. */
  private async fetchSignatures(
    image: ImageReference,
    digest: string,
    signal: AbortSignal,
  ): Promise<Fetched<StoredSignature>> {
    const referrers = await this.deps.registry.listReferrers(image, digest, signal, {
      artifactType: SIGNATURE_ARTIFACT_TYPE,
    });
    const found = await Promise.all(
      referrers
        .slice(0, MAX_NOTATION_SIGNATURES)
        .map((d) => unlessBroken(() => this.fetchSignature(image, digest, d, signal))),
    );
    return merged(found);
  }

  private async fetchSignature(
    image: ImageReference,
    digest: string,
    referrer: Descriptor,
    signal: AbortSignal,
  ): Promise<StoredSignature[]> {
    const manifest: Manifest = await this.deps.registry.fetchManifest(image, referrer.digest, signal);
    // The referrers tag anyone can push to may list manifests about other images.
    if (manifest.subject?.digest !== digest) return [];
    const layer = manifest.layers[0];
    if (manifest.layers.length !== 1 || layer === undefined) return [];
    if (layer.mediaType !== JWS_MEDIA_TYPE && layer.mediaType !== COSE_MEDIA_TYPE) return [];
    const envelope = await this.deps.registry.fetchBlob(image, layer, signal, MAX_ENVELOPE_BYTES);
    return [{ source: referrer.digest, mediaType: layer.mediaType, envelope }];
  }
}

/** Reads and checks `trustPolicy` (a path resolved against the config file at load). */
function loadTrustPolicies(
  config: NotationValidatorConfig,
  roots: ReadonlyMap<string, unknown>,
): TrustPolicy[] {
  const file = config.trustPolicy as string;
  try {
    return parseTrustPolicies(readFileSync(file, 'utf8'), new Set(roots.keys()));
  } catch (err) {
    throw new ProvenantError(
      'CONFIG_INVALID',
      `validator ${config.name}, trustPolicy ${file}: expected a Notation trust policy document, found: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

let verifier: Promise<typeof NotationVerify> | undefined;
function notationVerifier(): Promise<typeof NotationVerify> {
  return (verifier ??= import('../../trust/notation/verify.ts'));
}
