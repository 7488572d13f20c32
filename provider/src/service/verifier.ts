/**
 * The one verification path shared by the HTTP routes and the CLI: reference → policy rule →
 * validator → trusted digest, with caching and coalescing. Only successes are cached for the full
 * TTL; failures that are a property of the image briefly; transient failures never (MISSION.md:
 * "never let a transient failure be cached as a verdict").
 */
import type { Alerter } from '../alerting/index.ts';
import type { Config, RuleConfig } from '../config/index.ts';
import { Coalescer, type Cache } from '../cache/index.ts';
import { mostSpecificRule, compileRules, type PolicyRule } from '../policy/index.ts';
import {
  normalizedPinned,
  parseReference,
  pinnedReference,
  type ImageReference,
} from '../reference/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import type { SigstoreTrust } from '../trust/sigstore/index.ts';
import { ProvenantError, toProvenantError, type ErrorCode } from '../types/errors.ts';
import { createValidator, type Validator } from '../validators/index.ts';
import { traceStep, tracing, withTrace, type Metrics, type TraceStep } from '../observability/index.ts';

export interface Verdict {
  /** The normalised reference pinned to the trusted digest. */
  readonly image: string;
  readonly digest: string;
  readonly validator: string;
  readonly signers: readonly string[];
  /** Failures a logging-only verification level admitted despite (see Validated.notes). */
  readonly notes?: readonly string[];
  /** The pattern of the policy rule that decided. */
  readonly rule: string;
  /** The rule's `with.mode`: `insecureValidateOnly` verifies but never pins. */
  readonly mode: 'mutate' | 'insecureValidateOnly';
  /** The key pinned to the digest in the caller's spelling (what /v1/mutate answers). */
  readonly pinned: string;
}

export type Outcome =
  { readonly ok: true; readonly verdict: Verdict } | { readonly ok: false; readonly error: ProvenantError };

/** What the cache holds: a verdict, or a non-transient error as code and message. */
export type CachedOutcome =
  { readonly verdict: Omit<Verdict, 'pinned'> } | { readonly error: { code: ErrorCode; message: string } };

/**
 * Keys of one request verified at once; the others wait their turn. A request may carry hundreds of
 * keys (server.maxKeys); the registry client bounds connections per host and in total as well.
 */
export const MAX_KEYS_IN_FLIGHT_PER_REQUEST = 16;

/** Matched against the policy before the first request (a reserved name: RFC 2606's `.invalid`). */
const WARM_UP_REFERENCE = 'registry.invalid/warm-up/image:latest';

export interface VerifierDeps {
  readonly registry: RegistryClient;
  /** Sigstore trusted root for cosign validators (public-good when absent). */
  readonly sigstore?: SigstoreTrust | undefined;
  readonly cache: Cache<CachedOutcome>;
  readonly metrics?: Metrics | undefined;
  /** Sends `alerting:` alerts for fresh verdicts (not for cached ones). */
  readonly alerter?: Alerter | undefined;
}

export class Verifier {
  private readonly rules: PolicyRule<RuleConfig>[];
  private readonly validators: Map<string, Validator>;
  private readonly inflight = new Coalescer<CachedOutcome | ProvenantError>();

  constructor(
    private readonly config: Config,
    private readonly deps: VerifierDeps,
    /** Distinguishes cache entries of different policies (a fingerprint of the config). */
    private readonly cacheNamespace = '0',
  ) {
    this.rules = compileRules(config.policy);
    this.validators = new Map(
      config.validators.map((v) => [
        v.name,
        createValidator(v, {
          registry: deps.registry,
          sigstore: deps.sigstore,
          network: config.network,
          registries: config.registries,
          cache: config.cache,
        }),
      ]),
    );
  }

  /** Resolves once every validator can answer (e.g. attestation policies compiled). */
  async ready(): Promise<void> {
    await Promise.all([...this.validators.values()].map((v) => v.ready?.() ?? Promise.resolve()));
  }

  /**
   * Runs what a first verification would run for the first time and that needs no registry: every
   * rule's pattern against a reference (re2js builds its automata as it matches), and each
   * validator's own offline check (cosign: one signature made in memory).
   */
  warmUp(): void {
    mostSpecificRule(this.rules, parseReference(WARM_UP_REFERENCE));
    for (const validator of this.validators.values()) validator.warmUp?.();
  }

  /** Closes the validators' own connections (the registry client is the Runtime's to close). */
  async close(): Promise<void> {
    await Promise.all([
      ...[...this.validators.values()].map((v) => v.close?.() ?? Promise.resolve()),
      this.deps.alerter?.close(),
    ]);
  }

