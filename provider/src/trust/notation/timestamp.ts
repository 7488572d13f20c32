/**
 * RFC 3161 timestamp countersignatures on Notary Project signatures (signature-specification.md
 * "Signature Envelope": `io.cncf.notary.timestampSignature`, a TimeStampToken over the signature value).
 * The token is a CMS SignedData (RFC 5652) over a TSTInfo, parsed and verified with pkijs; its signer
 * must be a timestamping certificate (RFC 3161 §2.3: EKU timeStamping only, critical) that chains to one
 * of the trusted TSA certificates (Connaisseur's `tsCert`).
 */
import { createHash, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { Certificate, ContentInfo, ExtKeyUsage, SignedData, TSTInfo } from 'pkijs';

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  extKeyUsage: '2.5.29.37',
  timeStamping: '1.3.6.1.5.5.7.3.8',
} as const;
const HASHES: ReadonlyMap<string, string> = new Map([
  ['2.16.840.1.101.3.4.2.1', 'sha256'],
  ['2.16.840.1.101.3.4.2.2', 'sha384'],
  ['2.16.840.1.101.3.4.2.3', 'sha512'],
]);
/** A TSA chain is short; this bounds the walk from its signer to a trusted certificate. */
const MAX_TSA_CHAIN = 8;

/** The time a trusted TSA vouches for, with its accuracy: the signature existed within it. */
export interface VerifiedTimestamp {
  readonly earliest: Date;
  readonly latest: Date;
}

export class InvalidTimestamp extends Error {}

/** Verifies `token` as a timestamp of `message` by a TSA chaining to one of `trusted`. */
export async function verifyTimestamp(
  token: Buffer,
  message: Buffer,
  trusted: readonly X509Certificate[],
): Promise<VerifiedTimestamp> {
  const signed = signedData(token);
  const tst = tstInfo(signed);
  const hash = HASHES.get(tst.messageImprint.hashAlgorithm.algorithmId);
  if (hash === undefined)
    throw new InvalidTimestamp(
      `unsupported message imprint algorithm ${tst.messageImprint.hashAlgorithm.algorithmId}`,
    );
  const imprint = Buffer.from(tst.messageImprint.hashedMessage.valueBlock.valueHexView);
  if (!imprint.equals(createHash(hash).update(message).digest()))
    throw new InvalidTimestamp('the timestamp is of another message than the signature value');
  let result;
  try {
    // pkijs checks the TSTInfo's message imprint against `data` too (RFC 3161 §2.4.2).
    const data = message.buffer.slice(message.byteOffset, message.byteOffset + message.length) as ArrayBuffer;
    result = await signed.verify({ signer: 0, data, checkChain: false, extendedMode: true });
  } catch (err) {
    throw new InvalidTimestamp(`the timestamp's CMS signature does not verify: ${describe(err)}`);
  }
  if (result.signatureVerified !== true || !result.signerCertificate)
    throw new InvalidTimestamp("the timestamp's CMS signature does not verify");
  const signer = toNode(result.signerCertificate);
  checkTimestampingCertificate(result.signerCertificate, signer);
  const pool = [
    ...(signed.certificates ?? []).filter((c) => c instanceof Certificate).map(toNode),
    ...trusted,
  ];
  const chain = chainTo(signer, pool, trusted);
  const accuracyMs = accuracyOf(tst);
  const earliest = new Date(tst.genTime.getTime() - accuracyMs);
  const latest = new Date(tst.genTime.getTime() + accuracyMs);
  const invalid = chain.find((c) => earliest < new Date(c.validFrom) || latest > new Date(c.validTo));
  if (invalid !== undefined)
    throw new InvalidTimestamp(
      `the TSA certificate "${invalid.subject}" was not valid at ${tst.genTime.toISOString()}`,
    );
  return { earliest, latest };
}

function signedData(token: Buffer): SignedData {
  try {
    const asn1 = asn1js.fromBER(new Uint8Array(token));
    if (asn1.offset === -1) throw new Error('not DER');
    const info = new ContentInfo({ schema: asn1.result });
    if (info.contentType !== OID.signedData)
      throw new Error(`content type ${info.contentType}, not SignedData`);
    return new SignedData({ schema: info.content });
  } catch (err) {
    throw new InvalidTimestamp(`unreadable TimeStampToken: ${describe(err)}`);
  }
}

function tstInfo(signed: SignedData): TSTInfo {
  const content = signed.encapContentInfo;
  if (content.eContentType !== OID.tstInfo || content.eContent === undefined)
    throw new InvalidTimestamp(`expected a TSTInfo, found content type ${content.eContentType}`);
  try {
    return TSTInfo.fromBER(content.eContent.getValue());
  } catch (err) {
    throw new InvalidTimestamp(`unreadable TSTInfo: ${describe(err)}`);
  }
}

/** RFC 3161 §2.3: the TSA's certificate has exactly one extended key usage, timeStamping, critical. */
function checkTimestampingCertificate(cert: Certificate, node: X509Certificate): void {
  const eku = cert.extensions?.find((e) => e.extnID === OID.extKeyUsage);
  const purposes = eku?.parsedValue instanceof ExtKeyUsage ? eku.parsedValue.keyPurposes : [];
  if (eku?.critical !== true || purposes.length !== 1 || purposes[0] !== OID.timeStamping)
    throw new InvalidTimestamp(
      `the TSA certificate "${node.subject}" is not a timestamping certificate (critical EKU timeStamping only)`,
    );
}

/** Walks issuer by issuer from `cert` to one of `trusted`; the certificates on the way, trusted one included. */
function chainTo(
  cert: X509Certificate,
  pool: readonly X509Certificate[],
  trusted: readonly X509Certificate[],
): X509Certificate[] {
  const chain = [cert];
  for (let current = cert; chain.length <= MAX_TSA_CHAIN;) {
    if (trusted.some((t) => t.raw.equals(current.raw))) return chain;
    const issuer = pool.find(
      (p) => p !== current && current.issuer === p.subject && current.verify(p.publicKey),
    );
    if (issuer === undefined) break;
    chain.push(issuer);
    current = issuer;
  }
  throw new InvalidTimestamp(
    `the TSA certificate "${cert.subject}" does not chain to a trusted TSA certificate (tsCert)`,
  );
}

function accuracyOf(tst: TSTInfo): number {
  const a = tst.accuracy;
  if (a === undefined) return 0;
  return (a.seconds ?? 0) * 1000 + (a.millis ?? 0) + Math.ceil((a.micros ?? 0) / 1000);
}

function toNode(cert: Certificate): X509Certificate {
  return new X509Certificate(Buffer.from(cert.toSchema().toBER()));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
