/**
 * Gatekeeper's external data protocol, `externaldata.gatekeeper.sh/v1beta1` (pkg/externaldata in
 * frameworks): ProviderRequest { apiVersion, kind, request: { keys } } and
 * ProviderResponse { apiVersion, kind, response: { idempotent, items: [{ key, value, error }], systemError } }.
 * Kyverno's apiCall sends the same JSON built from its `data` list, sometimes without apiVersion/kind.
 */
export const API_VERSION = 'externaldata.gatekeeper.sh/v1beta1';
export const ACCEPTED_API_VERSIONS = [API_VERSION, 'externaldata.gatekeeper.sh/v1alpha1'];

export interface ProviderRequest {
  apiVersion?: string;
  kind?: string;
  request: { keys: string[] };
}

export interface ProviderItem {
  key: string;
  value: unknown;
  error: string;
}

export interface ProviderResponse {
  apiVersion: string;
  kind: 'ProviderResponse';
  response: { idempotent: boolean; items: ProviderItem[]; systemError: string };
}

export const providerRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['request'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    request: {
      type: 'object',
      additionalProperties: false,
      required: ['keys'],
      properties: { keys: { type: 'array', items: { type: 'string', maxLength: 4096 } } },
    },
  },
} as const;

const verdictValue = {
  type: 'object',
  additionalProperties: false,
  required: ['image', 'digest', 'validator', 'signers', 'rule'],
  properties: {
    image: { type: 'string' },
    digest: { type: 'string' },
    validator: { type: 'string' },
    signers: { type: 'array', items: { type: 'string' } },
    notes: { type: 'array', items: { type: 'string' } },
    rule: { type: 'string' },
  },
} as const;

function responseSchema(value: object): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['apiVersion', 'kind', 'response'],
    properties: {
      apiVersion: { type: 'string', const: API_VERSION },
      kind: { type: 'string', const: 'ProviderResponse' },
      response: {
        type: 'object',
        additionalProperties: false,
        required: ['idempotent', 'items', 'systemError'],
        properties: {
          idempotent: { type: 'boolean' },
          systemError: { type: 'string' },
          items: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['key', 'value', 'error'],
              properties: {
                key: { type: 'string' },
                error: { type: 'string' },
                value: { anyOf: [value, { type: 'string', const: '' }] },
              },
            },
          },
        },
      },
    },
  };
}

export const verifyResponseSchema = responseSchema(verdictValue);
export const mutateResponseSchema = responseSchema({ type: 'string', minLength: 1 });