  /**
   * The keys of one request, every one answered (the CLI's path; the server's is verifyRequest).
   */
  async verifyAll(keys: readonly string[]): Promise<Outcome[]> {
    const batch = this.begin(keys);
    await batch.rest;
    return batch.outcomes;
  }

  /**
   * The keys of one request within its deadline (server.requestDeadlineMs from now): undefined when it
   * passes first. The work goes on and fills the cache; one timer, made only when a key needs the
   * registry, both ends the wait and aborts the registry requests.
   */
  async verifyRequest(keys: readonly string[]): Promise<Outcome[] | undefined> {
    const batch = this.begin(keys);
    if (batch.rest === undefined) return batch.outcomes;
    return (await settledBefore(batch.rest, batch.deadline.signal)) ? batch.outcomes : undefined;
  }

  /**
   * Starts one request's keys. Those this process already knows (an invalid reference, a verdict in
   * its memory) are answered at once, without a promise or timer per key; the others are verified at
   * most MAX_KEYS_IN_FLIGHT_PER_REQUEST at a time, all under one deadline: a key still waiting when it
   * passes is not started.
   */
  private begin(keys: readonly string[]): Batch {
    const deadline = new Deadline(this.config.server.requestDeadlineMs);
    const outcomes: Outcome[] = new Array<Outcome>(keys.length);
    const tally = new Tally();
    const misses: { index: number; ref: ImageReference }[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] ?? '';
      let ref: ImageReference;
      try {
        ref = parseReference(key);
      } catch (err) {
        outcomes[i] = { ok: false, error: toProvenantError(err, key) };
        continue;
      }
      const held = this.deps.cache.getLocal?.(this.cacheKey(ref));
      if (held === undefined) misses.push({ index: i, ref });
      else outcomes[i] = this.toOutcome(held, ref, true, tally);
    }
    tally.addTo(this.deps.metrics);
    if (misses.length === 0) return { outcomes, deadline };
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let m = misses[next++]; m !== undefined; m = misses[next++])
        outcomes[m.index] = await this.verifyKey(m.ref, deadline);
    };
    const workers = Math.min(MAX_KEYS_IN_FLIGHT_PER_REQUEST, misses.length);
    return { outcomes, deadline, rest: Promise.all(Array.from({ length: workers }, worker)) };
  }

  /** One key; `signal` bounds the registry work (server.requestDeadlineMs from now by default). */
  async verify(key: string, signal?: AbortSignal): Promise<Outcome> {
    let ref: ImageReference;
    try {
      ref = parseReference(key);
    } catch (err) {
      return { ok: false, error: toProvenantError(err, key) };
    }
    return this.verifyKey(ref, new Deadline(this.config.server.requestDeadlineMs, signal));
  }

  private cacheKey(ref: ImageReference): string {
    return `${this.cacheNamespace}|${ref.normalized}`;
  }

  private async verifyKey(ref: ImageReference, deadline: Deadline): Promise<Outcome> {
    const cacheKey = this.cacheKey(ref);
    const cached = await this.deps.cache.get(cacheKey);
    if (cached === undefined && deadline.passed) return { ok: false, error: deadlinePassed(ref) };
    const result =
      cached ?? (await this.inflight.run(cacheKey, () => this.decide(ref, cacheKey, deadline.signal)));
    const tally = new Tally();
    const outcome = this.toOutcome(result, ref, cached !== undefined, tally);
    tally.addTo(this.deps.metrics);
    return outcome;
  }

  /**
   * One key, explained (verify --explain): what the cache held, then a fresh verification with every
   * step recorded (rules ranked, validator, registry requests, signatures), and the verdict.
   */
  async explain(key: string): Promise<{ outcome: Outcome; steps: TraceStep[] }> {
    const steps: TraceStep[] = [];
    let ref: ImageReference;
    try {
      ref = parseReference(key);
    } catch (err) {
      const error = toProvenantError(err, key);
      steps.push({ kind: 'verdict', text: `not a valid image reference: ${error.toItemError()}` });
      return { outcome: { ok: false, error }, steps };
    }
    steps.push({ kind: 'reference', text: `${key} is ${ref.normalized}` });
    const cacheKey = this.cacheKey(ref);
    const cached = await this.deps.cache.get(cacheKey);
    steps.push({
      kind: 'cache',
      text:
        cached === undefined
          ? 'no cached verdict: verified now, and the result cached as the server would'
          : `a cached verdict (${'verdict' in cached ? 'trusted' : cached.error.code}) would answer; verified again to explain it`,
    });
    const deadline = AbortSignal.timeout(this.config.server.requestDeadlineMs);
    const result = await withTrace(steps, () => this.decide(ref, cacheKey, deadline));
    const tally = new Tally();
    const outcome = this.toOutcome(result, ref, false, tally);
    tally.addTo(this.deps.metrics);
    steps.push({
      kind: 'verdict',
      text: outcome.ok
        ? `trusted: ${outcome.verdict.pinned} (validator ${outcome.verdict.validator}${outcome.verdict.signers.length > 0 ? `, signed by ${outcome.verdict.signers.join(', ')}` : ''})`
        : `${outcome.error.transient ? 'error (transient, not cached)' : 'denied'}: ${outcome.error.toItemError()}`,
    });
    return { outcome, steps };
  }

  /**
   * A fresh verdict (coalesced: once per key in flight): validated, alerted, then cached. A transient
   * failure is neither alerted nor cached; a failed mandatory alert (failIfAlertSendingFails) makes the
   * answer a transient ALERT_SEND_FAILED and leaves the verdict uncached, so the next request alerts again.
   */
  private async decide(
    ref: ImageReference,
    cacheKey: string,
    signal: AbortSignal,
  ): Promise<CachedOutcome | ProvenantError> {
    let result: CachedOutcome;
    let ttlSeconds: number;
    try {
      result = { verdict: await this.validate(ref, signal) };
      ttlSeconds = this.config.cache.ttlSeconds;
    } catch (err) {
      const error = toProvenantError(err, ref.original);
      if (error.transient) return error;
      result = { error: { code: error.code, message: error.message } };
      ttlSeconds = this.config.cache.negativeTtlSeconds;
    }
    try {
      await this.deps.alerter?.notify(
        'verdict' in result
          ? { ...result.verdict, kind: 'admit', image: ref.original }
          : { kind: 'reject', image: ref.original, error: `${result.error.code}: ${result.error.message}` },
        signal,
      );
    } catch (err) {
      return toProvenantError(err, ref.original);
    }
    await this.deps.cache.set(cacheKey, result, ttlSeconds);
    return result;
  }

  private async validate(ref: ImageReference, signal: AbortSignal): Promise<Omit<Verdict, 'pinned'>> {
    const match = mostSpecificRule(this.rules, ref);
    if (match === undefined) {
      throw new ProvenantError(
        'POLICY_NO_MATCHING_RULE',
        `no policy rule matches image ${ref.original} (normalised: ${ref.normalized}); add a rule, for example a "*:*" catch-all`,
        {
          image: ref.original,
        },
      );
    }
    const rule = match.rule;
    if (tracing())
      traceStep(
        'rule',
        `decides: rule ${match.index} "${rule.pattern}" → validator "${rule.validator}"${rule.with === undefined ? '' : ` with ${JSON.stringify(rule.with)}`}`,
      );
    const validator = this.validators.get(rule.validator);
    if (validator === undefined) {
      throw new ProvenantError(
        'POLICY_VALIDATOR_NOT_FOUND',
        `rule "${rule.pattern}" for image ${ref.original} names validator "${rule.validator}", which is not configured`,
        {
          image: ref.original,
        },
      );
    }
    if (tracing()) traceStep('validator', describeValidator(this.config, rule));
    const { digest, signers, notes } = await validator.validate({ image: ref, rule, signal });
    await this.checkTagDigest(ref, signal);
    return {
      image: normalizedPinned(ref, digest),
      digest,
      validator: validator.name,
      signers,
      ...(notes !== undefined && notes.length > 0 ? { notes } : {}),
      rule: rule.pattern,
      mode: rule.with?.mode ?? 'mutate',
    };
  }

  /**
   * `name:tag@digest`: the kubelet pulls the digest, while the rule (and a validator reading the tag,
   * like the static one) may have gone by the tag. Every validator's verdict therefore also needs the
   * registry's tag to point at that digest, or any digest of the repository would pass under a rule
   * written for one tag. Notary's own check (the signed tag's digest) stays in its validator.
   */
  private async checkTagDigest(ref: ImageReference, signal: AbortSignal): Promise<void> {
    if (ref.tag === undefined || ref.digest === undefined) return;
    const tagged = parseReference(`${ref.name}:${ref.tag}`);
    const current = await this.deps.registry.resolveDigest(tagged, signal);
    if (current === ref.digest) return;
    throw new ProvenantError(
      'VERIFY_TAG_DIGEST_MISMATCH',
      `image ${ref.original} names tag ${ref.tag} and digest ${ref.digest}, but the tag points at another digest: expected ${tagged.normalized} to be ${ref.digest}, found ${current} in the registry`,
      { image: ref.original },
    );
  }

  private toOutcome(
    result: CachedOutcome | ProvenantError,
    ref: ImageReference,
    cached: boolean,
    tally: Tally,
  ): Outcome {
    const count = (validator: string, outcome: string, code: ErrorCode | 'none'): void =>
      tally.add(validator, outcome, cached, code);
    if (result instanceof ProvenantError) {
      count('none', 'error', result.code);
      return { ok: false, error: result };
    }
    if ('error' in result) {
      count('none', 'rejected', result.error.code);
      return {
        ok: false,
        error: new ProvenantError(result.error.code, result.error.message, { image: ref.original }),
      };
    }
    const verdict = result.verdict;
    count(verdict.validator, 'trusted', 'none');
    const pinned =
      verdict.mode === 'insecureValidateOnly' ? ref.original : pinnedReference(ref, verdict.digest);
    // Field by field: spreading the cached object was the largest per-key cost of a cached answer.
    const answer: Verdict = {
      image: verdict.image,
      digest: verdict.digest,
      validator: verdict.validator,
      signers: verdict.signers,
      rule: verdict.rule,
      mode: verdict.mode,
      pinned,
    };
    return { ok: true, verdict: verdict.notes === undefined ? answer : { ...answer, notes: verdict.notes } };
  }
}

