const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';
const PEM_PRIVATE_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

/**
 * What PEM text lacks to sign in with a client certificate (@azure/identity wants the certificate and its private key
 * in one PEM): `'a certificate'`, `'a private key'`, or undefined when it has both. Never quotes the text.
 */
export function pemLacks(text: string): 'a certificate' | 'a private key' | undefined {
  if (!text.includes(PEM_CERTIFICATE)) return 'a certificate';
  if (!PEM_PRIVATE_KEY.test(text)) return 'a private key';
  return undefined;
}
