import { inspect } from 'node:util';
import type { AccessToken } from '@azure/core-auth';
import { InvalidTokenError } from '../errors.js';
import { resolveExpiry, type ExpiryMismatch } from './expiry.js';
import { decodeJwtClaims, type EntraTokenClaims } from './jwt-claims.js';

/** Picks the Redis username from a token. Default: the `oid` claim, which is what Azure's Redis requires. */
export type UsernameResolver = (token: { claims: EntraTokenClaims }) => string;

/**
 * An access token ready for Redis `AUTH`: the username (the `oid` claim), the password (the raw token) and its
 * lifetime. The raw token is held privately: it does not appear in `JSON.stringify`, `util.inspect` or
 * `console.log` of this object.
 */
export class EntraToken {
  readonly #raw: string;
  /** Redis username: the token's `oid` claim, or what the `username` option returned. */
  readonly username: string;
  /** Object id of the identity. */
  readonly oid: string;
  /** Expiry, ms since the epoch. */
  readonly expiresOn: number;
  /** When the library received the token, ms since the epoch. */
  readonly receivedAt: number;
  /** The decoded claims. */
  readonly claims: Readonly<EntraTokenClaims>;

  private constructor(
    raw: string,
    username: string,
    oid: string,
    expiresOn: number,
    receivedAt: number,
    claims: EntraTokenClaims,
  ) {
    this.#raw = raw;
    this.username = username;
    this.oid = oid;
    this.expiresOn = expiresOn;
    this.receivedAt = receivedAt;
    this.claims = Object.freeze({ ...claims });
  }

  /**
   * Builds a token from an `@azure/identity` AccessToken. Throws {@link InvalidTokenError} (which never quotes the
   * token) when it is not a JWT, has no `oid`, or is already expired at `now`. The expiry is the JWT's `exp`, or the
   * credential's `expiresOnTimestamp` when that is earlier and plausible; an implausible one (epoch seconds, not a
   * number, later than `exp`) is set aside and, once the token is accepted, passed to `onExpiryMismatch`.
   */
  static fromAccessToken(
    accessToken: AccessToken,
    options: {
      username?: UsernameResolver;
      now?: number;
      audiences?: readonly string[];
      onExpiryMismatch?: (mismatch: ExpiryMismatch) => void;
    } = {},
  ): EntraToken {
    const now = options.now ?? Date.now();
    if (
      !(accessToken as AccessToken | null | undefined) ||
      typeof accessToken.token !== 'string' ||
      accessToken.token.length === 0
    ) {
      throw new InvalidTokenError('The credential returned no access token');
    }
    const claims = decodeJwtClaims(accessToken.token);
    if (typeof claims.oid !== 'string' || claims.oid.length === 0) {
      throw new InvalidTokenError(
        'The access token has no "oid" claim; Azure Redis needs the object id as the username',
      );
    }
    if (options.audiences && options.audiences.length > 0) checkAudience(claims, options.audiences);
    const { expiresOn, mismatch } = resolveExpiry(accessToken.expiresOnTimestamp, claims);
    if (expiresOn <= now) {
      throw new InvalidTokenError(
        `The access token expired at ${new Date(expiresOn).toISOString()}, before it could be used`,
      );
    }
    let username = claims.oid;
    if (options.username) {
      username = options.username({ claims });
      if (typeof username !== 'string' || username.length === 0) {
        throw new InvalidTokenError('The "username" option returned an empty or non-string username');
      }
    }
    if (mismatch) options.onExpiryMismatch?.(mismatch);
    return new EntraToken(accessToken.token, username, claims.oid, expiresOn, now, claims);
  }

  /** The raw access token, sent as the Redis password. Never log it. */
  get password(): string {
    return this.#raw;
  }

  /** Lifetime from receipt to expiry, ms. */
  get ttl(): number {
    return this.expiresOn - this.receivedAt;
  }

  /** True when this and `other` carry the same raw token. */
  sameAs(other: EntraToken | undefined): boolean {
    return other !== undefined && other.#raw === this.#raw;
  }

  /** A description without the raw token, for logs: {@link describeToken} with ISO dates. */
  toJSON(): Record<string, unknown> {
    const info = describeToken(this);
    return {
      ...info,
      expiresOn: new Date(info.expiresOn).toISOString(),
      receivedAt: new Date(info.receivedAt).toISOString(),
    };
  }

  [inspect.custom](): string {
    return `EntraToken ${JSON.stringify(this.toJSON())}`;
  }
}

/** A token for another resource would only get WRONGPASS from the server: say why before that. */
function checkAudience(claims: EntraTokenClaims, audiences: readonly string[]): void {
  const aud = claims.aud;
  const given =
    typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  if (given.length === 0) throw new InvalidTokenError('The access token has no "aud" (audience) claim');
  if (!given.some((a) => audiences.includes(a))) {
    throw new InvalidTokenError(
      `The access token is for audience ${JSON.stringify(given.join(' '))}, not ${JSON.stringify(audiences[0])}: ` +
        'check the "scopes" option (and the cloud) of the credentials provider',
    );
  }
}

/** A token described without the token: what events, traces and logs may carry. */
export interface TokenInfo {
  /** Redis username (the `oid` claim unless overridden). */
  username: string;
  /** Object id of the identity. */
  oid: string;
  /** Expiry, ms since the epoch. */
  expiresOn: number;
  /** When the library received it, ms since the epoch. */
  receivedAt: number;
}

/** The description of a token that events, traces and logs carry: never the token. */
export function describeToken(token: EntraToken): TokenInfo {
  return { username: token.username, oid: token.oid, expiresOn: token.expiresOn, receivedAt: token.receivedAt };
}
