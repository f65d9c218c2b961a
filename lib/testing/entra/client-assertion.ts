// Client assertions (certificate credentials): checks a JWT signed by a service principal's registered certificate the
// way Entra does, with Entra's error codes.
import { createVerify, constants as cryptoConstants, verify as cryptoVerify } from 'node:crypto';
import type { ServicePrincipalRecord } from './types.js';

/** The only `client_assertion_type` Entra accepts. */
export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Why an assertion is refused: the HTTP status, the AADSTS code and its description. */
export interface AssertionProblem {
  status: number;
  code: number;
  description: string;
}

/** Checks a client assertion the way Entra does; returns the failure, or undefined when it is valid. */
export function verifyClientAssertion(
  sp: ServicePrincipalRecord,
  assertion: string,
  tokenEndpoint: string,
): AssertionProblem | undefined {
  const malformed = (why: string) => ({
    status: 400,
    code: 50027,
    description: `JWT token is invalid or malformed. ${why}`,
  });
  const parts = assertion.split('.');
  const [encodedHeader, encodedPayload, encodedSignature] = parts;
  if (
    parts.length !== 3 ||
    encodedHeader === undefined ||
    encodedPayload === undefined ||
    encodedSignature === undefined
  ) {
    return malformed('The assertion is not a JWT.');
  }
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(encodedHeader, 'base64url').toString('utf8')) as Record<string, unknown>;
    payload = JSON.parse(Buffer.from(encodedPayload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return malformed('The assertion is not decodable.');
  }
  const sha256 =
    typeof header['x5t#S256'] === 'string'
      ? Buffer.from(header['x5t#S256'], 'base64url').toString('hex').toUpperCase()
      : undefined;
  const sha1 =
    typeof header.x5t === 'string' ? Buffer.from(header.x5t, 'base64url').toString('hex').toUpperCase() : undefined;
  const presented = sha256 ?? sha1 ?? '';
  const cert = sp.certificate;
  const known =
    cert &&
    ((sha256 !== undefined && sha256 === cert.sha256) ||
      (sha256 === undefined && sha1 !== undefined && sha1 === cert.sha1));
  if (!cert || !known) {
    return {
      status: 401,
      code: 700027,
      description: `Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${sp.clientId}'.]`,
    };
  }
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(encodedSignature, 'base64url');
  let valid: boolean;
  if (header.alg === 'RS256') {
    valid = createVerify('RSA-SHA256').update(data).verify(cert.publicKey, signature);
  } else if (header.alg === 'PS256') {
    valid = cryptoVerify(
      'sha256',
      data,
      {
        key: cert.publicKey,
        padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
        saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO,
      },
      signature,
    );
  } else {
    return malformed(`Unsupported signing algorithm '${String(header.alg)}'.`);
  }
  if (!valid) {
    return {
      status: 401,
      code: 700027,
      description:
        'Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]',
    };
  }
  if (payload.aud !== tokenEndpoint)
    return malformed(`The audience '${String(payload.aud)}' is not the token endpoint.`);
  if (payload.iss !== sp.clientId || payload.sub !== sp.clientId)
    return malformed('The iss and sub claims must be the client id.');
  const now = Math.floor(Date.now() / 1000);
  if (
    typeof payload.exp !== 'number' ||
    payload.exp <= now ||
    (typeof payload.nbf === 'number' && payload.nbf > now + 300)
  ) {
    return { status: 401, code: 700024, description: 'Client assertion is not within its valid time range.' };
  }
  return undefined;
}
