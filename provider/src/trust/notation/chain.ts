/**
 * The certificate requirements of the Notary Project signature specification
 * (`signature-specification.md` "Certificate Requirements", as notation-core-go's
 * `ValidateCodeSigningCertChain` applies them): the chain runs leaf → issuers → a self-signed root, each
 * certificate issued and signed by the next; the leaf is not a CA, has the digitalSignature key usage
 * and, if it lists extended key usages, code signing; the others are CAs allowed to sign certificates.
 * Extensions are read with pkijs; signatures are checked with node's crypto.
 */
import type { X509Certificate } from 'node:crypto';
import { BasicConstraints, Certificate, ExtKeyUsage } from 'pkijs';

const OID = {
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  crlDistributionPoints: '2.5.29.31',
} as const;
/** RFC 5280 §4.2.1.3 KeyUsage bits, as they sit in the first byte of the BIT STRING. */
const KEY_USAGE = { digitalSignature: 0x80, keyCertSign: 0x04 } as const;
/** signature-specification.md "Algorithm Selection": RSA of at least 2048 bits, ECDSA P-256/384/521. */
const MIN_RSA_BITS = 2048;
const EC_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** The chain breaks a requirement of the specification (structure, key usage, algorithms). */
export class InvalidChain extends Error {}

/** Checks everything but validity periods (those are the authentic-timestamp check: validity.ts). */
export function checkCodeSigningChain(chain: readonly X509Certificate[]): void {
  chain.forEach((cert, i) => {
    checkKey(cert);
    const issuer = chain[i + 1] ?? cert;
    if (i === chain.length - 1 && !issuedBy(cert, cert))
      throw new InvalidChain(
        `the chain must end with a self-signed root, found ${cert.subject} issued by ${cert.issuer}`,
      );
    if (!issuedBy(cert, issuer))
      throw new InvalidChain(
        `${cert.subject} is not signed by the next certificate of the chain, ${issuer.subject}`,
      );
    if (i === 0) checkLeaf(cert);
    else checkCa(cert, i - 1);
  });
}

/**
 * Names match and the issuer's key verifies the signature. Not X509Certificate.checkIssued: OpenSSL's
 * check also wants keyCertSign on the issuer, which a self-signed signing certificate rightly lacks.
 */
function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.issuer === issuer.subject && cert.verify(issuer.publicKey);
}

function checkLeaf(cert: X509Certificate): void {
  const ext = extensions(cert);
  if (cert.ca)
    throw new InvalidChain(`the signing certificate ${cert.subject} is a CA (basicConstraints CA:TRUE)`);
  const usage = keyUsage(ext);
  if (usage === undefined || (usage & KEY_USAGE.digitalSignature) === 0)
    throw new InvalidChain(`the signing certificate ${cert.subject} lacks the digitalSignature key usage`);
  const eku = ext.get(OID.extKeyUsage)?.parsedValue;
  if (eku instanceof ExtKeyUsage && !eku.keyPurposes.includes(OID.codeSigning))
    throw new InvalidChain(
      `the signing certificate ${cert.subject} has extended key usages ${eku.keyPurposes.join(', ')} but not code signing (${OID.codeSigning})`,
    );
}

/** A CA `below` certificates under it (not counting the leaf) must allow that path length. */
function checkCa(cert: X509Certificate, below: number): void {
  const ext = extensions(cert);
  const constraints = ext.get(OID.basicConstraints)?.parsedValue;
  if (!cert.ca || !(constraints instanceof BasicConstraints))
    throw new InvalidChain(`the issuing certificate ${cert.subject} is not a CA (basicConstraints CA:TRUE)`);
  const pathLen = constraints.pathLenConstraint;
  if (typeof pathLen === 'number' && below > pathLen)
    throw new InvalidChain(
      `${cert.subject} allows ${pathLen} intermediate CAs below it, the chain has ${below}`,
    );
  const usage = keyUsage(ext);
  if (usage === undefined || (usage & KEY_USAGE.keyCertSign) === 0)
    throw new InvalidChain(`the issuing certificate ${cert.subject} lacks the keyCertSign key usage`);
}

function checkKey(cert: X509Certificate): void {
  const { asymmetricKeyType: type, asymmetricKeyDetails: details } = cert.publicKey;
  if (type === 'rsa' && (details?.modulusLength ?? 0) >= MIN_RSA_BITS) return;
  if (type === 'ec' && EC_CURVES.has(details?.namedCurve ?? '')) return;
  throw new InvalidChain(
    `${cert.subject} has a ${type ?? 'unknown'} key the specification does not allow (RSA ≥ ${MIN_RSA_BITS} bits, ECDSA P-256/384/521)`,
  );
}

function extensions(cert: X509Certificate): Map<string, { parsedValue?: unknown }> {
  const parsed = Certificate.fromBER(cert.raw);
  return new Map((parsed.extensions ?? []).map((e) => [e.extnID, e]));
}

/** The first byte of the KeyUsage BIT STRING (the bits this check needs all live there). */
function keyUsage(ext: Map<string, { parsedValue?: unknown }>): number | undefined {
  const bits = ext.get(OID.keyUsage)?.parsedValue as
    { valueBlock?: { valueHexView?: Uint8Array } } | undefined;
  return bits?.valueBlock?.valueHexView?.[0];
}

/** When the chain's certificates are not all valid at `at`: the first one that is not, or undefined. */
export function invalidAt(chain: readonly X509Certificate[], at: Date): X509Certificate | undefined {
  return chain.find((c) => at < new Date(c.validFrom) || at > new Date(c.validTo));
}

/** notation-core-go `VerifyAuthenticity`: some certificate of the chain is one of the trusted ones. */
export function trustedMatch(
  chain: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
): X509Certificate | undefined {
  return trusted.find((t) => chain.some((c) => c.raw.equals(t.raw)));
}

/** Whether a certificate names an OCSP responder (AIA, RFC 5280 §4.2.2.1) or CRL distribution points. */
export function revocationSources(cert: X509Certificate): boolean {
  const ext = extensions(cert);
  return ext.has(OID.crlDistributionPoints) || (cert.infoAccess ?? '').includes('OCSP - URI:');
}
