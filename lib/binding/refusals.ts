/**
 * Tokens the server refused (WRONGPASS), one refusal per provider: one server and one identity behind a provider, so
 * a token refused on one of its connections is not presented on any other (a duplicate, another client, a
 * subscriber's handover, a connection made later); they present the token the refusing connection held, while it is
 * good. A refusal ends when a token at least as new is accepted.
 *
 * A server may refuse a token for a passing reason (a clock behind the token's `nbf`, an identity change still
 * propagating) while the credential keeps handing out that same token. So a refusal does not outlive the held token:
 * at the held token's re-authentication deadline the provider hands its current token out again and every connection
 * tries it in place, once, before the server would close them at expiry. Refused again, it stands until a newer token
 * is accepted.
 */
import type { EntraCredentialsProvider } from '../identity/credentials-provider.js';
import { isUsable, usableUntil } from '../manager/schedule.js';
import type { EntraToken } from '../token/entra-token.js';
import { addDeadline, cancelDeadline, type Deadline } from './deadlines.js';

interface Refusal {
  refused: EntraToken;
  /** The token the connection that was refused still held. */
  held: EntraToken | undefined;
  /** The refused token is being tried again, once: it is not refused meanwhile. */
  retrying: boolean;
  /** The retry at the held token's deadline. */
  retryAt: Deadline | undefined;
  readonly provider: EntraCredentialsProvider;
}

const refusals = new WeakMap<EntraCredentialsProvider, Refusal>();

/** True when `token` stands refused for `provider`'s connections: not sent, not presented. */
export function isRefused(provider: EntraCredentialsProvider, token: EntraToken | undefined): boolean {
  const refusal = refusals.get(provider);
  return refusal !== undefined && !refusal.retrying && token !== undefined && token.sameAs(refusal.refused);
}

/** The token to present instead of the provider's current one while a refusal stands, if it is still good. */
export function heldDuringRefusal(provider: EntraCredentialsProvider, now: number): EntraToken | undefined {
  const refusal = refusals.get(provider);
  return refusal && !refusal.retrying && isUsable(refusal.held, now) ? refusal.held : undefined;
}

/** The server refused `refused` on a connection that held `held`. */
export function recordRefusal(
  provider: EntraCredentialsProvider,
  refused: EntraToken,
  held: EntraToken | undefined,
): void {
  const standing = refusals.get(provider);
  if (standing?.refused.sameAs(refused)) {
    // Several connections report the same refusal, or its retry was refused too: it stands, without another retry.
    standing.retrying = false;
    if ((held?.expiresOn ?? 0) > (standing.held?.expiresOn ?? 0)) standing.held = held;
    return;
  }
  if (standing?.retryAt) cancelDeadline(standing.retryAt);
  const refusal: Refusal = { refused, held, retrying: false, retryAt: undefined, provider };
  refusals.set(provider, refusal);
  // When the held token stops being presented (the re-authentication deadline of the connections that hold it).
  if (isUsable(held, Date.now())) refusal.retryAt = addDeadline(usableUntil(held), retry, refusal);
}

/** `accepted` was accepted on a connection of `provider`: a refusal of a token no newer ends. */
export function endRefusal(provider: EntraCredentialsProvider, accepted: EntraToken): void {
  const standing = refusals.get(provider);
  if (!standing || accepted.expiresOn < standing.refused.expiresOn) return;
  if (standing.retryAt) cancelDeadline(standing.retryAt);
  refusals.delete(provider);
}

function retry(refusal: Refusal): void {
  refusal.retryAt = undefined;
  const { provider } = refusal;
  if (refusals.get(provider) !== refusal) return; // ended, or replaced by a newer one
  refusal.retrying = true;
  provider.handOutCurrentToken();
}
