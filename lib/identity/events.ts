import type { RefreshFailure } from '../manager/token-manager.js';
import type { TokenInfo } from '../token/entra-token.js';
import type { ExpiryMismatch } from '../token/expiry.js';

export { describeToken, type TokenInfo } from '../token/entra-token.js';

/** Payload of `refreshFailed`: what the token manager reports of a failed refresh cycle. */
export type RefreshFailedEvent = RefreshFailure;

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
