/**
 * Errors the library throws or reports. None of them ever holds a token: messages are written here, causes are
 * passed through {@link redactError} where they could quote one.
 */

/** A token from the credential cannot be used: not a JWT, no `oid`, no or past expiry. */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

/** No valid token could be had in time: the token service failed or did not answer. `cause` holds the last failure. */
export class TokenUnavailableError extends Error {
  override name = 'TokenUnavailableError';
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

const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** Replaces anything shaped like a JWT in a string. */
export function redactTokens(text: string): string {
  return text.replace(JWT_PATTERN, '<redacted>');
}

/**
 * Removes tokens from an error in place (message, stack, string properties, the argument lists ioredis attaches to a
 * ReplyError, the errors of an AggregateError) and returns it; a thrown string comes back redacted. Walks `cause`
 * chains.
 */
export function redactError<T>(error: T, seen = new Set<unknown>()): T {
  if (typeof error === 'string') return redactTokens(error) as T;
  if (!(error instanceof Error) || seen.has(error)) return error;
  seen.add(error);
  // Other string properties (a credential's own error fields), and the errors of an AggregateError
  // (ChainedTokenCredential and DefaultAzureCredential throw one).
  for (const key of Object.keys(error)) {
    const record = error as unknown as Record<string, unknown>;
    const value = record[key];
    try {
      if (typeof value === 'string') record[key] = redactTokens(value);
      else if (Array.isArray(value) && key === 'errors') record[key] = value.map((inner) => redactError(inner, seen));
    } catch {
      // read-only property: leave it
    }
  }
  try {
    error.message = redactTokens(error.message);
    if (error.stack) error.stack = redactTokens(error.stack);
  } catch {
    // frozen or exotic error: nothing we can do, and nothing to leak that we added
  }
  const command = (error as { command?: { name?: string; args?: unknown[] } }).command;
  if (command && Array.isArray(command.args)) {
    command.args = command.args.map((arg) => (typeof arg === 'string' ? redactTokens(arg) : arg));
  }
  if ('cause' in error) redactError(error.cause, seen);
  return error;
}
