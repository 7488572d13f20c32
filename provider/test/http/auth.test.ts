/**
 * Who may ask /v1/*: Kyverno's bearer token (reviewed by a TokenReviewer whose Kubernetes API answers
 * are given here), per-route accepted credentials, and the answers a refused caller gets. The client
 * certificate side on a real TLS listener is in tls.test.ts.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';

import { TokenReviewer, type ReviewStatus } from '../../src/auth/index.ts';
import { buildServer } from '../../src/http/index.ts';
import { createLogger, Metrics } from '../../src/observability/index.ts';
import { Runtime } from '../../src/service/index.ts';
import { sha256Digest } from '../helpers/hostile-server.ts';
import { configFromYaml, STATIC_ALLOW_DENY, TEST_CONFIG_SOURCE } from '../helpers/runtime.ts';

const ALLOWED = `registry.test/allowed/app@${sha256Digest('allowed')}`;
const KYVERNO = 'system:serviceaccount:kyverno:kyverno-admission-controller';
const GOOD = 'good-token';
const OTHER_ACCOUNT = 'other-account-token';
const WRONG_AUDIENCE = 'wrong-audience-token';
const UNREVIEWABLE = 'api-down-token';

/** What the Kubernetes API would answer for each token of these tests. */
function review(token: string, audience: string): Promise<ReviewStatus> {
  if (token === UNREVIEWABLE)
    return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  const username = token === OTHER_ACCOUNT ? 'system:serviceaccount:default:app' : KYVERNO;
  const audiences = token === WRONG_AUDIENCE ? [] : [audience];
  return Promise.resolve({ authenticated: token !== 'forged', username, audiences, error: undefined });
}

const servers: { app: FastifyInstance; runtime: Runtime }[] = [];
afterEach(async () => {
  for (const { app, runtime } of servers.splice(0)) {
    await app.close();
    await runtime.close();
  }
});

async function start(authYaml: string): Promise<{ app: FastifyInstance; metrics: Metrics }> {
  const config = configFromYaml(`${STATIC_ALLOW_DENY}policy:
  - pattern: "registry.test/allowed/*"
    validator: allow
server:
  auth:
${authYaml}`);
  const metrics = new Metrics(false);
  const runtime = new Runtime(config, TEST_CONFIG_SOURCE, { metrics });
  const app = await buildServer({
    runtime,
    metrics,
    logger: createLogger('silent'),
    tokenReviewer: new TokenReviewer(config.server.auth.kyverno, review),
  });
  servers.push({ app, runtime });
  return { app, metrics };
}

const KYVERNO_ON = '    kyverno: { enabled: true }\n';

interface Answer {
  status: number;
  systemError: string;
  items: unknown[];
  wwwAuthenticate: unknown;
}

/** Posts a ProviderRequest as Kyverno does: no Content-Type, an optional bearer token. */
async function post(app: FastifyInstance, url: string, authorization?: string): Promise<Answer> {
  const res = await app.inject({
    method: 'POST',
    url,
    headers: authorization === undefined ? {} : { authorization },
    payload: JSON.stringify({ request: { keys: [ALLOWED] } }),
  });
  const body = res.json<{ response: { systemError: string; items: unknown[] } }>();
  return { status: res.statusCode, ...body.response, wwwAuthenticate: res.headers['www-authenticate'] };
}

