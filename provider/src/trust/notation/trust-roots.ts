import { X509Certificate } from 'node:crypto';
import { ProvenantError } from '../../types/errors.ts';

/** `trustRoots[].cert`: one or more PEM certificates (a CA, or a signing certificate itself). */
export function parseCertificates(pem: string, validator: string, root: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error('no PEM CERTIFICATE block');
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw new ProvenantError(
      'CONFIG_INVALID',
      `validator ${validator}, trust root "${root}": expected PEM X.509 certificate(s) in cert, found ${(err as Error).message}`,
      { cause: err },
    );
  }
}
