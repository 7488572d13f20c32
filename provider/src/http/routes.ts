/**
 * POST /v1/verify and /v1/mutate: per-key answers, per-image failures as item errors, transient
 * failures as `systemError` with no items (Gatekeeper caches item errors for minutes; it must not
 * cache a registry outage as a verdict).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Outcome, Runtime, Verdict } from '../service/index.ts';
import { ProvenantError } from '../types/errors.ts';
import {
  ACCEPTED_API_VERSIONS,
  API_VERSION,
  providerRequestSchema,
  type ProviderItem,
  type ProviderRequest,
  type ProviderResponse,
} from './schemas.ts';

export type Render = (verdict: Verdict) => unknown;

/** How each answered request went (ok, item_errors, system_error), for the request metrics. */
export const requestOutcome = new WeakMap<object, string>();

/** The item values of /v1/verify and /v1/mutate (also what `provenant policy test` answers). */
export const renderVerify: Render = (v) => ({
  image: v.image,
  digest: v.digest,
  validator: v.validator,
  signers: v.signers,
  ...(v.notes === undefined ? {} : { notes: v.notes }),
  rule: v.rule,
});
export const renderMutate: Render = (v) => v.pinned;

/**
 * The answers are built field by field (renderVerify, providerResponse) and serialised with
 * JSON.stringify: a response schema (schemas.ts, which the tests hold every answer to) would make
 * fastify's serialiser try each `anyOf` branch of every item, the largest per-key cost of a cached answer.
 */
export function registerProviderRoutes(app: FastifyInstance, runtime: Runtime): void {
  const route = (url: string, render: Render): void => {
    app.post<{ Body: ProviderRequest }>(
      url,
      { schema: { body: providerRequestSchema } },
      async (req, reply) => answer(runtime, req.body, render, reply),
    );
  };
  route('/v1/verify', renderVerify);
  route('/v1/mutate', renderMutate);
}

async function answer(
  runtime: Runtime,
  body: ProviderRequest,
  render: Render,
  reply: FastifyReply,
): Promise<ProviderResponse> {
  if (runtime.phase === 'closed') {
    throw new ProvenantError(
      'SERVER_SHUTTING_DOWN',
      'expected a running verifier, found it shut down (the replica is stopping); retry',
    );
  }
  checkKind(body);
  const keys = [...new Set(body.request.keys)];
  const { maxKeys, requestDeadlineMs } = runtime.config.server;
  if (keys.length > maxKeys) {
    throw new ProvenantError(
      'REQUEST_TOO_MANY_KEYS',
      `expected at most ${maxKeys} distinct keys per request (server.maxKeys), found ${keys.length}`,
    );
  }
  const outcomes = await runtime.verifier.verifyRequest(keys);
  const systemError =
    outcomes === undefined ? deadlineError(keys.length, requestDeadlineMs) : firstTransient(outcomes);
  if (systemError !== undefined) {
    reply.log.warn(
      { code: systemError.code, image: systemError.image, cause: systemError.causeSummary() },
      systemError.message,
    );
    requestOutcome.set(reply.request, 'system_error');
    return providerResponse([], systemError.toItemError());
  }
  const items = (outcomes as Outcome[]).map((o, i): ProviderItem => {
    const key = keys[i] as string;
    if (o.ok) {
      const notes = o.verdict.notes ?? [];
      // An audit-level admission must leave a trace: it is what the operator reviews before enforcing.
      for (const note of notes) reply.log.warn({ image: key, validator: o.verdict.validator }, note);
      return { key, value: render(o.verdict), error: '' };
    }
    reply.log.info({ code: o.error.code, image: key }, o.error.message);
    return { key, value: '', error: o.error.toItemError() };
  });
  requestOutcome.set(reply.request, items.some((i) => i.error !== '') ? 'item_errors' : 'ok');
  return providerResponse(items, '');
}

function checkKind(body: ProviderRequest): void {
  if (body.apiVersion !== undefined && !ACCEPTED_API_VERSIONS.includes(body.apiVersion)) {
    throw new ProvenantError(
      'REQUEST_WRONG_KIND',
      `expected apiVersion ${API_VERSION}, found ${JSON.stringify(body.apiVersion)}`,
    );
  }
  if (body.kind !== undefined && body.kind !== 'ProviderRequest') {
    throw new ProvenantError(
      'REQUEST_WRONG_KIND',
      `expected kind ProviderRequest, found ${JSON.stringify(body.kind)}`,
    );
  }
}

export function providerResponse(items: ProviderItem[], systemError: string): ProviderResponse {
  return {
    apiVersion: API_VERSION,
    kind: 'ProviderResponse',
    response: { idempotent: true, items, systemError },
  };
}

function firstTransient(outcomes: readonly Outcome[]): ProvenantError | undefined {
  for (const o of outcomes) if (!o.ok && o.error.transient) return o.error;
  return undefined;
}

function deadlineError(keys: number, ms: number): ProvenantError {
  return new ProvenantError(
    'REQUEST_DEADLINE_EXCEEDED',
    `could not verify ${keys} image(s) within ${ms} ms (server.requestDeadlineMs); retry`,
  );
}
