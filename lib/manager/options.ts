/** Options of the token manager, their defaults, and their validation. Defaults live here and nowhere else. */
import { invalidOption } from '../option-errors.js';
import { isPlainObject } from '../plain-object.js';
import { MAX_TIMER_MS, MAX_TIMER_RULE } from '../timer-range.js';

/** How a failed token request is retried within one refresh cycle. */
export interface RetryOptions {
  /** Attempts per refresh cycle, the first included. Default 3. */
  maxAttempts?: number;
  /** Delay before the second attempt, ms. Default 1000. */
  initialDelay?: number;
  /** Upper bound of any delay between attempts (and between failed cycles), ms. Default 30000. */
  maxDelay?: number;
  /** Factor applied to the delay after each failed attempt. Default 2. */
  backoffMultiplier?: number;
  /** Fraction of each delay that is randomised (0 = none, 1 = up to 100 % shorter). Default 0.2. */
  jitter?: number;
  /** Whether an attempt that failed with `error` may be retried. Default: network errors, timeouts, HTTP 408/429/5xx. */
  isRetryable?: (error: unknown) => boolean;
}

/** When tokens are refreshed. Names and meaning follow go-redis-entraid's `TokenManagerOptions`. */
export interface TokenManagerOptions {
  /** Fraction of a token's lifetime after which it is refreshed, in (0, 1]. Default 0.7. */
  expirationRefreshRatio?: number;
  /** Refresh no later than this many ms before expiry, whatever the ratio says. Default 0. */
  lowerRefreshBounds?: number;
  /** Time limit of one token request, ms. Default 15000. */
  tokenRequestTimeout?: number;
  /**
   * Fraction of the time until a scheduled refresh that is randomly taken off it, so that many processes started
   * together do not ask the token service at the same moment. In [0, 1). Default 0.1.
   */
  refreshJitter?: number;
  /** Retries within one refresh cycle. */
  retryOptions?: RetryOptions;
}

export interface ResolvedRetryOptions {
  maxAttempts: number;
  initialDelay: number;
  maxDelay: number;
  backoffMultiplier: number;
  jitter: number;
  isRetryable: (error: unknown) => boolean;
}

export interface ResolvedTokenManagerOptions {
  expirationRefreshRatio: number;
  lowerRefreshBounds: number;
  tokenRequestTimeout: number;
  refreshJitter: number;
  retryOptions: ResolvedRetryOptions;
}

export const DEFAULT_EXPIRATION_REFRESH_RATIO = 0.7;
export const DEFAULT_LOWER_REFRESH_BOUNDS = 0;
export const DEFAULT_TOKEN_REQUEST_TIMEOUT = 15_000;
export const DEFAULT_REFRESH_JITTER = 0.1;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_INITIAL_DELAY = 1_000;
export const DEFAULT_MAX_DELAY = 30_000;
export const DEFAULT_BACKOFF_MULTIPLIER = 2;
export const DEFAULT_RETRY_JITTER = 0.2;

function finiteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) invalidOption(name, 'expected a finite number', value);
  return value;
}

/** A duration in ms of at least 0 (every option checked with it is one), within what a timer can wait. */
function nonNegative(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = finiteNumber(name, value);
  if (n < 0) invalidOption(name, 'must not be negative', n);
  if (n > MAX_TIMER_MS) invalidOption(name, MAX_TIMER_RULE, n);
  return n;
}

/** A duration in ms greater than 0, within what a timer can wait. */
function positive(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = finiteNumber(name, value);
  if (n <= 0) invalidOption(name, 'must be greater than 0', n);
  if (n > MAX_TIMER_MS) invalidOption(name, MAX_TIMER_RULE, n);
  return n;
}

function fraction(
  name: string,
  value: unknown,
  fallback: number,
  rule: string,
  accept: (n: number) => boolean,
): number {
  if (value === undefined) return fallback;
  const n = finiteNumber(name, value);
  if (!accept(n)) invalidOption(name, rule, n);
  return n;
}

function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) invalidOption(name, 'expected an object', value);
  return value;
}

/**
 * Fills in defaults and validates. Throws a TypeError naming the option and what is wrong with its value.
 * `defaultIsRetryable` is passed in so that this module stays free of error classification.
 */
export function resolveTokenManagerOptions(
  options: TokenManagerOptions | undefined,
  defaultIsRetryable: (error: unknown) => boolean,
): ResolvedTokenManagerOptions {
  const o = plainObject('tokenManagerOptions', options);
  const r = plainObject('tokenManagerOptions.retryOptions', o.retryOptions);
  const maxAttempts =
    r.maxAttempts === undefined ? DEFAULT_MAX_ATTEMPTS : finiteNumber('retryOptions.maxAttempts', r.maxAttempts);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    invalidOption('retryOptions.maxAttempts', 'must be an integer of at least 1', maxAttempts);
  const initialDelay = nonNegative('retryOptions.initialDelay', r.initialDelay, DEFAULT_INITIAL_DELAY);
  const maxDelay = nonNegative('retryOptions.maxDelay', r.maxDelay, Math.max(DEFAULT_MAX_DELAY, initialDelay));
  if (maxDelay < initialDelay)
    invalidOption(
      'retryOptions.maxDelay',
      `must not be less than retryOptions.initialDelay (${initialDelay})`,
      maxDelay,
    );
  const backoffMultiplier =
    r.backoffMultiplier === undefined
      ? DEFAULT_BACKOFF_MULTIPLIER
      : finiteNumber('retryOptions.backoffMultiplier', r.backoffMultiplier);
  if (backoffMultiplier < 1) invalidOption('retryOptions.backoffMultiplier', 'must be at least 1', backoffMultiplier);
  const jitter = fraction(
    'retryOptions.jitter',
    r.jitter,
    DEFAULT_RETRY_JITTER,
    'must be between 0 and 1',
    (n) => n >= 0 && n <= 1,
  );
  const isRetryable = r.isRetryable === undefined ? defaultIsRetryable : r.isRetryable;
  if (typeof isRetryable !== 'function') invalidOption('retryOptions.isRetryable', 'expected a function', isRetryable);
  return {
    expirationRefreshRatio: fraction(
      'expirationRefreshRatio',
      o.expirationRefreshRatio,
      DEFAULT_EXPIRATION_REFRESH_RATIO,
      'must be greater than 0 and at most 1',
      (n) => n > 0 && n <= 1,
    ),
    lowerRefreshBounds: nonNegative('lowerRefreshBounds', o.lowerRefreshBounds, DEFAULT_LOWER_REFRESH_BOUNDS),
    tokenRequestTimeout: positive('tokenRequestTimeout', o.tokenRequestTimeout, DEFAULT_TOKEN_REQUEST_TIMEOUT),
    refreshJitter: fraction(
      'refreshJitter',
      o.refreshJitter,
      DEFAULT_REFRESH_JITTER,
      'must be at least 0 and less than 1',
      (n) => n >= 0 && n < 1,
    ),
    retryOptions: {
      maxAttempts,
      initialDelay,
      maxDelay,
      backoffMultiplier,
      jitter,
      isRetryable: isRetryable as (e: unknown) => boolean,
    },
  };
}
