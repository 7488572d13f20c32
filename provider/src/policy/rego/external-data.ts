/**
 * Gatekeeper's `external_data` builtin, answered offline. What Rego sees is what Gatekeeper's
 * frameworks give it: `responses` and `errors` as [key, value] pairs, `system_error`, `status_code`
 * (constraint framework, externaldata.go). Builtins in opa-wasm are synchronous, so the evaluator
 * asks for the answers first (see evaluate.ts) and the builtin only looks them up.
 */
export interface ExternalDataResponse {
  readonly responses: [string, unknown][];
  readonly errors: [string, string][];
  readonly system_error: string;
  readonly status_code: number;
}

export interface ExternalDataRequest {
  readonly provider: string;
  readonly keys: readonly string[];
}

/** Answers one external_data call, asynchronously (e.g. by running Provenant's verification). */
export type ExternalDataResolver = (request: ExternalDataRequest) => Promise<ExternalDataResponse>;

export const HTTP_OK = 200;

export function systemErrorResponse(message: string): ExternalDataResponse {
  return { responses: [], errors: [], system_error: message, status_code: 0 };
}

/** Reads the builtin's argument; Rego passes whatever the template wrote. */
export function toExternalDataRequest(arg: unknown): ExternalDataRequest | undefined {
  if (typeof arg !== 'object' || arg === null) return undefined;
  const { provider, keys } = arg as { provider?: unknown; keys?: unknown };
  if (typeof provider !== 'string' || !Array.isArray(keys)) return undefined;
  return { provider, keys: keys.map((k) => (typeof k === 'string' ? k : JSON.stringify(k))) };
}

export function requestId(request: ExternalDataRequest): string {
  return JSON.stringify([request.provider, request.keys]);
}