/** The validator a rule runs and the trust material it holds (names only, never key bytes). */
function describeValidator(config: Config, rule: RuleConfig): string {
  const v = config.validators.find((x) => x.name === rule.validator);
  if (v === undefined) return `validator "${rule.validator}" is not configured`;
  if (v.type === 'static')
    return `static validator "${v.name}": ${v.approve ? 'approves' : 'denies'} every image`;
  const roots = v.trustRoots
    .map(
      (r) =>
        `${r.name} (${r.keyless !== undefined ? 'keyless' : r.cert !== undefined ? 'certificate' : 'key'})`,
    )
    .join(', ');
  const where = v.type === 'notaryv1' ? ` at ${v.host}` : '';
  return `${v.type} validator "${v.name}"${where}; trust roots: ${roots}; rule selects trustRoot "${rule.with?.trustRoot ?? 'default'}"`;
}

interface Batch {
  /** Filled in as keys are answered; complete once `rest` resolves (at once when it is undefined). */
  readonly outcomes: Outcome[];
  readonly deadline: Deadline;
  readonly rest?: Promise<unknown>;
}

/** Whether `work` settles before `signal` aborts (rejects if `work` rejects first). */
function settledBefore(work: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => resolve(true),
      (err: unknown) => reject(err as Error),
    );
    void work.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => undefined);
  });
}

