/**
 * Errors the library throws or reports. None of them ever holds a token: their messages are written here, and a cause
 * that could quote one is passed through `redactError` (lib/token/redact-error.ts) first.
 */

/** A token from the credential cannot be used: not a JWT, no `oid`, no or past expiry. */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

/** No valid token could be had in time: the token service failed or did not answer. `cause` holds the last failure. */
export class TokenUnavailableError extends Error {
  override name = 'TokenUnavailableError';
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor -- narrows Error's: the message is required
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A single token request took longer than `tokenRequestTimeout`. Retryable. */
export class TokenRequestTimeoutError extends Error {
  override name = 'TokenRequestTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`The token request did not complete within tokenRequestTimeout (${timeoutMs} ms)`);
  }
}

/** The provider or manager was disposed while a caller waited for a token. */
export class DisposedError extends Error {
  override name = 'DisposedError';
}

/**
 * The installed ioredis lacks something the library relies on to keep connections authenticated (an ioredis release
 * changed an internal): thrown by `createEntraRedis()` / `createEntraCluster()`, naming the version and what is missing.
 */
export class IoredisContractError extends Error {
  override name = 'IoredisContractError';
}
