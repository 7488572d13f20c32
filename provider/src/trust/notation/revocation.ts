/**
 * Revocation of the signing chain (trust-store-trust-policy.md "Revocation"; notation-go's order):
 * each certificate but the root is checked with OCSP (RFC 6960) when its AIA names a responder, and with
 * its CRL distribution points (RFC 5280) when it names no responder or the responder gives no answer.
 * A certificate that names neither cannot be revoked. Requests and answers are built and verified with
 * pkijs; the responses are signed, so plain HTTP is what OCSP and CRLs use. The fetching itself is
 * injected (`RevocationFetch`): the validator gives it the egress policy and a time budget.
 */
import { verify, X509Certificate } from 'node:crypto';
import {
  BasicOCSPResponse,
  Certificate,
  CertificateRevocationList,
  CRLDistributionPoints,
  ExtKeyUsage,
  OCSPRequest,
  OCSPResponse,
} from 'pkijs';

/** GET `url`; the body, or an Error saying why there is none. Bounded in time and size by the caller. */
export type RevocationFetch = (url: URL) => Promise<Buffer>;

export type RevocationStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly detail: string }
  | { readonly status: 'unknown'; readonly detail: string };

const OID = {
  crlDistributionPoints: '2.5.29.31',
  extKeyUsage: '2.5.29.37',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
} as const;
/** Signature algorithms of OCSP answers (RFC 4055, RFC 5758): PKCS#1 v1.5 RSA and ECDSA. */
const SIGNATURE_HASHES: ReadonlyMap<string, string> = new Map([
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
]);
/** RFC 6960 §4.2.1 CertStatus choices, as pkijs numbers them. */
const OCSP_STATUS = { good: 0, revoked: 1 } as const;
/** GeneralName CHOICE index of uniformResourceIdentifier (RFC 5280 §4.2.1.6). */
const URI_NAME = 6;
/** Clock difference tolerated between Provenant and an OCSP responder. */
const OCSP_CLOCK_SKEW_MS = 5 * 60 * 1000;
/** An answer without nextUpdate (RFC 6960 §4.2.2.1: "newer information is always available") counts this long. */
const OCSP_MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 24 * 60 * 60 * 1000;

export async function checkRevocation(
  chain: readonly X509Certificate[],
  fetch: RevocationFetch,
  now: Date,
): Promise<RevocationStatus> {
  for (let i = 0; i < chain.length - 1; i++) {
    const cert = chain[i] as X509Certificate;
    const issuer = chain[i + 1] as X509Certificate;
    const status = await checkCertificate(cert, issuer, fetch, now);
    if (status.status !== 'good') return status;
  }
  return { status: 'good' };
}

async function checkCertificate(
  cert: X509Certificate,
  issuer: X509Certificate,
  fetch: RevocationFetch,
  now: Date,
): Promise<RevocationStatus> {
  const subject = pki(cert);
  const issuerCert = pki(issuer);
  const ocsp = ocspUrls(cert);
  const crls = crlUrls(subject);
  const unknown: string[] = [];
  for (const url of ocsp) {
    const status = await viaOcsp(url, subject, issuerCert, fetch, now).catch(
      (err: unknown): RevocationStatus => ({
        status: 'unknown',
        detail: `OCSP ${url}: ${describe(err)}`,
      }),
    );
    if (status.status !== 'unknown') return named(status, cert);
    unknown.push(status.detail);
  }
  for (const url of crls) {
    const status = await viaCrl(url, subject, issuerCert, fetch, now).catch(
      (err: unknown): RevocationStatus => ({ status: 'unknown', detail: `CRL ${url}: ${describe(err)}` }),
    );
    if (status.status !== 'unknown') return named(status, cert);
    unknown.push(status.detail);
  }
  if (unknown.length === 0) return { status: 'good' }; // names neither: not revocable
  return {
    status: 'unknown',
    detail: `no revocation answer for "${oneLine(cert.subject)}": ${unknown.join('; ')}`,
  };
}

/** RFC 6960 Appendix A.1: GET {url}/{url-encoded base64 of the DER OCSPRequest}. */
async function viaOcsp(
  url: string,
  cert: Certificate,
  issuer: Certificate,
  fetch: RevocationFetch,
  now: Date,
): Promise<RevocationStatus> {
  const request = new OCSPRequest();
  await request.createForCertificate(cert, { hashAlgorithm: 'SHA-256', issuerCertificate: issuer });
  const der = Buffer.from(request.toSchema(true).toBER());
  const target = new URL(`${url.replace(/\/$/, '')}/${encodeURIComponent(der.toString('base64'))}`);
  const response = OCSPResponse.fromBER(await fetch(target));
  const bytes = response.responseBytes?.response.valueBlock.valueHexView;
  if (response.responseStatus.valueBlock.valueDec !== 0 || bytes === undefined)
    return {
      status: 'unknown',
      detail: `OCSP ${url}: response status ${response.responseStatus.valueBlock.valueDec}`,
    };
  const basic = BasicOCSPResponse.fromBER(bytes);
  if (!signedByIssuerOrResponder(basic, issuer))
    return {
      status: 'unknown',
      detail: `OCSP ${url}: the response is not signed by the issuer or its responder`,
    };
  const { isForCertificate, status } = await basic.getCertificateStatus(cert, issuer);
  if (!isForCertificate)
    return { status: 'unknown', detail: `OCSP ${url}: the response is about another certificate` };
  const stale = staleness(basic, now);
  if (stale !== undefined) return { status: 'unknown', detail: `OCSP ${url}: ${stale}` };
  if (status === OCSP_STATUS.good) return { status: 'good' };
  if (status === OCSP_STATUS.revoked)
    return { status: 'revoked', detail: `the OCSP responder ${url} says it is revoked` };
  return { status: 'unknown', detail: `OCSP ${url}: status unknown` };
}

