/**
 * One error type for the whole provider. Every code is listed in docs/errors.md; a unit test fails
 * when this table and the document drift apart (STYLE.md habit 3).
 *
 * `transient` decides how the HTTP layer reports a failure: transient failures become the
 * ProviderResponse's `systemError` (Gatekeeper does not cache those), everything else is a
 * per-item error that is a property of the image.
 */
export const ERROR_CODES = {
  // Requests to the provider itself.
  REQUEST_MALFORMED: { transient: false, summary: 'The request body is not a valid ProviderRequest.' },
  REQUEST_WRONG_KIND: { transient: false, summary: 'apiVersion or kind is not the ProviderRequest one.' },
  REQUEST_TOO_MANY_KEYS: { transient: false, summary: 'More keys than server.maxKeys in one request.' },
  REQUEST_TOO_LARGE: { transient: false, summary: 'The body is larger than the server accepts.' },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: { transient: false, summary: 'The body is not JSON.' },
  REQUEST_DEADLINE_EXCEEDED: {
    transient: true,
    summary: 'The request could not be answered inside server.requestDeadlineMs.',
  },
  REQUEST_TIMEOUT: {
    transient: true,
    summary: 'The request did not arrive inside server.headersTimeoutMs / server.bodyTimeoutMs.',
  },
  REQUEST_HEADERS_TOO_LARGE: { transient: false, summary: 'The request headers exceed 16 KiB.' },
  REQUEST_NOT_FOUND: { transient: false, summary: 'No route at this path.' },
  REQUEST_METHOD_NOT_ALLOWED: { transient: false, summary: 'The path exists, but not for this method.' },
  REQUEST_CLIENT_CERTIFICATE_REQUIRED: {
    transient: false,
    summary: 'With server.tls.clientCA, /v1/* need a client certificate that CA signed.',
  },
  REQUEST_UNAUTHENTICATED: {
    transient: false,
    summary: 'The route needs a credential (client certificate or Kyverno token) and the request has none.',
  },
  REQUEST_TOKEN_INVALID: {
    transient: false,
    summary: 'The bearer token does not authenticate for server.auth.kyverno.audience (TokenReview).',
  },
  REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED: {
    transient: false,
    summary:
      'The bearer token is valid, but its service account is not in server.auth.kyverno.serviceAccounts.',
  },
  SERVER_SHUTTING_DOWN: { transient: true, summary: 'The provider has shut its verifier down.' },
  // Checking a caller's credentials.
  AUTH_REVIEW_UNAVAILABLE: {
    transient: true,
    summary: 'The Kubernetes API could not review the bearer token (unreachable, timed out or refused).',
  },
  // Image references.
  REFERENCE_INVALID: { transient: false, summary: 'The key is not a valid image reference.' },
  // Image policy.
  POLICY_NO_MATCHING_RULE: { transient: false, summary: 'No policy rule pattern matches the image.' },
  POLICY_VALIDATOR_NOT_FOUND: { transient: false, summary: 'The matching rule names an unknown validator.' },
  POLICY_STATIC_DENY: { transient: false, summary: 'A static validator with approve: false matched.' },
  // `provenant policy test` (Rego compiled to WASM, evaluated offline).
  POLICY_TEST_OPA_MISSING: {
    transient: false,
    summary: 'The opa binary needed to compile Rego is not found.',
  },
  POLICY_TEST_COMPILE_FAILED: {
    transient: false,
    summary: 'opa could not compile the template Rego to WASM.',
  },
  POLICY_TEST_INVALID_INPUT: {
    transient: false,
    summary: 'A template, constraint, manifest or suite file is not what policy test expects.',
  },
  POLICY_TEST_EVALUATION_FAILED: { transient: false, summary: 'The compiled Rego failed while evaluating.' },
  // Checks the verifier applies to every validator's verdict.
  VERIFY_TAG_DIGEST_MISMATCH: {
    transient: false,
    summary: "The key names a tag and a digest, and the registry's tag points at another digest.",
  },
  // Registry traffic (OCI distribution API).
  REGISTRY_UNREACHABLE: { transient: true, summary: 'The registry could not be connected to.' },
  REGISTRY_TIMEOUT: { transient: true, summary: 'The registry did not answer in time.' },
  REGISTRY_RATE_LIMITED: { transient: true, summary: 'The registry answered 429 Too Many Requests.' },
  REGISTRY_SERVER_ERROR: { transient: true, summary: 'The registry answered with a 5xx status.' },
  REGISTRY_UNAUTHORIZED: { transient: false, summary: 'The registry refused the credentials (401/403).' },
  REGISTRY_TOKEN_FAILED: {
    transient: true,
    summary: "The registry's token server answered neither a token nor a refusal (e.g. 404).",
  },
  REGISTRY_EGRESS_DENIED: {
    transient: false,
    summary: 'The egress policy forbids connecting to the host or to an address it resolves to.',
  },
  REGISTRY_MANIFEST_UNKNOWN: {
    transient: false,
    summary: 'The registry has no manifest for the tag or digest.',
  },
  REGISTRY_DIGEST_MISMATCH: {
    transient: false,
    summary: 'Content fetched from the registry does not hash to its digest.',
  },
  REGISTRY_RESPONSE_TOO_LARGE: { transient: false, summary: 'A registry response exceeded its size limit.' },
  REGISTRY_BAD_RESPONSE: {
    transient: false,
    summary: 'The registry answered something the OCI spec forbids.',
  },
  REGISTRY_BLOB_UNKNOWN: {
    transient: false,
    summary: 'The registry has no blob for a digest a manifest names.',
  },
  REGISTRY_TOO_MANY_REDIRECTS: {
    transient: false,
    summary: 'The registry redirected in a loop or more than 5 times.',
  },
  REGISTRY_CREDENTIALS_UNAVAILABLE: {
    transient: true,
    summary: 'The configured credentials (Docker config, helper, Secret) could not be read.',
  },
  // Notary v1.
  NOTARY_UNREACHABLE: { transient: true, summary: 'The Notary server could not be connected to.' },
  NOTARY_TIMEOUT: { transient: true, summary: 'The Notary server did not answer in time.' },
  NOTARY_SERVER_ERROR: { transient: true, summary: 'The Notary server answered with a 5xx or 429 status.' },
  NOTARY_UNAUTHORIZED: { transient: false, summary: 'The Notary server or its token server refused access.' },
  NOTARY_NO_TRUST_DATA: { transient: false, summary: 'The Notary server has no trust data for the image.' },
  NOTARY_BAD_METADATA: {
    transient: false,
    summary: 'Trust data is malformed, too large, or uses unknown keys or methods.',
  },
  NOTARY_ROOT_NOT_TRUSTED: {
    transient: false,
    summary: 'root.json is not signed by the pinned trust root key(s).',
  },
  NOTARY_SIGNATURE_INVALID: {
    transient: false,
    summary: 'A role has fewer valid signatures than its threshold.',
  },
  NOTARY_HASH_MISMATCH: {
    transient: false,
    summary: 'A role does not match the length or hashes its parent role lists.',
  },
  NOTARY_EXPIRED: { transient: false, summary: 'A role (or the root certificate) has expired.' },
  NOTARY_ROLLBACK: {
    transient: false,
    summary: 'A role has a lower version than this replica has already seen.',
  },
  NOTARY_TAG_NOT_SIGNED: { transient: false, summary: 'No trusted target exists for the tag.' },
  NOTARY_DIGEST_NOT_SIGNED: { transient: false, summary: 'No trusted target has the referenced digest.' },
  NOTARY_DELEGATION_NOT_FOUND: {
    transient: false,
    summary: 'A delegation role the rule requires does not exist in the trust data.',
  },
  NOTARY_DELEGATION_NOT_SIGNED: {
    transient: false,
    summary: 'A required delegation role did not sign the tag (other roles may have).',
  },
  NOTARY_AMBIGUOUS_DIGEST: {
    transient: false,
    summary: 'The accepted roles sign different digests for the tag.',
  },
  // cosign.
  COSIGN_NO_SIGNATURES: {
    transient: false,
    summary: 'The image has no cosign signature: no .sig tag and no Sigstore bundle referrer.',
  },
  COSIGN_SIGNATURE_INVALID: {
    transient: false,
    summary: "No signature verifies under the trust root's key or certificate.",
  },
  COSIGN_SIGNATURE_MALFORMED: {
    transient: false,
    summary: 'The signatures found are not cosign signatures Provenant can read.',
  },
  COSIGN_DIGEST_MISMATCH: {
    transient: false,
    summary: 'A trusted signature vouches for another digest of the same repository.',
  },
  COSIGN_SIGNATURE_COPIED: {
    transient: false,
    summary: "A trusted signature made for another image was copied to this image's signature tag.",
  },
  COSIGN_CERTIFICATE_INVALID: {
    transient: false,
    summary: 'The signing certificate does not chain to the trusted Fulcio CA at a verified time.',
  },
  COSIGN_IDENTITY_MISMATCH: {
    transient: false,
    summary: "The signing certificate's subject or issuer is not the trust root's keyless identity.",
  },
  COSIGN_TLOG_MISSING: {
    transient: false,
    summary: 'verifyInTransparencyLog is on and the signature has no transparency log entry.',
  },
  COSIGN_TLOG_INVALID: {
    transient: false,
    summary: 'The transparency log entry (SET, inclusion proof or body) does not verify.',
  },
  COSIGN_THRESHOLD_NOT_MET: {
    transient: false,
    summary: 'Fewer valid signatures than the rule\'s threshold (trustRoot "*").',
  },
  COSIGN_ATTESTATION_MISSING: {
    transient: false,
    summary: 'No attestation of the required predicate type verifies for the image.',
  },
  COSIGN_ATTESTATION_DENIED: {
    transient: false,
    summary: 'The attestation verifies, but the Rego policy rejects its predicate.',
  },
  COSIGN_REQUIRED_SIGNER_MISSING: {
    transient: false,
    summary: "A trust root listed in the rule's required did not sign.",
  },
  // Notation (Notary Project signatures).
  NOTATION_NO_SIGNATURES: {
    transient: false,
    summary:
      'The image has no Notary Project signature (no referrer of artifact type application/vnd.cncf.notary.signature).',
  },
  NOTATION_ENVELOPE_MALFORMED: {
    transient: false,
    summary: 'A signature envelope is not a JWS or COSE envelope the Notary Project specification allows.',
  },
  NOTATION_SIGNATURE_INVALID: {
    transient: false,
    summary: "An envelope's signature does not verify under its own signing certificate (integrity).",
  },
  NOTATION_CERTIFICATE_INVALID: {
    transient: false,
    summary:
      "The signing chain breaks the specification's certificate requirements (chain order, CA flags, key usage, code-signing EKU, key size).",
  },
  NOTATION_CERTIFICATE_UNTRUSTED: {
    transient: false,
    summary: 'No certificate of the signing chain is a trust root the rule selects (authenticity).',
  },
  NOTATION_IDENTITY_UNTRUSTED: {
    transient: false,
    summary:
      "The signing certificate's subject is not one of the trust policy's trustedIdentities (authenticity).",
  },
  NOTATION_NO_TRUST_POLICY: {
    transient: false,
    summary:
      "The validator's trustpolicy.json has no policy whose registryScopes name the image's repository, and no `*` policy.",
  },
  NOTATION_TIMESTAMP_INVALID: {
    transient: false,
    summary:
      "A signature's RFC 3161 timestamp does not verify: not by a TSA that chains to the root's tsCert, or not over the signature.",
  },
  NOTATION_CERTIFICATE_EXPIRED: {
    transient: false,
    summary:
      "The signing chain is not valid at the time that counts: a trusted timestamp's time, or now without one (authentic timestamp).",
  },
  NOTATION_EXPIRED: {
    transient: false,
    summary: 'The signature is past the expiry its signer set (`io.cncf.notary.expiry`).',
  },
  NOTATION_REVOKED: {
    transient: false,
    summary: 'A certificate of the signing chain is revoked (OCSP or CRL).',
  },
  NOTATION_REVOCATION_UNKNOWN: {
    transient: true,
    summary:
      'No OCSP responder or CRL of the signing chain gave an answer in time; enforced at the strict level.',
  },
  NOTATION_DIGEST_MISMATCH: {
    transient: false,
    summary:
      "The signed payload describes another artifact: its digest, media type or size is not the image's.",
  },
  // Configuration.
  CONFIG_INVALID: { transient: false, summary: 'The configuration file does not match the schema.' },
  CONFIG_UNSAFE_DIRECTORY: {
    transient: false,
    summary: 'A directory for trust data (sigstore.tufCacheDir) is not private to the provider.',
  },
  CONFIG_UNREADABLE: {
    transient: false,
    summary: 'The configuration file (or a file it names) cannot be read.',
  },
  CONFIG_TLS_REQUIRED: {
    transient: false,
    summary: 'server.host is not loopback and server.tls is not set.',
  },
  // Alerting.
  ALERT_SEND_FAILED: {
    transient: true,
    summary: 'A receiver with failIfAlertSendingFails could not be sent its alert (Connaisseur denies then).',
  },
  // Anything unexpected: a bug. Reported as a system error so it is never cached as a verdict.
  INTERNAL: { transient: true, summary: 'An unexpected internal failure.' },
} as const satisfies Record<string, { transient: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ProvenantErrorOptions {
  /** The image reference (as the caller wrote it) the error is about, if any. */
  readonly image?: string | undefined;
  readonly cause?: unknown;
}

export class ProvenantError extends Error {
  override readonly name = 'ProvenantError';
  readonly code: ErrorCode;
  readonly image: string | undefined;

  constructor(code: ErrorCode, message: string, options: ProvenantErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.image = options.image;
  }

  /** Transient failures are retried by the engine rather than cached as a verdict. */
  get transient(): boolean {
    return ERROR_CODES[this.code].transient;
  }

  /** The `"<CODE>: <message>"` form used in ProviderResponse items and CLI output. */
  toItemError(): string {
    return `${this.code}: ${this.message}`;
  }

  /**
   * What the causes say about the network, for the operator's log only (clients never see it: socket
   * details would map the cluster's network for whoever created the pod). Codes, syscalls, addresses
   * and ports only, never cause messages, which can quote a response body (a token, say).
   */
  causeSummary(): string | undefined {
    const parts: string[] = [];
    let cause: unknown = this.cause;
    for (let depth = 0; depth < MAX_CAUSE_DEPTH && typeof cause === 'object' && cause !== null; depth++) {
      const c = cause as Record<string, unknown>;
      const fields = [c['code'], c['syscall'], c['address'], c['port']].filter(
        (f) => typeof f === 'string' || typeof f === 'number',
      );
      if (fields.length > 0) parts.push(fields.join(' '));
      cause = c['cause'];
    }
    return parts.length > 0 ? parts.join(' <- ') : undefined;
  }
}

const MAX_CAUSE_DEPTH = 5;

/** Wraps anything thrown into a ProvenantError, keeping ProvenantErrors as they are. */
export function toProvenantError(err: unknown, image?: string): ProvenantError {
  if (err instanceof ProvenantError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ProvenantError('INTERNAL', `unexpected failure: ${message}`, { image, cause: err });
}
