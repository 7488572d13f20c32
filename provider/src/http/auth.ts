/**
 * Who may ask: /v1/* answer only a caller presenting a credential the route accepts, Gatekeeper's
 * client certificate (mTLS, server.tls.clientCA) or Kyverno's service-account token (TokenReview,
 * server.auth.kyverno). Probes and metrics stay open (kubelet and Prometheus present neither). With
 * no credential switched on, the routes are open, as before authentication existed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { TokenReviewer } from '../auth/index.ts';
import type { AuthMethod, Config } from '../config/index.ts';
import type { Metrics } from '../observability/index.ts';
import { ProvenantError } from '../types/errors.ts';

/** Routes kubelet probes and Prometheus reach without a credential. */
export const PUBLIC_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

const ROUTE_NAMES: Record<string, 'verify' | 'mutate'> = { '/v1/verify': 'verify', '/v1/mutate': 'mutate' };

export interface Credentials {
  /** server.tls.clientCA is set: a certificate it signed is a credential. */
  readonly clientCertificates: boolean;
  /** server.auth.kyverno.enabled: a token this reviewer accepts is a credential. */
  readonly tokenReviewer: TokenReviewer | undefined;
}

export type CredentialCheck = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** The onRequest check; undefined when no credential is switched on (every route open). */
export function credentialCheck(
  server: Config['server'],
  credentials: Credentials,
  metrics: Metrics,
): CredentialCheck | undefined {
  const enabled: AuthMethod[] = [
    ...(credentials.clientCertificates ? (['clientCertificate'] as const) : []),
    ...(credentials.tokenReviewer !== undefined ? (['kyvernoToken'] as const) : []),
  ];
  if (enabled.length === 0) return undefined;
  // An unknown path is refused like a known one (rather than saying what exists) with every credential.
  const accepted = (url: string): readonly AuthMethod[] => {
    const name = ROUTE_NAMES[url];
    return (name === undefined ? undefined : server.auth.routes?.[name]) ?? enabled;
  };
  return async (req, reply) => {
    const route = req.routeOptions.url ?? '';
    if (PUBLIC_ROUTES.has(route)) return;
    try {
      await authenticate(req, accepted(route), credentials);
    } catch (err) {
      const error = err as ProvenantError;
      metrics.authRefusals.inc({ route: route || 'unknown', code: error.code });
      if (error.code === 'REQUEST_UNAUTHENTICATED' || error.code === 'REQUEST_TOKEN_INVALID') {
        // RFC 6750 §3: a 401 names the scheme the client should use.
        void reply.header('www-authenticate', 'Bearer');
      }
      req.log.info({ code: error.code, route }, error.message);
      throw error;
    }
  };
}

async function authenticate(
  req: FastifyRequest,
  accepted: readonly AuthMethod[],
  credentials: Credentials,
): Promise<void> {
  const certificate = accepted.includes('clientCertificate') ? clientCertificate(req) : 'not accepted';
  if (certificate === 'verified') return;
  const reviewer = accepted.includes('kyvernoToken') ? credentials.tokenReviewer : undefined;
  const token = bearerToken(req);
  if (reviewer !== undefined && token !== undefined) {
    await reviewer.authenticate(token);
    return;
  }
  const path = `${req.method} ${req.url.split('?')[0] ?? ''}`;
  if (reviewer === undefined) {
    throw new ProvenantError(
      'REQUEST_CLIENT_CERTIFICATE_REQUIRED',
      `expected a client certificate signed by server.tls.clientCA for ${path}, found ${certificate}`,
    );
  }
  const wanted = accepted.includes('clientCertificate')
    ? 'a client certificate signed by server.tls.clientCA or a bearer token'
    : 'a bearer token';
  const found =
    req.headers.authorization !== undefined
      ? 'an Authorization header of another scheme'
      : certificate.startsWith('a certificate')
        ? certificate
        : 'no credential';
  throw new ProvenantError('REQUEST_UNAUTHENTICATED', `expected ${wanted} for ${path}, found ${found}`);
}

/**
 * Fails closed: a socket that is not TLS has no certificate. `authorized` alone is not enough: node
 * reports a resumed TLS 1.3 session as authorized when the client presented no certificate at all
 * (VerifyPeerCertificate takes the resumption PSK as authentication), so a certificate must be there too.
 */
function clientCertificate(req: FastifyRequest): string {
  const socket = req.raw.socket as TLSSocket;
  const presented = Object.keys(socket.getPeerCertificate?.() ?? {}).length > 0;
  if (presented && socket.authorized) return 'verified';
  return presented
    ? `a certificate that does not verify (${String(socket.authorizationError)})`
    : 'no certificate';
}

/** RFC 6750 §2.1: `Authorization: Bearer <token>`, the scheme case-insensitive. */
function bearerToken(req: FastifyRequest): string | undefined {
  const match = /^Bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}
