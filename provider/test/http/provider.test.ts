import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  API_VERSION,
  mutateResponseSchema,
  verifyResponseSchema,
  type ProviderResponse,
} from '../../src/http/index.ts';
import { sha256Digest } from '../helpers/hostile-server.ts';
import {
  serverFromYaml,
  STATIC_ALLOW_DENY,
  TEST_CONFIG_SOURCE,
  type TestServer,
} from '../helpers/runtime.ts';

// No catch-all rule, so an image outside these patterns has no matching rule. 127.0.0.1:1 refuses
// connections: the real registry client fails there with ECONNREFUSED.
const CONFIG = `
${STATIC_ALLOW_DENY}policy:
  - pattern: "registry.test/allowed/*"
    validator: allow
  - pattern: "registry.test/denied/*"
    validator: deny
  - pattern: "127.0.0.1:1/*"
    validator: allow
  - pattern: "docker.io/acme/*"
    validator: allow
registries:
  - host: "127.0.0.1:1"
    insecure: true
`;

const DIGEST = sha256Digest('allowed image');
/** Pinned by digest alone (a tag as well would be resolved at the registry), so no registry is asked. */
const ALLOWED = `registry.test/allowed/app@${DIGEST}`;
const DENIED = 'registry.test/denied/app:1.2';
const UNMATCHED = 'quay.io/other/app:3';
const UNREACHABLE = '127.0.0.1:1/team/app:v1';
const MAX_KEYS_DEFAULT = 1000;
const BODY_LIMIT_DEFAULT_BYTES = 1_048_576;

const ajv = new Ajv({ allErrors: true });
const validVerifyResponse = ajv.compile(verifyResponseSchema);
const validMutateResponse = ajv.compile(mutateResponseSchema);

type Route = '/v1/verify' | '/v1/mutate';

interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: ProviderResponse;
}

function providerRequest(keys: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: 'ProviderRequest', request: { keys }, ...extra };
}