describe('Kyverno token authentication', () => {
  it('answers a request carrying a token the API accepts, with no Content-Type (as Kyverno sends it)', async () => {
    const { app } = await start(KYVERNO_ON);
    const answer = await post(app, '/v1/verify', `Bearer ${GOOD}`);
    expect(answer.status).toBe(200);
    expect(answer.items).toHaveLength(1);
    expect((await post(app, '/v1/mutate', `bearer ${GOOD}`)).status).toBe(200);
  });

  it('refuses a request with no credential with a 401 REQUEST_UNAUTHENTICATED and WWW-Authenticate: Bearer', async () => {
    const { app, metrics } = await start(KYVERNO_ON);
    const answer = await post(app, '/v1/verify');
    expect(answer).toMatchObject({ status: 401, items: [], wwwAuthenticate: 'Bearer' });
    expect(answer.systemError).toBe(
      'REQUEST_UNAUTHENTICATED: expected a bearer token for POST /v1/verify, found no credential',
    );
    const counted = await metrics.registry.getSingleMetricAsString('provenant_auth_refusals_total');
    expect(counted).toContain(
      'provenant_auth_refusals_total{route="/v1/verify",code="REQUEST_UNAUTHENTICATED"} 1',
    );
  });

  it('refuses another Authorization scheme as unauthenticated', async () => {
    const { app } = await start(KYVERNO_ON);
    const answer = await post(app, '/v1/verify', `Basic ${Buffer.from('a:b').toString('base64')}`);
    expect(answer.status).toBe(401);
    expect(answer.systemError).toMatch(/found an Authorization header of another scheme$/);
  });

  it.each([
    ['a token the API does not authenticate', 'forged', 401, 'REQUEST_TOKEN_INVALID'],
    ['a token for another audience', WRONG_AUDIENCE, 401, 'REQUEST_TOKEN_INVALID'],
    [
      'a token of a service account not on the list',
      OTHER_ACCOUNT,
      403,
      'REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED',
    ],
    [
      'a token while the API is unreachable (a systemError, never an admission)',
      UNREVIEWABLE,
      503,
      'AUTH_REVIEW_UNAVAILABLE',
    ],
  ])('refuses %s', async (_what, token, status, code) => {
    const { app } = await start(KYVERNO_ON);
    const answer = await post(app, '/v1/verify', `Bearer ${token}`);
    expect(answer.status).toBe(status);
    expect(answer.items).toEqual([]);
    expect(answer.systemError.startsWith(`${code}: `)).toBe(true);
    expect(answer.systemError).not.toContain(token);
  });

  it.each(['/healthz', '/readyz', '/metrics'])('leaves %s open', async (url) => {
    const { app } = await start(KYVERNO_ON);
    expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200);
  });

  it('refuses an unknown route to a caller with no credential, rather than saying what exists', async () => {
    const { app } = await start(KYVERNO_ON);
    expect((await post(app, '/v1/other')).status).toBe(401);
    expect((await post(app, '/v1/other', `Bearer ${GOOD}`)).status).toBe(404);
  });

  it('lets server.auth.routes narrow a route to a credential that is switched on', async () => {
    const { app } = await start(`${KYVERNO_ON}    routes: { verify: [kyvernoToken] }\n`);
    expect((await post(app, '/v1/verify', `Bearer ${GOOD}`)).status).toBe(200);
  });

  it('leaves the routes open when no credential is switched on, as before', async () => {
    const { app } = await start('    kyverno: { enabled: false }\n');
    expect((await post(app, '/v1/verify')).status).toBe(200);
  });
});

describe('server.auth configuration', () => {
  it('refuses a route that accepts only credentials that are switched off, naming both', () => {
    expect(() =>
      configFromYaml(`${STATIC_ALLOW_DENY}policy:
  - { pattern: "*:*", validator: deny }
server:
  auth:
    routes: { verify: [kyvernoToken, clientCertificate], mutate: [kyvernoToken] }
`),
    ).toThrow(
      /\/server\/auth\/routes\/verify: expected credentials that are switched on, found kyvernoToken \(server\.auth\.kyverno\.enabled is false\)[\s\S]*\/server\/auth\/routes\/verify: .*found clientCertificate \(server\.tls\.clientCA is not set\)[\s\S]*\/server\/auth\/routes\/mutate/,
    );
  });

  it("defaults to Kyverno's chart audience and admission controller, 10 s of review cache, switched off", () => {
    const config = configFromYaml(`${STATIC_ALLOW_DENY}policy:\n  - { pattern: "*:*", validator: deny }\n`);
    expect(config.server.auth.kyverno).toEqual({
      enabled: false,
      audience: 'kyverno-svc.kyverno.io',
      serviceAccounts: [KYVERNO],
      reviewCacheSeconds: 10,
    });
  });
});
