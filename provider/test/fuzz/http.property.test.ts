/**
 * ProviderRequests (Gatekeeper's and Kyverno's bodies) through the real fastify app: whatever the body,
 * Content-Type or keys, the answer is a ProviderResponse — 200 with one item per key, or an error status
 * whose systemError carries a documented code — and never a 500.
 */
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect } from 'vitest';

import {
  API_VERSION,
  mutateResponseSchema,
  verifyResponseSchema,
  type ProviderResponse,
} from '../../src/http/index.ts';
import { ERROR_CODES } from '../../src/types/errors.ts';
import { serverFromYaml, STATIC_ALLOW_DENY, type TestServer } from '../helpers/runtime.ts';
import {
  hostileJsonText,
  hostileString,
  hostileValue,
  mutatedJsonText,
  property,
  rawBytes,
} from './harness.ts';

// Every image is denied by a static validator, except digest-only ones under allowed/: no key ever
// makes the verifier contact a registry.
const CONFIG = `
${STATIC_ALLOW_DENY}policy:
  - pattern: "*:*"
    validator: deny
  - pattern: "*"
    validator: deny
  - pattern: "registry.test/allowed/*"
    validator: allow
`;
const MAX_KEYS = 1000;
const ajv = new Ajv({ allErrors: true });
const validResponse = {
  '/v1/verify': ajv.compile(verifyResponseSchema),
  '/v1/mutate': ajv.compile(mutateResponseSchema),
};

const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
const key = fc.oneof(
  hex64.map((h) => `registry.test/allowed/app@sha256:${h}`),
  fc.constantFrom('nginx', 'nginx:1.25', 'registry.test/denied/app:1', 'quay.io/a/b:c'),
  hostileString.map((s) => s.slice(0, 2000)),
);
const keys = fc.oneof(
  { weight: 6, arbitrary: fc.array(key, { maxLength: 20 }) },
  { weight: 1, arbitrary: fc.array(key, { minLength: MAX_KEYS - 5, maxLength: MAX_KEYS + 5 }) },
  { weight: 2, arbitrary: fc.array(fc.oneof(key, hostileValue), { maxLength: 10 }) },
  { weight: 1, arbitrary: hostileValue },
);
const SAMPLE_REQUEST = {
  apiVersion: API_VERSION,
  kind: 'ProviderRequest',
  request: { keys: ['nginx:1', 'registry.test/denied/app:1'] },
};
const request = fc.record(
  {
    apiVersion: fc.oneof(
      fc.constant(API_VERSION),
      fc.constant('externaldata.gatekeeper.sh/v1alpha1'),
      hostileValue,
    ),
    kind: fc.oneof(fc.constant('ProviderRequest'), hostileValue),
    request: fc.oneof(
      { weight: 5, arbitrary: fc.record({ keys }, { requiredKeys: [] }) },
      { weight: 1, arbitrary: hostileValue },
    ),
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  request.map((r) => JSON.stringify(r)),
  mutatedJsonText(SAMPLE_REQUEST),
  hostileJsonText,
  rawBytes.map((b) => b.toString('latin1')),
  fc.constant(''),
);
// Header values are visible ASCII (undici and node refuse others before a request is made).
const contentType = fc.option(
  fc.oneof(
    fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      ';',
    ),
    fc.string({ unit: fc.constantFrom(...'abc/;=+-. ') }),
  ),
  { nil: undefined },
);

describe('ProviderRequests (the HTTP app)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverFromYaml(CONFIG);
  });
  afterAll(async () => {
    await server.close();
  });

  property(
    'any body and Content-Type gets a ProviderResponse: one item per key, or a coded error, never a 500',
    'POST /v1/verify, /v1/mutate',
    fc.tuple(fc.constantFrom('/v1/verify' as const, '/v1/mutate' as const), body, contentType),
    async ([url, payload, type]) => {
      const res = await server.app.inject({
        method: 'POST',
        url,
        payload,
        headers: type === undefined ? {} : { 'content-type': type },
      });
      expect(res.statusCode).not.toBe(500);
      const answer = res.json<ProviderResponse>();
      const valid = validResponse[url];
      expect(valid(answer), JSON.stringify(valid.errors)).toBe(true);
      const { systemError } = answer.response;
      if (systemError !== '') expect(Object.keys(ERROR_CODES)).toContain(systemError.split(':')[0]);
      if (res.statusCode === 200 && systemError === '') {
        const sent = (JSON.parse(payload) as { request: { keys: unknown[] } }).request.keys;
        expect(answer.response.items.map((i) => i.key)).toEqual([...new Set(sent)]);
        for (const item of answer.response.items) {
          if (item.error !== '') expect(Object.keys(ERROR_CODES)).toContain(item.error.split(':')[0]);
        }
      } else expect(systemError).not.toBe('');
    },
    { runs: 400 },
  );
});
