import type { AccessToken } from '@azure/core-auth';
import pRetry, { AbortError } from 'p-retry';
import { DisposedError, InvalidTokenError, TokenRequestTimeoutError, TokenUnavailableError } from '../errors.js';
import { redactError } from '../token/redact-error.js';
import { EntraToken, type UsernameResolver } from '../token/entra-token.js';
import type { ExpiryMismatch } from '../token/expiry.js';
import { traceTokenRequest } from '../tracing.js';
import { runWithRequestSignal, type RequestScope } from './request-signal.js';
import { resolveTokenManagerOptions, type ResolvedTokenManagerOptions, type TokenManagerOptions } from './options.js';
import { defaultIsRetryable, retryAfterMs } from './retryable.js';
import { failedCycleDelay, isUsable, refreshDelay, retryDelay, unchangedRecheckDelay } from './schedule.js';
import { clearTimerAt, MAX_TIMER_MS, setTimerAt, type TimerAt } from '../timer-range.js';

/** Fetches one access token. Must honour `signal` where it can; the manager also stops waiting when it aborts. */
export type AccessTokenSource = (signal: AbortSignal) => Promise<AccessToken | null>;

/** What a failed refresh cycle reports. Never holds a token. */
export interface RefreshFailure {
  /** The last attempt's error, with anything token-shaped removed. */
  error: unknown;
  /** Attempts made in the failed cycle. */
  attempts: number;
  /** Refresh cycles that failed in a row, this one included. */
  consecutiveFailures: number;
  /** When the next cycle starts (ms since the epoch), or undefined when nothing is scheduled (no client listens). */
  nextAttemptAt: number | undefined;
  /** Expiry of the token still in use (epoch ms), or undefined when none is valid: commands may then fail. */
  validTokenExpiresOn: number | undefined;
}

export interface TokenManagerHooks {
  /** A new token arrived (an unchanged token is not announced). */
  onToken?(token: EntraToken): void;
  /** A refresh cycle exhausted its attempts. */
  onRefreshFailed?(failure: RefreshFailure): void;
  /**
   * The credential reported an implausible expiry (epoch seconds, not a number, later than the JWT's `exp`), which
   * was set aside for `exp`. Called once per manager, after the first such token was accepted.
   */
  onExpiryMismatch?(mismatch: ExpiryMismatch): void;
}

export interface GetTokenOptions {
  /** How long to wait when no valid token is cached, ms. Default: `tokenRequestTimeout`. */
  timeout?: number;
  /** Stops waiting (rejecting with the signal's reason) when aborted. The shared request goes on for others. */
  signal?: AbortSignal;
}

interface Waiter {
  resolve(token: EntraToken): void;
  reject(error: unknown): void;
}

/**
 * Keeps one token fresh. While started it refreshes on schedule and never gives up: a cycle that exhausts its retries
 * is reported and followed by another, before the last valid token expires. Between cycles it hands out the last
 * valid token; callers wait only when none is valid, and share one in-flight request.
 */
export class TokenManager {
  readonly options: ResolvedTokenManagerOptions;
  readonly #source: AccessTokenSource;
  readonly #username: UsernameResolver | undefined;
  readonly #audiences: readonly string[] | undefined;
  readonly #hooks: TokenManagerHooks;
  readonly #random: () => number;
  #current: EntraToken | undefined;
  #lastError: unknown;
  #consecutiveFailures = 0;
  /** No new cycle before this time (the service asked us to wait with Retry-After). */
  #notBefore = 0;
  #cycle: Promise<EntraToken> | undefined;
  #cycleAbort: AbortController | undefined;
  #timer: TimerAt | undefined;
  #running = false;
  #disposed = false;
  /** The refused token a replacement was last requested for (one request per refused token). */
  #replacementFor: EntraToken | undefined;
  #nextReplacementAt = 0;
  /** The first expiry mismatch, until reported; it is reported once. */
  #expiryMismatch: ExpiryMismatch | undefined;
  #expiryMismatchReported = false;
  readonly #waiters = new Set<Waiter>();

