/**
 * A private Sigstore deployment in miniature, made at test time: a Fulcio-style CA (openssl), a
 * Rekor-style log key, the trusted_root.json that names both (protobuf-specs TrustedRoot JSON), and
 * keyless cosign `.sig` signatures as cosign writes them: a simple-signing payload signed by a short-lived
 * certificate's key, with the certificate and a Rekor bundle (hashedrekord body + SET) as annotations.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
} from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pushBlob, pushManifest } from './oci-push.ts';
import { issueCertWith, makeCa, type CertFiles } from './pki.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Fulcio's OIDC issuer extension, v2 form (DER UTF8String), as sigstore-js reads it. */
const FULCIO_ISSUER_OID = '1.3.6.1.4.1.57264.1.8';

export interface PrivateSigstore {
  readonly ca: CertFiles;
  readonly rekorKey: KeyObject;
  /** Path of the trusted_root.json naming the CA and the log. */
  readonly trustedRootPath: string;
  readonly dir: string;
}

export interface SigningIdentity {
  /** The Fulcio-style certificate; absent for a plain key pair (key-based cosign signing). */
  readonly certPem?: string;
  readonly key: KeyObject;
}

/** Cosign's legacy layer annotations for one keyless signature. */
export interface LoggedSignature {
  readonly payload: Buffer;
  readonly annotations: Record<string, string>;
}

export async function makePrivateSigstore(dir: string): Promise<PrivateSigstore> {
  const ca = await makeCa(dir, 'private-fulcio');
  const rekorKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rekorDer = createPublicKey(rekorKey).export({ type: 'spki', format: 'der' });
  const since = { start: '2020-01-01T00:00:00Z' };
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: 'https://rekor.private.test',
        hashAlgorithm: 'SHA2_256',
        publicKey: {
          rawBytes: rekorDer.toString('base64'),
          keyDetails: 'PKIX_ECDSA_P256_SHA_256',
          validFor: since,
        },
        logId: { keyId: createHash('sha256').update(rekorDer).digest('base64') },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'provenant-test', commonName: 'private-fulcio' },
        uri: 'https://fulcio.private.test',
        certChain: { certificates: [{ rawBytes: pemBody(ca.certPem) }] },
        validFor: since,
      },
    ],
    ctlogs: [],
    timestampAuthorities: [],
  };
  const trustedRootPath = path.join(dir, 'trusted_root.json');
  await writeFile(trustedRootPath, JSON.stringify(trustedRoot, null, 2));
  return { ca, rekorKey, trustedRootPath, dir };
}

/** A short-lived code-signing certificate for an email identity and OIDC issuer, as Fulcio issues. */
export async function issueSigningCert(
  sigstore: PrivateSigstore,
  name: string,
  email: string,
  issuer: string,
): Promise<SigningIdentity> {
  const { dir, ca } = sigstore;
  const issued = await issueCertWith(dir, ca, name, {
    subject: '/O=sigstore.dev',
    extensions: [
      `subjectAltName=email:${email}`,
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=codeSigning',
      `${FULCIO_ISSUER_OID}=ASN1:UTF8String:${issuer}`,
      '',
    ].join('\n'),
    days: 1,
  });
  return { certPem: issued.certPem, key: createPrivateKey(issued.keyPem) };
}

/** Signs cosign's simple-signing payload for `image@digest` and logs it in the private "Rekor" (SET). */
export function loggedSignature(
  sigstore: PrivateSigstore,
  signer: SigningIdentity,
  repository: string,
  digest: string,
  /** The signer's hash: cosign hashes P-384 with SHA-384 and P-521 with SHA-512. */
  hash = 'sha256',
): LoggedSignature {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repository },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  const signature = sign(hash, payload, signer.key).toString('base64');
  // Rekor's hashedrekord/0.0.1 entry: what was signed (its hash), the signature and the certificate.
  const body = Buffer.from(
    JSON.stringify({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
        signature: {
          content: signature,
          publicKey: { content: Buffer.from(verificationPem(signer)).toString('base64') },
        },
      },
    }),
  ).toString('base64');
  const { entry, set } = logEntry(sigstore, body, 1);
  return {
    payload,
    annotations: {
      'dev.cosignproject.cosign/signature': signature,
      ...(signer.certPem === undefined
        ? {}
        : {
            'dev.sigstore.cosign/certificate': signer.certPem,
            'dev.sigstore.cosign/chain': sigstore.ca.certPem,
          }),
      'dev.sigstore.cosign/bundle': JSON.stringify({ SignedEntryTimestamp: set, Payload: entry }),
    },
  };
}

/** What Rekor records as the verifier: the certificate, or the public key for key-based signing. */
function verificationPem(signer: SigningIdentity): string {
  return signer.certPem ?? createPublicKey(signer.key).export({ type: 'spki', format: 'pem' }).toString();
}

function pemBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

/** Stores signatures as cosign does: an image manifest tagged `sha256-<hex>.sig`, one layer each. */
export async function pushLegacySignatures(
  registryUrl: string,
  repository: string,
  digest: string,
  signatures: readonly LoggedSignature[],
): Promise<void> {
  const target = { registryUrl, repository };
  const layers = [];
  for (const sig of signatures) {
    const blob = await pushBlob(target, sig.payload);
    layers.push({
      mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
      ...blob,
      annotations: sig.annotations,
    });
  }
  const config = await pushBlob(
    target,
    Buffer.from(JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } })),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers,
    }),
  );
  await pushManifest(target, `${digest.replace(':', '-')}.sig`, manifest, OCI_MANIFEST);
}

/**
 * A cosign v3-style keyless signature: an in-toto statement (predicate `https://sigstore.dev/cosign/sign/v1`)
 * naming `digest`, in a DSSE envelope signed by the certificate's key, logged as a Rekor `dsse/0.0.1`
 * entry with a SET, as a Sigstore bundle (v0.1 layout, which carries the SET without an inclusion proof).
 */
export function keylessBundle(sigstore: PrivateSigstore, signer: SigningIdentity, digest: string): Buffer {
  const payloadType = 'application/vnd.in-toto+json';
  const payload = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ digest: { sha256: digest.replace('sha256:', '') } }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    }),
  );
  // DSSE PAE: "DSSEv1" SP len(type) SP type SP len(body) SP body.
  const pae = Buffer.concat([
    Buffer.from(`DSSEv1 ${payloadType.length} ${payloadType} ${payload.length} `),
    payload,
  ]);
  const signature = sign('sha256', pae, signer.key).toString('base64');
  const body = Buffer.from(
    JSON.stringify({
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: {
        payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') },
        signatures: [{ signature, verifier: Buffer.from(verificationPem(signer)).toString('base64') }],
      },
    }),
  ).toString('base64');
  const { entry, set, rekorDer } = logEntry(sigstore, body, 2);
  return Buffer.from(
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
      verificationMaterial: {
        x509CertificateChain: { certificates: [{ rawBytes: pemBody(signer.certPem ?? '') }] },
        tlogEntries: [
          {
            logIndex: String(entry.logIndex),
            logId: { keyId: createHash('sha256').update(rekorDer).digest('base64') },
            kindVersion: { kind: 'dsse', version: '0.0.1' },
            integratedTime: String(entry.integratedTime),
            inclusionPromise: { signedEntryTimestamp: set },
            canonicalizedBody: body,
          },
        ],
        timestampVerificationData: { rfc3161Timestamps: [] },
      },
      dsseEnvelope: {
        payload: payload.toString('base64'),
        payloadType,
        signatures: [{ sig: signature, keyid: '' }],
      },
    }),
  );
}

/**
 * Stores a bundle as cosign v3 does on a registry without the referrers API: a manifest whose subject is
 * the image, plus the referrers tag-schema index `sha256-<hex>` listing it.
 */
export async function pushBundleReferrer(
  registryUrl: string,
  repository: string,
  subject: { digest: string; size: number; mediaType: string },
  bundle: Buffer,
): Promise<void> {
  const target = { registryUrl, repository };
  const artifactType = 'application/vnd.dev.sigstore.bundle.v0.3+json';
  const layer = await pushBlob(target, bundle);
  const empty = await pushBlob(target, Buffer.from('{}'));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
      layers: [{ mediaType: artifactType, ...layer }],
      subject,
    }),
  );
  const digest = await pushManifest(
    target,
    `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
    manifest,
    OCI_MANIFEST,
  );
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: OCI_MANIFEST, digest, size: manifest.length, artifactType }],
    }),
  );
  await pushManifest(
    target,
    subject.digest.replace(':', '-'),
    index,
    'application/vnd.oci.image.index.v1+json',
  );
}

/** A private "Rekor" entry for `body` (base64) and its SET: the log's signature over the entry's canonical JSON. */
function logEntry(
  sigstore: PrivateSigstore,
  body: string,
  logIndex: number,
): {
  entry: { body: string; integratedTime: number; logID: string; logIndex: number };
  set: string;
  rekorDer: Buffer;
} {
  const rekorDer = createPublicKey(sigstore.rekorKey).export({ type: 'spki', format: 'der' });
  // Keys in sorted order and no spaces: JSON.stringify of this literal is the canonical form.
  const entry = {
    body,
    integratedTime: Math.floor(Date.now() / 1000),
    logID: createHash('sha256').update(rekorDer).digest('hex'),
    logIndex,
  };
  const set = sign('sha256', Buffer.from(JSON.stringify(entry)), sigstore.rekorKey).toString('base64');
  return { entry, set, rekorDer };
}
