/**
 * Evaluates a ConstraintTemplate's `violation` rules compiled to WASM, with `external_data`
 * answered by a resolver. opa-wasm calls builtins synchronously, so evaluation runs in passes: a
 * pass records the external_data requests it could not answer yet, the resolver answers them, and
 * the next pass sees the answers. Templates whose keys do not depend on earlier answers (all of
 * ours) need two passes.
 */
import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { ProvenantError } from '../../types/errors.ts';
import { EXTERNAL_DATA_BUILTIN } from './capabilities.ts';
import {
  HTTP_OK,
  requestId,
  systemErrorResponse,
  toExternalDataRequest,
  type ExternalDataRequest,
  type ExternalDataResolver,
  type ExternalDataResponse,
} from './external-data.ts';
import { compileToWasm } from './opa.ts';
import type { TemplateRego } from './template.ts';

const MAX_PASSES = 4;
const UNANSWERED: ExternalDataResponse = {
  responses: [],
  errors: [],
  system_error: '',
  status_code: HTTP_OK,
};

export interface RegoViolation {
  readonly msg: string;
  readonly details?: unknown;
}

export class CompiledTemplate {
  /** Answers of the current violations() call; the builtin reads them synchronously. */
  private answers = new Map<string, ExternalDataResponse>();
  private pending = new Map<string, ExternalDataRequest>();

  private constructor(
    readonly template: TemplateRego,
    private policy: LoadedPolicy | undefined,
  ) {}

  static async compile(template: TemplateRego): Promise<CompiledTemplate> {
    const entrypoint = violationEntrypoint(template);
    const wasm = await compileToWasm(template.rego, [entrypoint]);
    const compiled = new CompiledTemplate(template, undefined);
    compiled.policy = await loadPolicy(wasm, undefined, {
      [EXTERNAL_DATA_BUILTIN]: (arg: unknown) => compiled.externalData(arg),
    });
    return compiled;
  }

  /** The violations for one Gatekeeper input ({review, parameters}). */
  async violations(input: object, resolve: ExternalDataResolver): Promise<RegoViolation[]> {
    this.answers = new Map();
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      this.pending = new Map();
      const result = this.evaluate(input);
      if (this.pending.size === 0) return result;
      const requests = [...this.pending.values()];
      const responses = await Promise.all(requests.map((r) => resolve(r)));
      requests.forEach((r, i) => this.answers.set(requestId(r), responses[i] as ExternalDataResponse));
    }
    throw new ProvenantError(
      'POLICY_TEST_EVALUATION_FAILED',
      `template ${this.template.name} still asked for new external_data keys after ${MAX_PASSES} passes; its keys must not depend on earlier answers`,
    );
  }

  private evaluate(input: object): RegoViolation[] {
    let result: unknown;
    try {
      result = this.policy?.evaluate(input, violationEntrypoint(this.template));
    } catch (err) {
      const message = typeof err === 'string' ? err : ((err as { message?: string }).message ?? String(err));
      throw new ProvenantError(
        'POLICY_TEST_EVALUATION_FAILED',
        `template ${this.template.name}: ${message}`,
        { cause: err },
      );
    }
    // opa-wasm answers [{result: <value>}] when the rule is defined, [] when it is not.
    const first = Array.isArray(result) ? (result[0] as { result?: unknown } | undefined) : undefined;
    const set = first?.result;
    if (set === undefined) return [];
    if (!Array.isArray(set)) {
      throw new ProvenantError(
        'POLICY_TEST_EVALUATION_FAILED',
        `template ${this.template.name}: expected violation to be a set, found ${JSON.stringify(set)}`,
      );
    }
    return set.map((v: unknown) => toViolation(v));
  }

  private externalData(arg: unknown): ExternalDataResponse {
    const request = toExternalDataRequest(arg);
    if (request === undefined) {
      return systemErrorResponse('external_data expects {"provider": string, "keys": [string]}');
    }
    const id = requestId(request);
    const answer = this.answers.get(id);
    if (answer !== undefined) return answer;
    this.pending.set(id, request);
    return UNANSWERED;
  }
}

export function violationEntrypoint(template: TemplateRego): string {
  return `${template.packagePath}/violation`;
}

function toViolation(value: unknown): RegoViolation {
  if (typeof value === 'object' && value !== null && typeof (value as { msg?: unknown }).msg === 'string') {
    const { msg, details } = value as { msg: string; details?: unknown };
    return details === undefined ? { msg } : { msg, details };
  }
  return { msg: JSON.stringify(value) };
}