  constructor(
    source: AccessTokenSource,
    options: {
      tokenManagerOptions?: TokenManagerOptions;
      username?: UsernameResolver;
      hooks?: TokenManagerHooks;
      random?: () => number;
      /** Audiences a token may have; others are refused with a clear error. Default: no check. */
      audiences?: readonly string[];
    } = {},
  ) {
    if (typeof source !== 'function') throw new TypeError('TokenManager needs a token source function');
    if (options.username !== undefined && typeof options.username !== 'function') {
      throw new TypeError(
        `Invalid option "username": expected a function, got a value of type ${typeof options.username}`,
      );
    }
    this.options = resolveTokenManagerOptions(options.tokenManagerOptions, defaultIsRetryable);
    this.#source = source;
    this.#username = options.username;
    this.#audiences = options.audiences;
    this.#hooks = options.hooks ?? {};
    this.#random = options.random ?? Math.random;
  }

  /** The cached token while it can still be presented, else undefined. */
  validToken(): EntraToken | undefined {
    return isUsable(this.#current, Date.now()) ? this.#current : undefined;
  }

  /** The error of the last failed attempt since the last success, if any (redacted). */
  get lastError(): unknown {
    return this.#lastError;
  }

  get running(): boolean {
    return this.#running;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Starts the refresh schedule: fetches now when no valid token is cached, else schedules from the cached one. */
  start(): void {
    if (this.#disposed) throw new DisposedError('The token manager was disposed');
    if (this.#running) return;
    this.#running = true;
    const current = this.validToken();
    if (current) this.#schedule(refreshDelay(current, Date.now(), this.options, this.#random));
    else if (!this.#cycle) this.#startCycleInBackground();
  }

  /** Stops the schedule. Keeps the cached token. A request in flight is abandoned unless a caller waits for it. */
  stop(): void {
    this.#running = false;
    this.#clearTimer();
    if (this.#waiters.size === 0) this.#abandonCycle(new DisposedError('The token refresh schedule was stopped'));
  }

  /** Aborts the cycle in flight and forgets it at once, so that a start() right after begins a new one. */
  #abandonCycle(reason: Error): void {
    this.#cycleAbort?.abort(reason);
    this.#cycle = undefined;
    this.#cycleAbort = undefined;
  }

  /**
   * The server refused `token` on a live connection (WRONGPASS): look for another one now rather than at the next
   * scheduled refresh. Once per token, however many connections report it; nothing when a newer token is already
   * here, a cycle is under way, the schedule is stopped, the service asked us to wait (Retry-After), or the last
   * replacement was requested less than a tenth of the token's remaining life ago (at least 1 s). A credential
   * that hands back the same token (MSAL's cache) is looked at again on the unchanged-token schedule.
   */
  requestReplacement(token: EntraToken): void {
    if (!this.#running || this.#cycle || !token.sameAs(this.#current) || token.sameAs(this.#replacementFor)) return;
    const now = Date.now();
    if (now < this.#notBefore || now < this.#nextReplacementAt) return;
    this.#replacementFor = token;
    // A server that refuses every new token must not turn this into a loop of requests: spaced as unchanged-token
    // re-checks are (a tenth of the remaining life, at least a second while that is left).
    this.#nextReplacementAt = now + unchangedRecheckDelay(token, now);
    this.#clearTimer();
    this.#startCycleInBackground();
  }

  /** Stops everything, including a request in flight; callers still waiting are rejected. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.stop();
    const error = new DisposedError('The token manager was disposed');
    this.#abandonCycle(error);
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters.clear();
  }

  /**
   * A valid token: the cached one while it lasts, else a fresh one. Concurrent callers share one request. Rejects
   * with {@link TokenUnavailableError} (carrying the last cause) when the cycle fails or `timeout` passes.
   */
  async getToken(options: GetTokenOptions = {}): Promise<EntraToken> {
    if (this.#disposed) throw new DisposedError('The token manager was disposed');
    const cached = this.validToken();
    if (cached) return cached;
    const timeout = options.timeout ?? this.options.tokenRequestTimeout;
    const { signal } = options;
    signal?.throwIfAborted();
    return await new Promise<EntraToken>((resolve, reject) => {
      const onAbort = () => waiter.reject(signal?.reason);
      // Not unref'd: a caller waits, so the process must stay up until it has its answer (bounded by `timeout`).
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          this.#waiters.delete(waiter);
          const cause = this.#lastError ?? new TokenRequestTimeoutError(timeout);
          reject(
            new TokenUnavailableError(
              `No valid Entra ID token could be obtained within ${timeout} ms${this.#causeSuffix(cause)}`,
              { cause },
            ),
          );
        },
        Math.min(timeout, MAX_TIMER_MS),
      ); // longer is for ever, as far as a timer can tell
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: Waiter = {
        resolve: (token) => {
          settle();
          resolve(token);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (!this.#cycle && Date.now() >= this.#notBefore) this.#startCycleInBackground();
    });
  }

  #causeSuffix(error: unknown = this.#lastError): string {
    if (error === undefined) return '';
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a thrown non-Error, as String() shows it
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return `; last error: ${message}`;
  }

  #startCycleInBackground(): void {
    this.#refresh().catch(() => {
      // reported through onRefreshFailed and to waiters
    });
  }

  /** One refresh cycle (with retries), shared by everyone who asks while it runs. */
  #refresh(): Promise<EntraToken> {
    if (this.#cycle) return this.#cycle;
    const abort = new AbortController();
    const cycle = this.#runCycle(abort.signal).finally(() => {
      if (this.#cycle === cycle) {
        this.#cycle = undefined;
        this.#cycleAbort = undefined;
      }
    });
    this.#cycle = cycle;
    this.#cycleAbort = abort;
    return cycle;
  }

  async #runCycle(signal: AbortSignal): Promise<EntraToken> {
    const retry = this.options.retryOptions;
    let attempts = 0;
    let token: EntraToken;
    try {
      token = await pRetry(
        async () => {
          attempts++;
          try {
            return await traceTokenRequest(
              () => this.#requestOnce(signal),
              () => ({
                attempt: attempts,
                maxAttempts: retry.maxAttempts,
                timeoutMs: this.options.tokenRequestTimeout,
              }),
            );
          } catch (error) {
            this.#lastError = redactError(error);
            // Classified here, with isRetryable seeing the credential's own error: p-retry would stop at once on any
            // TypeError that does not look like a network error, without asking.
            if (!this.#isRetryable(error)) throw new AbortError(asError(error));
            throw new RetryableAttemptFailure(error);
          }
        },
        {
          retries: retry.maxAttempts - 1,
          // p-retry waits the exponential backoff: initialDelay × backoffMultiplier^(n−1), capped at maxDelay, both
          // scaled by (1 − jitter), the shortest a jittered delay can be. Its own `randomize` (×1 to ×2, Math.random)
          // is not our jitter, which only ever shortens a delay and takes the manager's random source.
          minTimeout: retry.initialDelay * (1 - retry.jitter),
          factor: retry.backoffMultiplier,
          maxTimeout: retry.maxDelay * (1 - retry.jitter),
          unref: true,
          signal,
          // The rest of the delay waits here, before p-retry's: the random part of the jitter, and what a Retry-After
          // asks beyond the backoff (honoured up to maxDelay). Together they wait what retryDelay() computes.
          onFailedAttempt: async ({ attemptNumber, retriesLeft, retryDelay: backoff }) => {
            if (retriesLeft === 0) return;
            const extra = retryDelay(attemptNumber, retryAfterMs(this.#lastError), retry, this.#random) - backoff;
            if (extra > 0) await abortableDelay(extra, signal);
          },
        },
      );
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      this.#onCycleFailed(redactError(error instanceof RetryableAttemptFailure ? error.cause : error), attempts);
      throw new TokenUnavailableError(`No valid Entra ID token could be obtained${this.#causeSuffix()}`, {
        cause: this.#lastError,
      });
    }
    this.#onCycleSucceeded(token);
    return this.#current ?? token;
  }

  #isRetryable(error: unknown): boolean {
    try {
      // Compared with true: the predicate is the application's and may return anything at run time.
      const verdict: unknown = this.options.retryOptions.isRetryable(error);
      return verdict === true;
    } catch {
      return false;
    }
  }

  /** One request to the credential, bounded by `tokenRequestTimeout` even when the credential ignores aborts. */
  async #requestOnce(cycleSignal: AbortSignal): Promise<EntraToken> {
    const timeoutMs = this.options.tokenRequestTimeout;
    const request = new AbortController();
    const onCycleAbort = () => request.abort(cycleSignal.reason);
    cycleSignal.addEventListener('abort', onCycleAbort, { once: true });
    const timer = setTimeout(() => request.abort(new TokenRequestTimeoutError(timeoutMs)), timeoutMs);
    (timer as { unref?: () => void }).unref?.(); // a timer from a fake-timer library may lack unref
    let scope: RequestScope<Promise<AccessToken | null>> | undefined;
    try {
      // The signal is also made current for the credential's HTTP client, which can follow it where the
      // credential does not (see request-signal.ts).
      scope = runWithRequestSignal(request.signal, () => Promise.resolve().then(() => this.#source(request.signal)));
      const pending = scope.value;
      pending.catch(() => {
        // a late failure of an abandoned request has nobody to report to
      });
      const accessToken = await Promise.race([pending, rejectOnAbort(request.signal)]);
      if (!accessToken) throw new InvalidTokenError('The credential returned no access token');
      return EntraToken.fromAccessToken(accessToken, {
        username: this.#username,
        now: Date.now(),
        audiences: this.#audiences,
        onExpiryMismatch: (mismatch) => {
          if (!this.#expiryMismatchReported) this.#expiryMismatch ??= mismatch;
        },
      });
    } finally {
      scope?.end(); // settled or abandoned: the request is over
      clearTimeout(timer);
      cycleSignal.removeEventListener('abort', onCycleAbort);
    }
  }

  #onCycleSucceeded(token: EntraToken): void {
    this.#lastError = undefined;
    this.#consecutiveFailures = 0;
    this.#notBefore = 0;
    const now = Date.now();
    const unchanged = token.sameAs(this.#current);
    if (!unchanged) this.#current = token;
    const current = this.#current ?? token;
    for (const waiter of [...this.#waiters]) waiter.resolve(current);
    if (this.#running) {
      this.#schedule(
        unchanged ? unchangedRecheckDelay(current, now) : refreshDelay(current, now, this.options, this.#random),
      );
    }
    if (!unchanged) this.#hooks.onToken?.(current);
    const mismatch = this.#expiryMismatch;
    if (mismatch) {
      this.#expiryMismatch = undefined;
      this.#expiryMismatchReported = true;
      this.#hooks.onExpiryMismatch?.(mismatch);
    }
  }

  #onCycleFailed(error: unknown, attempts: number): void {
    this.#lastError = error;
    this.#consecutiveFailures++;
    const now = Date.now();
    const retryAfter = retryAfterMs(error);
    if (retryAfter !== undefined) this.#notBefore = now + retryAfter;
    const valid = this.validToken();
    let nextAttemptAt: number | undefined;
    if (this.#running) {
      const delay = failedCycleDelay(
        this.#consecutiveFailures,
        valid,
        retryAfter,
        now,
        this.options.retryOptions,
        this.#random,
      );
      this.#schedule(delay);
      nextAttemptAt = now + delay;
    }
    const failure = new TokenUnavailableError(`No valid Entra ID token could be obtained${this.#causeSuffix()}`, {
      cause: error,
    });
    for (const waiter of [...this.#waiters]) waiter.reject(failure);
    this.#hooks.onRefreshFailed?.({
      error,
      attempts,
      consecutiveFailures: this.#consecutiveFailures,
      nextAttemptAt,
      validTokenExpiresOn: valid?.expiresOn,
    });
  }

  /** The next cycle in `delay` ms (a delay longer than a timer waits, for a token valid for weeks, in steps). */
  #schedule(delay: number): void {
    this.#clearTimer();
    this.#timer = setTimerAt(Date.now() + Math.max(0, delay), TokenManager.#onTimer, this);
  }

  static readonly #onTimer = (manager: TokenManager): void => {
    manager.#timer = undefined;
    if (manager.#running && !manager.#cycle) manager.#startCycleInBackground();
  };

  #clearTimer(): void {
    clearTimerAt(this.#timer);
    this.#timer = undefined;
  }
}

/** Carries a retryable failure through p-retry as a plain Error, whatever the credential threw. */
class RetryableAttemptFailure extends Error {
  constructor(failure: unknown) {
    super('retryable token request failure', { cause: failure });
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Waits `ms` (timer unref'd) or rejects as soon as `signal` aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    (timer as { unref?: () => void }).unref?.(); // a timer from a fake-timer library may lack unref
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