describe('the provider HTTP API', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await serverFromYaml(CONFIG);
  });
  afterAll(async () => {
    await server.close();
  });

  /** Posts a body (objects as JSON with a JSON Content-Type; strings as they are, with no Content-Type). */
  async function post(url: Route, payload: object | string): Promise<Answer> {
    const res = await server.app.inject({ method: 'POST', url, payload });
    const body = res.json<ProviderResponse>();
    const valid = url === '/v1/verify' ? validVerifyResponse : validMutateResponse;
    expect(valid(body), JSON.stringify(valid.errors)).toBe(true);
    return { status: res.statusCode, contentType: res.headers['content-type'] as string | undefined, body };
  }

  async function expectStillAnswering(): Promise<void> {
    const { status, body } = await post('/v1/verify', providerRequest([ALLOWED]));
    expect(status).toBe(200);
    expect(body.response.systemError).toBe('');
    expect(body.response.items).toEqual([
      { key: ALLOWED, value: expect.objectContaining({ digest: DIGEST }) as unknown, error: '' },
    ]);
  }

  describe('refusing bad requests', () => {
    const bigKey = 'a'.repeat(5 * 1024 * 1024);
    const tooManyKeys = Array.from({ length: 10_000 }, (_, i) => `r.test/a/${i}`);
    const cases: { name: string; payload: object | string; status: number; code: string; says: RegExp }[] = [
      {
        name: 'a body that is not JSON',
        payload: 'this is { not json',
        status: 400,
        code: 'REQUEST_MALFORMED',
        says: /expected a JSON body/,
      },
      {
        name: 'a JSON body that is not an object',
        payload: '["registry.test/allowed/app:1"]',
        status: 400,
        code: 'REQUEST_MALFORMED',
        says: /expected a ProviderRequest .*found: \/ must be object/,
      },
      {
        name: 'a body without a request',
        payload: { apiVersion: API_VERSION, kind: 'ProviderRequest' },
        status: 400,
        code: 'REQUEST_MALFORMED',
        says: /expected a ProviderRequest .*found: .*required property 'request'/,
      },
      {
        name: 'keys that are not an array',
        payload: providerRequest(ALLOWED),
        status: 400,
        code: 'REQUEST_MALFORMED',
        says: /expected a ProviderRequest .*found: \/request\/keys must be array/,
      },
      {
        name: 'a key that is a number',
        payload: providerRequest([ALLOWED, 42]),
        status: 400,
        code: 'REQUEST_MALFORMED',
        says: /expected a ProviderRequest .*found: \/request\/keys\/1 must be string/,
      },
      {
        name: 'a key that is null',
        payload: providerRequest([null]),
        status: 400,
        code: 'REQUEST_MALFORMED',
        says: /found: \/request\/keys\/0 must be string/,
      },
      {
        name: 'a wrong kind',
        payload: providerRequest([ALLOWED], { kind: 'AdmissionReview' }),
        status: 400,
        code: 'REQUEST_WRONG_KIND',
        says: /expected kind ProviderRequest, found "AdmissionReview"/,
      },
      {
        name: 'a wrong apiVersion',
        payload: providerRequest([ALLOWED], { apiVersion: 'admission.k8s.io/v1' }),
        status: 400,
        code: 'REQUEST_WRONG_KIND',
        says: /expected apiVersion externaldata\.gatekeeper\.sh\/v1beta1, found "admission\.k8s\.io\/v1"/,
      },
      {
        name: '10,000 keys',
        payload: providerRequest(tooManyKeys),
        status: 400,
        code: 'REQUEST_TOO_MANY_KEYS',
        says: new RegExp(`expected at most ${MAX_KEYS_DEFAULT} distinct keys .*found 10000`),
      },
      {
        name: 'a 5 MB body',
        payload: providerRequest([bigKey]),
        status: 413,
        code: 'REQUEST_TOO_LARGE',
        says: new RegExp(`expected a body of at most ${BODY_LIMIT_DEFAULT_BYTES} bytes`),
      },
    ];

    it.each(cases)(
      'answers $name with a $status ProviderResponse naming $code, then keeps answering',
      async ({ payload, status, code, says }) => {
        const answer = await post('/v1/verify', payload);
        expect(answer.status).toBe(status);
        expect(answer.contentType).toMatch(/^application\/json/);
        expect(answer.body.kind).toBe('ProviderResponse');
        expect(answer.body.response.items).toEqual([]);
        expect(answer.body.response.systemError.startsWith(`${code}: `)).toBe(true);
        expect(answer.body.response.systemError).toMatch(says);
        await expectStillAnswering();
      },
    );

    it('accepts exactly server.maxKeys distinct keys, counting duplicates once', async () => {
      const keys = Array.from({ length: MAX_KEYS_DEFAULT }, (_, i) => `r.test/a/${i}`);
      const { status, body } = await post('/v1/verify', providerRequest([...keys, ...keys.slice(0, 10)]));
      expect(status).toBe(200);
      expect(body.response.items).toHaveLength(MAX_KEYS_DEFAULT);
    });

    /** Any route's error answer: a ProviderResponse with no items and a coded systemError. */
    function expectCodedAnswer(
      res: { statusCode: number; json: () => unknown },
      status: number,
      says: RegExp,
    ): void {
      expect(res.statusCode).toBe(status);
      const body = res.json() as ProviderResponse;
      expect(validVerifyResponse(body), JSON.stringify(validVerifyResponse.errors)).toBe(true);
      expect(body.response.items).toEqual([]);
      expect(body.response.systemError).toMatch(says);
    }

    it('answers an unknown route with a 404 ProviderResponse naming REQUEST_NOT_FOUND and the routes it serves', async () => {
      const res = await server.app.inject({ method: 'POST', url: '/v2/verify?x=1', payload: {} });
      expectCodedAnswer(
        res,
        404,
        /^REQUEST_NOT_FOUND: no route POST \/v2\/verify; the provider serves POST \/v1\/verify and POST \/v1\/mutate$/,
      );
    });

    it.each([
      ['GET', '/v1/verify', 'POST'],
      ['DELETE', '/v1/mutate', 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
    ])(
      'answers %s %s with a 405 naming REQUEST_METHOD_NOT_ALLOWED and Allow: %s',
      async (method, url, allow) => {
        const res = await server.app.inject({ method: method as 'GET', url });
        expectCodedAnswer(
          res,
          405,
          new RegExp(`^REQUEST_METHOD_NOT_ALLOWED: expected ${allow} for ${url}, found ${method}$`),
        );
        expect(res.headers['allow']).toBe(allow);
      },
    );

    it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/yaml'])(
      'answers a body declared as %s with a 415 naming REQUEST_UNSUPPORTED_MEDIA_TYPE',
      async (contentType) => {
        const res = await server.app.inject({
          method: 'POST',
          url: '/v1/verify',
          headers: { 'content-type': contentType },
          payload: JSON.stringify(providerRequest([ALLOWED])),
        });
        expectCodedAnswer(
          res,
          415,
          new RegExp(
            `^REQUEST_UNSUPPORTED_MEDIA_TYPE: expected Content-Type application/json \\(or none\\), found "${contentType}"$`,
          ),
        );
        await expectStillAnswering();
      },
    );

    it('answers a body declared as application/json with a charset', async () => {
      const res = await server.app.inject({
        method: 'POST',
        url: '/v1/verify',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        payload: JSON.stringify(providerRequest([ALLOWED])),
      });
      expect(res.statusCode).toBe(200);
      expect(res.json<ProviderResponse>().response.items[0]?.key).toBe(ALLOWED);
    });
  });

  describe('answering keys', () => {
    it("answers Kyverno's apiCall body, sent without Content-Type, apiVersion or kind", async () => {
      // A string payload is sent as is, with no Content-Type header.
      const { status, body } = await post('/v1/verify', JSON.stringify({ request: { keys: [ALLOWED] } }));
      expect(status).toBe(200);
      expect(body.apiVersion).toBe(API_VERSION);
      expect(body.response.items).toEqual([
        { key: ALLOWED, value: expect.objectContaining({ digest: DIGEST }) as unknown, error: '' },
      ]);
    });

    it('gives the verdict object on /v1/verify for an image a static rule allows', async () => {
      const { status, body } = await post('/v1/verify', providerRequest([ALLOWED]));
      expect(status).toBe(200);
      expect(body.response).toEqual({
        idempotent: true,
        systemError: '',
        items: [
          {
            key: ALLOWED,
            error: '',
            value: {
              image: ALLOWED,
              digest: DIGEST,
              validator: 'allow',
              signers: [],
              rule: 'registry.test/allowed/*',
            },
          },
        ],
      });
    });

    it("normalises the verdict's image but keeps the key's spelling on /v1/mutate", async () => {
      const key = `acme/app@${DIGEST}`;
      const verify = await post('/v1/verify', providerRequest([key]));
      expect(verify.body.response.items[0]?.value).toMatchObject({
        image: `docker.io/acme/app@${DIGEST}`,
        rule: 'docker.io/acme/*',
      });
      const mutate = await post('/v1/mutate', providerRequest([key]));
      expect(mutate.body.response.items[0]?.value).toBe(key);
    });

    it('gives back a digest-pinned key itself on /v1/mutate, idempotently', async () => {
      const { status, body } = await post('/v1/mutate', providerRequest([ALLOWED]));
      expect(status).toBe(200);
      expect(body.response.idempotent).toBe(true);
      expect(body.response.items).toEqual([{ key: ALLOWED, value: ALLOWED, error: '' }]);
    });

    it('reports an image no rule matches as an item error naming the image', async () => {
      const { status, body } = await post('/v1/verify', providerRequest([UNMATCHED]));
      expect(status).toBe(200);
      expect(body.response.systemError).toBe('');
      const [item] = body.response.items;
      expect(item?.key).toBe(UNMATCHED);
      expect(item?.value).toBe('');
      expect(item?.error).toMatch(/^POLICY_NO_MATCHING_RULE: /);
      expect(item?.error).toContain(UNMATCHED);
    });

    it('reports a static deny as an item error naming the image and the rule pattern', async () => {
      const { body } = await post('/v1/mutate', providerRequest([DENIED]));
      const [item] = body.response.items;
      expect(item?.value).toBe('');
      expect(item?.error).toMatch(/^POLICY_STATIC_DENY: /);
      expect(item?.error).toContain(DENIED);
      expect(item?.error).toContain('"registry.test/denied/*"');
    });

    it('reports an invalid reference as an item error and still answers the other keys', async () => {
      const invalid = 'Registry.Test/UPPER CASE:tag';
      const { status, body } = await post('/v1/verify', providerRequest([invalid, ALLOWED, DENIED]));
      expect(status).toBe(200);
      expect(body.response.systemError).toBe('');
      const byKey = new Map(body.response.items.map((i) => [i.key, i]));
      expect(byKey.get(invalid)?.error).toMatch(/^REFERENCE_INVALID: /);
      expect(byKey.get(ALLOWED)).toMatchObject({ error: '', value: { digest: DIGEST } });
      expect(byKey.get(DENIED)?.error).toMatch(/^POLICY_STATIC_DENY: /);
    });

    it('answers duplicate keys once', async () => {
      const { body } = await post('/v1/mutate', providerRequest([ALLOWED, DENIED, ALLOWED, ALLOWED, DENIED]));
      expect(body.response.items.map((i) => i.key)).toEqual([ALLOWED, DENIED]);
    });

    it('answers an empty key list with no items', async () => {
      const { status, body } = await post('/v1/verify', providerRequest([]));
      expect(status).toBe(200);
      expect(body.response).toEqual({ idempotent: true, systemError: '', items: [] });
    });

    it('reports an unreachable registry as a systemError with no items', async () => {
      const { status, body } = await post('/v1/verify', providerRequest([ALLOWED, UNREACHABLE]));
      expect(status).toBe(200);
      expect(body.response.items).toEqual([]);
      expect(body.response.systemError).toMatch(/^REGISTRY_UNREACHABLE: /);
      expect(body.response.systemError).toContain(UNREACHABLE);
    });
  });

  describe('health and metrics', () => {
    it('answers /healthz with 200', async () => {
      const res = await server.app.inject({ method: 'GET', url: '/healthz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ok' });
    });

    it('answers /readyz with 200 naming the config source', async () => {
      const res = await server.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'ready', config: TEST_CONFIG_SOURCE });
    });

    it('counts requests by route and outcome, and times them', async () => {
      await post('/v1/mutate', providerRequest([ALLOWED]));
      await post('/v1/mutate', providerRequest([DENIED]));
      await post('/v1/mutate', providerRequest([UNREACHABLE]));
      await post('/v1/mutate', 'not json');
      const res = await server.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      for (const outcome of ['ok', 'item_errors', 'system_error', 'client_error']) {
        expect(res.body).toMatch(
          new RegExp(
            `^provenant_http_requests_total\\{route="/v1/mutate",outcome="${outcome}"\\} [1-9]`,
            'm',
          ),
        );
      }
      expect(res.body).toMatch(
        /^provenant_http_request_duration_seconds_count\{route="\/v1\/mutate",outcome="ok"\} [1-9]/m,
      );
      expect(res.body).toMatch(/^provenant_http_request_duration_seconds_bucket\{le="0.1",/m);
    });

    // Last in this file: they shut the runtime down.
    it('answers /readyz with 503 while draining, and still verifies, closing each connection after its answer', async () => {
      server.runtime.drain();
      const res = await server.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'shutting down' });
      expect((await server.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      const verify = await server.app.inject({
        method: 'POST',
        url: '/v1/verify',
        payload: providerRequest([ALLOWED]),
      });
      expect(verify.statusCode).toBe(200);
      expect(verify.headers['connection']).toBe('close');
      expect(verify.json<ProviderResponse>().response.items[0]).toMatchObject({ key: ALLOWED, error: '' });
    });

    it('answers a request that reaches it after the verifier closed with a 503 naming SERVER_SHUTTING_DOWN', async () => {
      await server.runtime.close();
      const { status, body } = await post('/v1/verify', providerRequest([ALLOWED]));
      expect(status).toBe(503);
      expect(body.response.items).toEqual([]);
      expect(body.response.systemError).toMatch(/^SERVER_SHUTTING_DOWN: /);
      expect((await server.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    });
  });
});
