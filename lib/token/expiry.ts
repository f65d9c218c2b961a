import { InvalidTokenError } from '../errors.js';
import type { EntraTokenClaims } from './jwt-claims.js';

/** Clock difference between the credential's host and the token service that is not a mismatch, ms. */
const CLOCK_SKEW_MS = 5 * 60_000;
/** Without `iat`/`nbf`, an expiry this far before the JWT's `exp` cannot be the same token's, ms. */
const LONGEST_LIFETIME_MS = 365 * 24 * 3_600_000;

/** Why the credential's `expiresOnTimestamp` was set aside. */
export type ExpiryMismatchReason = 'not-a-number' | 'before-issue' | 'after-token-expiry';

/** A credential's `expiresOnTimestamp` that does not fit its token: the JWT's `exp` was used instead. No token. */
export interface ExpiryMismatch {
  reason: ExpiryMismatchReason;
  /** What the credential reported; undefined when it was not a number (NaN and Infinity are kept). */
  reportedExpiresOnTimestamp: number | undefined;
  /** The JWT's `exp`, ms since the epoch: what the server enforces, and what the library uses. */
  tokenExpiresOn: number;
}

/**
 * When the token expires, ms since the epoch. The server enforces the JWT's `exp`; the credential's
 * `expiresOnTimestamp` is used when it is earlier and plausible (it may know better, e.g. a shorter cache life). An
 * implausible one (not a finite number, before the token was issued, such as epoch seconds, or later than `exp`) is
 * set aside and described in `mismatch`. Throws {@link InvalidTokenError} when neither gives an expiry.
 */
export function resolveExpiry(
  reported: unknown,
  claims: EntraTokenClaims,
): { expiresOn: number; mismatch?: ExpiryMismatch } {
  const exp = typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  const reportedNumber = typeof reported === 'number' ? reported : undefined;
  if (exp === undefined) {
    if (reportedNumber !== undefined && Number.isFinite(reportedNumber) && reportedNumber > issuedAt(claims, 0)) {
      return { expiresOn: reportedNumber };
    }
    throw new InvalidTokenError('The access token has no expiry (no "exp" claim and no plausible expiresOnTimestamp)');
  }
  const mismatch = (reason: ExpiryMismatchReason) => ({
    expiresOn: exp,
    mismatch: { reason, reportedExpiresOnTimestamp: reportedNumber, tokenExpiresOn: exp },
  });
  if (reportedNumber === undefined || !Number.isFinite(reportedNumber)) return mismatch('not-a-number');
  if (reportedNumber < issuedAt(claims, exp - LONGEST_LIFETIME_MS) - CLOCK_SKEW_MS) return mismatch('before-issue');
  if (reportedNumber > exp + CLOCK_SKEW_MS) return mismatch('after-token-expiry');
  return { expiresOn: Math.min(exp, reportedNumber) };
}

/** When the token was issued (`iat`, else `nbf`), ms since the epoch, or `fallback`. */
function issuedAt(claims: EntraTokenClaims, fallback: number): number {
  for (const claim of [claims.iat, claims.nbf]) {
    if (typeof claim === 'number' && Number.isFinite(claim)) return claim * 1000;
  }
  return fallback;
}
