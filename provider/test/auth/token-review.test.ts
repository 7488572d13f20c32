/**
 * The TokenReview check of Kyverno's bearer token, with the Kubernetes API's answers given by a
 * recording function (the real API server answers in the Kyverno end-to-end suite).
 */
import { describe, expect, it } from 'vitest';

import {
  REFUSED_REVIEW_TTL_MS,
  TokenReviewer,
  type ReviewFn,
  type ReviewStatus,
} from '../../src/auth/index.ts';
import type { ProvenantError } from '../../src/types/errors.ts';

const AUDIENCE = 'kyverno-svc.kyverno.io';
const KYVERNO = 'system:serviceaccount:kyverno:kyverno-admission-controller';
const CONFIG = {
  enabled: true,
  audience: AUDIENCE,
  serviceAccounts: [KYVERNO],
  reviewCacheSeconds: 10,
};

/** An unsigned JWT with the given expiry: the reviewer reads only `exp` (the API checks the signature). */
function jwt(expSeconds: number): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part({ exp: expSeconds, sub: KYVERNO })}.c2ln`;
}

const accepted = (username = KYVERNO, audiences = [AUDIENCE]): ReviewStatus => ({
  authenticated: true,
  username,
  audiences,
  error: undefined,
});

function recording(answer: () => Promise<ReviewStatus> | ReviewStatus): {
  review: ReviewFn;
  calls: { token: string; audience: string }[];
} {
  const calls: { token: string; audience: string }[] = [];
  return {
    calls,
    review: async (token, audience) => {
      calls.push({ token, audience });
      return answer();
    },
  };
}

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'accepted';
  } catch (err) {
    return (err as ProvenantError).code;
  }
}

describe('the Kyverno token reviewer', () => {
  let clock = 1_000_000_000_000;
  const now = (): number => clock;
  const token = (): string => jwt(clock / 1000 + 3600);

  it("accepts a token the API authenticates for Provenant's audience, from an allowed service account", async () => {
    const { review, calls } = recording(() => accepted());
    const reviewer = new TokenReviewer(CONFIG, review, now);
    const t = token();
    await expect(reviewer.authenticate(t)).resolves.toEqual({ username: KYVERNO });
    expect(calls).toEqual([{ token: t, audience: AUDIENCE }]);
  });

  it('refuses a token the API does not authenticate, with its reason', async () => {
    const reviewer = new TokenReviewer(
      CONFIG,
      recording(() => ({ authenticated: false, username: undefined, audiences: [], error: 'token expired' }))
        .review,
      now,
    );
    await expect(reviewer.authenticate(token())).rejects.toThrow(
      /^expected a service-account token for the audience "kyverno-svc.kyverno.io" \(server.auth.kyverno.audience\), found a token the API server does not authenticate \(token expired\)$/,
    );
  });

  it('refuses a token the API authenticates only for another audience', async () => {
    const reviewer = new TokenReviewer(CONFIG, recording(() => accepted(KYVERNO, [])).review, now);
    const error = await reviewer.authenticate(token()).catch((e: unknown) => e as ProvenantError);
    expect(error).toMatchObject({ code: 'REQUEST_TOKEN_INVALID' });
    expect((error as Error).message).toContain('found a token valid for []');
  });

  it('refuses a service account that is not on the list, naming it', async () => {
    const other = 'system:serviceaccount:default:builder';
    const reviewer = new TokenReviewer(CONFIG, recording(() => accepted(other)).review, now);
    const error = await reviewer.authenticate(token()).catch((e: unknown) => e as ProvenantError);
    expect(error).toMatchObject({ code: 'REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED' });
    expect((error as Error).message).toBe(
      `expected a token of ${KYVERNO} (server.auth.kyverno.serviceAccounts), found one of ${other}`,
    );
  });

  it('reports an unreachable API as AUTH_REVIEW_UNAVAILABLE (transient), never as an admission', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' });
    const { review, calls } = recording(() => Promise.reject(refused));
    const reviewer = new TokenReviewer(CONFIG, review, now);
    const error = await reviewer.authenticate(token()).catch((e: unknown) => e as ProvenantError);
    expect(error).toMatchObject({ code: 'AUTH_REVIEW_UNAVAILABLE', transient: true });
    expect((error as Error).message).toMatch(/found it unavailable: ECONNREFUSED$/);
    // Not cached: the next request asks again.
    await codeOf(reviewer.authenticate(token()));
    expect(calls).toHaveLength(2);
  });

  it('never quotes the token in an error message', async () => {
    const t = token();
    const echo = Object.assign(new Error(`401 for token ${t}`), { code: 401 });
    const reviewer = new TokenReviewer(CONFIG, recording(() => Promise.reject(echo)).review, now);
    const error = await reviewer.authenticate(t).catch((e: unknown) => e as ProvenantError);
    expect((error as Error).message).not.toContain(t);
    expect((error as Error).message).toMatch(/HTTP 401$/);
  });

  it('reuses an accepted review within reviewCacheSeconds, then asks again', async () => {
    const { review, calls } = recording(() => accepted());
    const reviewer = new TokenReviewer(CONFIG, review, now);
    const t = token();
    await reviewer.authenticate(t);
    await reviewer.authenticate(t);
    expect(calls).toHaveLength(1);
    clock += CONFIG.reviewCacheSeconds * 1000 + 1;
    await reviewer.authenticate(t);
    expect(calls).toHaveLength(2);
  });

  it('does not reuse an accepted review past the token’s own expiry', async () => {
    const { review, calls } = recording(() => accepted());
    const reviewer = new TokenReviewer(CONFIG, review, now);
    const shortLived = jwt(clock / 1000 + 2);
    await reviewer.authenticate(shortLived);
    clock += 2_001;
    await reviewer.authenticate(shortLived);
    expect(calls).toHaveLength(2);
  });

  it('keeps a refusal only briefly', async () => {
    let status = accepted('system:serviceaccount:default:other');
    const { review, calls } = recording(() => status);
    const reviewer = new TokenReviewer(CONFIG, review, now);
    const t = token();
    expect(await codeOf(reviewer.authenticate(t))).toBe('REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED');
    expect(await codeOf(reviewer.authenticate(t))).toBe('REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED');
    expect(calls).toHaveLength(1);
    status = accepted();
    clock += REFUSED_REVIEW_TTL_MS + 1;
    expect(await codeOf(reviewer.authenticate(t))).toBe('accepted');
  });

  it('asks the API once for concurrent requests carrying the same token', async () => {
    let release: (s: ReviewStatus) => void = () => undefined;
    const { review, calls } = recording(() => new Promise<ReviewStatus>((resolve) => (release = resolve)));
    const reviewer = new TokenReviewer(CONFIG, review, now);
    const t = token();
    const both = Promise.all([reviewer.authenticate(t), reviewer.authenticate(t)]);
    await Promise.resolve();
    release(accepted());
    await expect(both).resolves.toHaveLength(2);
    expect(calls).toHaveLength(1);
  });

  it('caches nothing with reviewCacheSeconds 0', async () => {
    const { review, calls } = recording(() => accepted());
    const reviewer = new TokenReviewer({ ...CONFIG, reviewCacheSeconds: 0 }, review, now);
    const t = token();
    await reviewer.authenticate(t);
    await reviewer.authenticate(t);
    expect(calls).toHaveLength(2);
  });
});
