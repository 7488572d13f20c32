/**
 * Kyverno's bearer token, checked the way the Kubernetes API server would: a TokenReview
 * (authentication.k8s.io/v1) for Provenant's audience, then the service account against an allowlist.
 * Kyverno ≥ 1.16.5 / 1.17.2 / 1.18 sends a projected token whose audience is its own
 * (`kyverno-svc.kyverno.io` in its chart), so a token stolen from Provenant is useless against the API.
 *
 * Reviews are cached briefly, keyed by the token's SHA-256 (never the token), bounded in number; a
 * refusal is cached for at most REFUSED_REVIEW_TTL_MS, and an unreachable API is never cached: it is a
 * transient failure (a systemError, so the engine retries or applies its failure policy), never an
 * admission.
 */
import { createHash } from 'node:crypto';
import type { AuthenticationV1Api, V1TokenReview } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import type { AuthConfig } from '../config/index.ts';
import { ProvenantError } from '../types/errors.ts';

/** A refused token (expired, another audience, not on the list) is asked about again this soon. */
export const REFUSED_REVIEW_TTL_MS = 2_000;
/** Distinct tokens remembered at once: Kyverno has a handful of replicas, each with one token at a time. */
export const REVIEW_CACHE_MAX_ENTRIES = 1_000;
/** The API server answers a TokenReview from memory; longer means it is in trouble. */
export const REVIEW_TIMEOUT_MS = 2_000;

/** Who a reviewed token belongs to. */
export interface Reviewed {
  readonly username: string;
}

/** What the Kubernetes API said about a token: the TokenReview's status. */
export interface ReviewStatus {
  readonly authenticated: boolean;
  readonly username: string | undefined;
  readonly audiences: readonly string[];
  readonly error: string | undefined;
}

/** Posts one TokenReview; throws when the API cannot answer. */
export type ReviewFn = (token: string, audience: string, signal: AbortSignal) => Promise<ReviewStatus>;

type KyvernoAuth = AuthConfig['kyverno'];

export class TokenReviewer {
  private readonly cache: LRUCache<string, Reviewed | ProvenantError>;
  private readonly inFlight = new Map<string, Promise<Reviewed>>();
  private readonly allowed: ReadonlySet<string>;

  constructor(
    private readonly config: KyvernoAuth,
    private readonly review: ReviewFn = kubernetesReview(config.kubeconfig),
    private readonly now: () => number = Date.now,
  ) {
    this.allowed = new Set(config.serviceAccounts);
    this.cache = new LRUCache({ max: REVIEW_CACHE_MAX_ENTRIES, perf: { now }, ttlResolution: 0 });
  }

  /**
   * Resolves with the token's service account, or throws REQUEST_TOKEN_INVALID,
   * REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED or AUTH_REVIEW_UNAVAILABLE.
   */
  async authenticate(token: string): Promise<Reviewed> {
    const key = createHash('sha256').update(token).digest('hex');
    const cached = this.cache.get(key);
    if (cached instanceof ProvenantError) throw cached;
    if (cached !== undefined) return cached;
    const pending = this.inFlight.get(key) ?? this.reviewAndCache(key, token);
    this.inFlight.set(key, pending);
    try {
      return await pending;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async reviewAndCache(key: string, token: string): Promise<Reviewed> {
    const status = await this.ask(token);
    try {
      const reviewed = this.judge(status);
      const ttl = Math.min(this.config.reviewCacheSeconds * 1000, await this.msUntilExpiry(token));
      if (ttl > 0) this.cache.set(key, reviewed, { ttl });
      return reviewed;
    } catch (err) {
      const ttl = Math.min(this.config.reviewCacheSeconds * 1000, REFUSED_REVIEW_TTL_MS);
      if (ttl > 0) this.cache.set(key, err as ProvenantError, { ttl });
      throw err;
    }
  }

  private async ask(token: string): Promise<ReviewStatus> {
    const signal = AbortSignal.timeout(REVIEW_TIMEOUT_MS);
    try {
      return await this.review(token, this.config.audience, signal);
    } catch (err) {
      throw new ProvenantError(
        'AUTH_REVIEW_UNAVAILABLE',
        `expected the Kubernetes API to review the bearer token within ${REVIEW_TIMEOUT_MS} ms, found it unavailable: ${describe(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * The API server lists in status.audiences the requested audiences the token is valid for; one that
   * ignores spec.audiences answers none, so audience-bound trust is refused rather than assumed.
   */
  private judge(status: ReviewStatus): Reviewed {
    const { audience } = this.config;
    if (!status.authenticated || !status.audiences.includes(audience) || status.username === undefined) {
      const why = status.authenticated
        ? `a token valid for ${JSON.stringify(status.audiences)}`
        : `a token the API server does not authenticate${status.error === undefined ? '' : ` (${status.error})`}`;
      throw new ProvenantError(
        'REQUEST_TOKEN_INVALID',
        `expected a service-account token for the audience ${JSON.stringify(audience)} (server.auth.kyverno.audience), found ${why}`,
      );
    }
    if (!this.allowed.has(status.username)) {
      throw new ProvenantError(
        'REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED',
        `expected a token of ${[...this.allowed].join(', ')} (server.auth.kyverno.serviceAccounts), found one of ${status.username}`,
      );
    }
    return { username: status.username };
  }

  /** A reviewed token is not trusted past its own expiry (the `exp` claim; the API checked the signature). */
  private async msUntilExpiry(token: string): Promise<number> {
    // jose (like client-node below) is loaded on first use: only Kyverno's authentication needs it.
    const { decodeJwt } = await import('jose');
    try {
      const { exp } = decodeJwt(token);
      return exp === undefined ? Infinity : exp * 1000 - this.now();
    } catch {
      return 0;
    }
  }
}

/** Error texts say what failed without quoting a response body (which could echo the token). */
function describe(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return `HTTP ${code}`; // client-node's ApiException
  if (typeof code === 'string') return code; // ECONNREFUSED, ENOTFOUND, ...
  return err instanceof Error ? err.name : 'unknown error';
}

/**
 * TokenReviews through @kubernetes/client-node: in cluster with Provenant's own service account (it
 * needs `create` on `tokenreviews`, as in the `system:auth-delegator` ClusterRole), else KUBECONFIG or
 * the kubeconfig file configured.
 */
export function kubernetesReview(kubeconfig: string | undefined): ReviewFn {
  let api: AuthenticationV1Api | undefined;
  return async (token, audience, signal) => {
    if (api === undefined) {
      // Loaded on the first review: the client is hundreds of modules a server without Kyverno never needs.
      const { AuthenticationV1Api, KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      if (kubeconfig === undefined) kc.loadFromDefault();
      else kc.loadFromFile(kubeconfig);
      api = kc.makeApiClient(AuthenticationV1Api);
    }
    const body: V1TokenReview = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [audience] },
    };
    const review = await abortable(api.createTokenReview({ body }), signal);
    return {
      authenticated: review.status?.authenticated === true,
      username: review.status?.user?.username,
      audiences: review.status?.audiences ?? [],
      error: review.status?.error,
    };
  };
}

function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