/**
 * provenant_verifications_total for the keys of one request, added once per label set: a 1,000-key
 * request answered from the cache is a handful of counter updates, not a thousand.
 */
class Tally {
  private readonly counts: { labels: VerificationLabels; n: number }[] = [];

  add(validator: string, result: string, cached: boolean, code: string): void {
    // A request's keys share a few label sets (most often one): a short scan, no string built per key.
    const label = String(cached);
    for (const entry of this.counts) {
      const l = entry.labels;
      if (l.validator === validator && l.result === result && l.cached === label && l.code === code) {
        entry.n++;
        return;
      }
    }
    this.counts.push({ labels: { validator, result, cached: label, code }, n: 1 });
  }

  addTo(metrics: Metrics | undefined): void {
    for (const { labels, n } of this.counts) metrics?.verifications.inc(labels, n);
  }
}

type VerificationLabels = Record<'validator' | 'result' | 'cached' | 'code', string>;

/**
 * A request's deadline. Its AbortSignal, and the timer behind it, are made only when a key needs the
 * registry: a request answered from the cache arms no timer (each armed one fires later and builds a
 * DOMException; on the warm path that was a tenth of the provider's own CPU per request).
 */
class Deadline {
  private readonly endsAt: number;

  constructor(
    ms: number,
    private made?: AbortSignal,
  ) {
    this.endsAt = performance.now() + ms;
  }

  get passed(): boolean {
    return this.made?.aborted ?? performance.now() >= this.endsAt;
  }

  get signal(): AbortSignal {
    return (this.made ??= AbortSignal.timeout(Math.max(0, Math.ceil(this.endsAt - performance.now()))));
  }
}

function deadlinePassed(ref: ImageReference): ProvenantError {
  return new ProvenantError(
    'REQUEST_DEADLINE_EXCEEDED',
    `image ${ref.original} was not verified: the request's deadline (server.requestDeadlineMs) passed while it waited for a verification slot`,
    { image: ref.original },
  );
}
