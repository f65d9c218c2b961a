import { InvalidTokenError } from '../errors.js';

/** The claims of an Entra ID access token that the library reads. */
export interface EntraTokenClaims {
  /** Object id of the identity: the Redis username. */
  oid?: string;
  /** Tenant id. */
  tid?: string;
  /** Audience, `https://redis.azure.com` for Redis. */
  aud?: string | string[];
  /** Expiry, seconds since the epoch. */
  exp?: number;
  /** Issued at, seconds since the epoch. */
  iat?: number;
  /** Not before, seconds since the epoch. */
  nbf?: number;
  [claim: string]: unknown;
}

/**
 * Decodes (without verifying: the server verifies) the payload of a JWT. Errors never quote the token.
 */
export function decodeJwtClaims(raw: string): EntraTokenClaims {
  const parts = raw.split('.');
  if (parts.length !== 3 || !parts[1]) {
    throw new InvalidTokenError(
      `The credential returned a token that is not a JWT (expected 3 dot-separated parts, got ${parts.length})`,
    );
  }
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    throw new InvalidTokenError('The credential returned a token whose JWT payload is not base64url-encoded JSON');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new InvalidTokenError('The credential returned a token whose JWT payload is not a JSON object');
  }
  return claims as EntraTokenClaims;
}
