/**
 * Pure arithmetic of the refresh schedule: when to refresh a token, when to look again after the credential handed
 * back the same token, and how long to wait between attempts and between failed cycles. No timers here.
 */
import type { EntraToken } from '../token/entra-token.js';
import type { ResolvedRetryOptions, ResolvedTokenManagerOptions } from './options.js';

/** A refresh is never scheduled sooner than this, nor sooner than half the remaining life, to avoid tight loops. */
export const MIN_REFRESH_INTERVAL_MS = 1_000;
/** Failed cycles are never closer together than this, even with `initialDelay: 0`. */
export const MIN_CYCLE_GAP_MS = 250;
/**
 * After an unchanged token (MSAL serves its cache until about 5 minutes before expiry), look again after this
 * fraction of the remaining life: the first look inside MSAL's window still leaves 90 % of that window.
 */
export const UNCHANGED_RECHECK_FRACTION = 0.1;
/**
 * A cached token is presented only while more than this much of it is left, or 20 % of its lifetime when that is
 * less: one that could expire on its way to the server is not worth presenting.
 */
export const MAX_VALIDITY_MARGIN_MS = 5_000;
export const VALIDITY_MARGIN_FRACTION = 0.2;

/** How long before its expiry a token stops being presented: min(5 s, 20 % of its lifetime), ms. */
export function validityMargin(token: EntraToken): number {
  return Math.min(MAX_VALIDITY_MARGIN_MS, token.ttl * VALIDITY_MARGIN_FRACTION);
}

/**
 * Until when `token` is presented to the server (epoch ms): min(5 s, 20 % of its lifetime) before it expires. Also the
 * re-authentication deadline of a connection that holds it.
 */
export function usableUntil(token: EntraToken): number {
  return token.expiresOn - validityMargin(token);
}

/** True while `token` can still be presented to the server: not expired and not about to be. */
export function isUsable(token: EntraToken | undefined, now: number): token is EntraToken {
  if (!token) return false;
  return usableUntil(token) > now;
}

/** Floor of any refresh delay: one second, or half of what is left of the token when that is less. */
function floorFor(token: EntraToken, now: number): number {
  return Math.max(0, Math.min(MIN_REFRESH_INTERVAL_MS, (token.expiresOn - now) / 2));
}

/**
 * Delay until the refresh of a newly received token:
 * min(receivedAt + ttl × ratio, expiresOn − lowerRefreshBounds), brought forward by up to `refreshJitter` of the
 * wait, never below the floor.
 */
export function refreshDelay(
  token: EntraToken,
  now: number,
  options: ResolvedTokenManagerOptions,
  random: () => number,
): number {
  const byRatio = token.receivedAt + token.ttl * options.expirationRefreshRatio;
  const byBound = token.expiresOn - options.lowerRefreshBounds;
  const wait = Math.max(0, Math.min(byRatio, byBound) - now);
  const jittered = wait - wait * options.refreshJitter * random();
  return Math.max(floorFor(token, now), jittered);
}

/** Delay until the next look after the credential returned the token we already had. */
export function unchangedRecheckDelay(token: EntraToken, now: number): number {
  return Math.max(floorFor(token, now), (token.expiresOn - now) * UNCHANGED_RECHECK_FRACTION);
}

/** Exponential backoff with jitter: attempt 1 waits `initialDelay`, each next one `backoffMultiplier` times more. */
export function backoffDelay(failures: number, retry: ResolvedRetryOptions, random: () => number): number {
  const base = Math.min(retry.maxDelay, retry.initialDelay * retry.backoffMultiplier ** Math.max(0, failures - 1));
  return base - base * retry.jitter * random();
}

/** Delay between attempts within a cycle, honouring the service's Retry-After up to `maxDelay`. */
export function retryDelay(
  attemptNumber: number,
  retryAfter: number | undefined,
  retry: ResolvedRetryOptions,
  random: () => number,
): number {
  const backoff = backoffDelay(attemptNumber, retry, random);
  return retryAfter === undefined ? backoff : Math.max(backoff, Math.min(retryAfter, retry.maxDelay));
}

/**
 * Delay before the next cycle after a cycle failed: backoff over consecutive failed cycles, but while the last token
 * is still valid, no later than half of its remaining life, so that several cycles run before it expires.
 */
export function failedCycleDelay(
  consecutiveFailures: number,
  current: EntraToken | undefined,
  retryAfter: number | undefined,
  now: number,
  retry: ResolvedRetryOptions,
  random: () => number,
): number {
  let delay = retryDelay(consecutiveFailures, retryAfter, retry, random);
  if (current && current.expiresOn > now) delay = Math.min(delay, (current.expiresOn - now) / 2);
  return Math.max(MIN_CYCLE_GAP_MS, delay);
}
