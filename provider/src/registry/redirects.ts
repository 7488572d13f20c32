/**
 * Redirects of registry requests. Registries send blob downloads to storage (S3, a CDN) with 307s
 * (distribution spec, "Pulling blobs"). Each hop passes the egress policy as a `redirect`; the
 * `Authorization` header stays on hops to the registry's own origin and is dropped on any other; plain HTTP only to an origin itself marked insecure (never a downgrade);
 * more than MAX_REDIRECTS hops, or a loop, is refused.
 */
import { ProvenantError } from '../types/errors.ts';
import type { EgressPolicy } from './egress.ts';
import type { HttpRequest, HttpResponse, TlsTrust, Transport } from './transport.ts';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

export interface RedirectContext {
  readonly transport: Transport;
  readonly egress: EgressPolicy;
  /** The registry as the client names it, for messages. */
  readonly registry: string;
  /** TLS trust and plain-HTTP permission for a redirect target's host (its `registries:` entry). */
  readonly hostSettings: (host: string) => { readonly insecure: boolean; readonly ca: TlsTrust | undefined };
}

/** Follows `first` while it is a redirect; `request` is what was sent to get it (credentials included). */
export async function followRedirects(
  ctx: RedirectContext,
  request: HttpRequest,
  first: HttpResponse,
): Promise<HttpResponse> {
  const origin = request.url;
  let res = first;
  let url = origin;
  const seen = new Set<string>([url.href]);
  for (let hops = 0; REDIRECT_STATUSES.has(res.status); hops++) {
    const next = redirectTarget(ctx, request, res, url);
    if (hops >= MAX_REDIRECTS || seen.has(next.href)) {
      throw new ProvenantError(
        'REGISTRY_TOO_MANY_REDIRECTS',
        `registry ${ctx.registry} redirected a request for ${request.image} ${seen.has(next.href) ? 'in a loop' : 'too often'}: expected at most ${MAX_REDIRECTS} redirects, found ${hops + 1} (last to ${next.host}${next.pathname})`,
        { image: request.image },
      );
    }
    seen.add(next.href);
    const settings = next.origin === origin.origin ? { ca: request.ca } : ctx.hostSettings(next.host);
    const headers = { ...request.headers };
    if (next.origin !== origin.origin) delete headers['authorization'];
    res = await ctx.transport.send({ ...request, url: next, headers, ca: settings.ca, purpose: 'redirect' });
    url = next;
  }
  return res;
}

function redirectTarget(ctx: RedirectContext, request: HttpRequest, res: HttpResponse, url: URL): URL {
  const location = res.headers['location'];
  let next: URL;
  try {
    next = new URL(location ?? '', url);
  } catch {
    throw new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `registry ${ctx.registry} redirected a request for ${request.image} to an unusable location: expected a URL, found ${JSON.stringify(location ?? null)}`,
      { image: request.image },
    );
  }
  const plainAllowed =
    next.origin === request.url.origin
      ? request.url.protocol === 'http:'
      : ctx.hostSettings(next.host).insecure;
  if (next.protocol !== 'https:' && !(next.protocol === 'http:' && plainAllowed)) {
    throw new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `registry ${ctx.registry} redirected a request for ${request.image} to plain HTTP: expected https, found ${next.protocol}//${next.host}`,
      { image: request.image },
    );
  }
  return next;
}
