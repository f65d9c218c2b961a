import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCertificate {
  /** PEM private key (PKCS#8). */
  key: string;
  /** PEM certificate, valid for localhost and 127.0.0.1. */
  cert: string;
  /** SHA-1 thumbprint of the certificate (hex, upper case), as Entra ID shows it. */
  thumbprint: string;
}

let cached: SelfSignedCertificate | undefined;

/** A self-signed certificate for 127.0.0.1 / localhost, made with the openssl CLI once per process. */
export function selfSignedCertificate(commonName = 'localhost'): SelfSignedCertificate {
  if (cached && commonName === 'localhost') return cached;
  const dir = mkdtempSync(join(tmpdir(), 'entraid-cert-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '2',
        '-subj',
        `/CN=${commonName}`,
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        keyPath,
        '-out',
        certPath,
      ],
      { stdio: 'ignore' },
    );
    const fingerprint = execFileSync('openssl', ['x509', '-in', certPath, '-noout', '-fingerprint', '-sha1'])
      .toString()
      .trim();
    const result = {
      key: readFileSync(keyPath, 'utf8'),
      cert: readFileSync(certPath, 'utf8'),
      thumbprint: fingerprint.replace(/^.*=/, '').replaceAll(':', '').toUpperCase(),
    };
    if (commonName === 'localhost') cached = result;
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