/**
 * RFC 6960 §3.2 (6) and §4.2.2.1: an answer counts only from its thisUpdate to its nextUpdate, so a
 * "good" answer recorded before a revocation cannot be replayed after it. Every single response of the
 * answer must be current (stricter than picking the one for this certificate; responders send one).
 */
function staleness(basic: BasicOCSPResponse, now: Date): string | undefined {
  for (const single of basic.tbsResponseData.responses) {
    const from = single.thisUpdate.getTime();
    const until = single.nextUpdate?.getTime() ?? from + OCSP_MAX_AGE_WITHOUT_NEXT_UPDATE_MS;
    if (from > now.getTime() + OCSP_CLOCK_SKEW_MS)
      return `expected an answer current at ${now.toISOString()}, found one from ${single.thisUpdate.toISOString()} (the future)`;
    if (until + OCSP_CLOCK_SKEW_MS < now.getTime())
      return `expected an answer current at ${now.toISOString()}, found one stale since ${new Date(until).toISOString()}`;
  }
  return undefined;
}

/**
 * RFC 6960 §4.2.2.2: the answer is signed by the certificate's issuer itself, or by a responder the
 * issuer certified for OCSP signing (EKU id-kp-OCSPSigning). Checked here with node's crypto: pkijs's
 * own check wants the signer among the response's certificates, which a CA answering for itself omits.
 */
function signedByIssuerOrResponder(basic: BasicOCSPResponse, issuer: Certificate): boolean {
  const hash = SIGNATURE_HASHES.get(basic.signatureAlgorithm.algorithmId);
  if (hash === undefined) return false;
  const issuerNode = node(issuer);
  const delegated = (basic.certs ?? [])
    .filter((c) => c instanceof Certificate)
    .filter((c) => hasEku(c, OID.ocspSigning))
    .map(node)
    .filter((c) => c.issuer === issuerNode.subject && c.verify(issuerNode.publicKey));
  const tbs = basic.tbsResponseData.tbsView;
  const signature = basic.signature.valueBlock.valueHexView;
  return [issuerNode, ...delegated].some((signer) => verify(hash, tbs, signer.publicKey, signature));
}

function hasEku(cert: Certificate, purpose: string): boolean {
  const eku: unknown = cert.extensions?.find((e) => e.extnID === OID.extKeyUsage)?.parsedValue;
  return eku instanceof ExtKeyUsage && eku.keyPurposes.includes(purpose);
}

function node(cert: Certificate): X509Certificate {
  return new X509Certificate(Buffer.from(cert.toSchema().toBER()));
}

async function viaCrl(
  url: string,
  cert: Certificate,
  issuer: Certificate,
  fetch: RevocationFetch,
  now: Date,
): Promise<RevocationStatus> {
  const crl = CertificateRevocationList.fromBER(await fetch(new URL(url)));
  if (!(await crl.verify({ issuerCertificate: issuer })))
    return { status: 'unknown', detail: `CRL ${url}: not signed by the issuer` };
  const next = crl.nextUpdate?.value;
  if (next !== undefined && next < now)
    return { status: 'unknown', detail: `CRL ${url}: stale since ${next.toISOString()}` };
  if (crl.isCertificateRevoked(cert))
    return { status: 'revoked', detail: `the CRL ${url} lists it as revoked` };
  return { status: 'good' };
}

function named(status: RevocationStatus, cert: X509Certificate): RevocationStatus {
  return status.status === 'revoked'
    ? { status: 'revoked', detail: `"${oneLine(cert.subject)}": ${status.detail}` }
    : status;
}

/** `infoAccess` as node prints it: `OCSP - URI:http://…` lines. */
function ocspUrls(cert: X509Certificate): string[] {
  return (cert.infoAccess ?? '')
    .split('\n')
    .flatMap((line) => /^OCSP - URI:(https?:\/\/\S+)$/.exec(line.trim())?.[1] ?? []);
}

function crlUrls(cert: Certificate): string[] {
  const ext: unknown = cert.extensions?.find((e) => e.extnID === OID.crlDistributionPoints)?.parsedValue;
  if (!(ext instanceof CRLDistributionPoints)) return [];
  return ext.distributionPoints.flatMap((point) =>
    Array.isArray(point.distributionPoint)
      ? point.distributionPoint.flatMap((name) =>
          name.type === URI_NAME && typeof name.value === 'string' && /^https?:\/\//.test(name.value)
            ? [name.value]
            : [],
        )
      : [],
  );
}

function pki(cert: X509Certificate): Certificate {
  return Certificate.fromBER(cert.raw);
}

function oneLine(subject: string): string {
  return subject.replaceAll('\n', ', ');
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
