import type { EntraToken } from '../token/entra-token.js';
import type { ExpiryMismatch } from '../token/expiry.js';

/** A token described without the token: what events and logs may carry. */
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

export function describeToken(token: EntraToken): TokenInfo {
  return { username: token.username, oid: token.oid, expiresOn: token.expiresOn, receivedAt: token.receivedAt };
}

/** Payload of `refreshFailed`. */
export interface RefreshFailedEvent {
  /** Why the last attempt failed (never holds a token). */
  error: unknown;
  /** Attempts made in the failed cycle. */
  attempts: number;
  /** Cycles that failed in a row. */
  consecutiveFailures: number;
  /** When the next cycle starts (ms since the epoch); undefined when no client listens. */
  nextAttemptAt: number | undefined;
  /** Expiry of the token still in use, or undefined when none is valid: commands may then fail. */
  validTokenExpiresOn: number | undefined;
}

/** Payload of `reauthenticated`. */
export interface ReauthenticatedEvent {
  /** The connection's name, as ioredis knows it (`connectionName`) or a description. */
  connection: string;
  token: TokenInfo;
  /**
   * How the connection got the new token: `auth` in place; `reconnect` when AUTH could not complete in time (blocked
   * behind a blocking command); `handover` for a RESP2 subscriber, moved to a fresh connection without losing messages.
   */
  method: 'auth' | 'reconnect' | 'handover';
}

/** Payload of `reauthenticationFailed`. */
export interface ReauthenticationFailedEvent {
  connection: string;
  /** Why (redacted: never holds a token). */
  error: unknown;
  /** Whether another attempt with the same token will be made. */
  willRetry: boolean;
  /**
   * True when the server refused the new token (it answered the AUTH with an error such as WRONGPASS). The connection
   * then stays authenticated with the token it held (until `authenticatedUntil`), a reconnect presents that token
   * while it is good, and the provider requests a replacement at once; a newer token is applied as usual.
   */
  refused: boolean;
  /** When the token the connection is still authenticated with expires (epoch ms), or undefined when it holds none. */
  authenticatedUntil: number | undefined;
}

/**
 * Payload of `expiryMismatch`: the credential's `expiresOnTimestamp` did not fit its token (epoch seconds instead of
 * ms, not a number, later than the JWT's `exp`), so the JWT's `exp` was used. Emitted once per provider.
 */
export type ExpiryMismatchEvent = ExpiryMismatch;

/** Events of a credentials provider. No payload ever holds a token. */
export interface CredentialsProviderEvents {
  tokenRefreshed: [TokenInfo];
  refreshFailed: [RefreshFailedEvent];
  reauthenticated: [ReauthenticatedEvent];
  reauthenticationFailed: [ReauthenticationFailedEvent];
  expiryMismatch: [ExpiryMismatchEvent];
}
