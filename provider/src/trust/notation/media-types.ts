/** Notary Project media types (signature-specification.md), apart from the envelope code that parses them. */
export const JWS_MEDIA_TYPE = 'application/jose+json';
export const COSE_MEDIA_TYPE = 'application/cose';
export const SIGNATURE_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
