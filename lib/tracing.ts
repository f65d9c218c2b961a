/**
 * What the library does, published on `node:diagnostics_channel` for APM agents and loggers, the way ioredis
 * publishes its commands (`ioredis:command`, `ioredis:connect`):
 *
 * - {@link TOKEN_REQUEST_CHANNEL} (`ioredis-entraid:token`), a tracing channel: one trace per request to the
 *   credential (every attempt, retries included). Subscribe with
 *   `diagnostics_channel.tracingChannel('ioredis-entraid:token').subscribe({ start, end, asyncStart, asyncEnd, error })`,
 *   or to the single channels `tracing:ioredis-entraid:token:start` and so on.
 * - {@link REAUTH_CHANNEL} (`ioredis-entraid:reauth`), a tracing channel: one trace per attempt to move a live
 *   connection to a new token: an `AUTH` in place (`method: 'auth'`), or for a RESP2 subscriber, which cannot send
 *   `AUTH`, a handover of its subscriptions to a fresh connection (`method: 'handover'`).
 * - {@link REAUTH_RECONNECT_CHANNEL} (`ioredis-entraid:reauth:reconnect`), a plain channel: a connection that could
 *   not be moved in place before its token expired (AUTH stuck behind a blocking command, or a failed handover) is
 *   reconnected with the new token instead.
 * - {@link HANDOVER_CHANNEL} (`ioredis-entraid:handover`), a plain channel: each phase a RESP2 subscriber's handover
 *   enters ({@link HandoverPhaseMessage}), with the local ports of the connections it uses.
 *
 * Every helper is a no-op when nobody subscribes (the context is not even built). No payload ever holds a token:
 * tokens are described by {@link TokenInfo} (username, oid, expiry), and errors are passed through
 * {@link redactError} before any subscriber sees them.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { redactError } from './token/redact-error.js';
import { describeToken, type TokenInfo } from './identity/events.js';
import type { EntraToken } from './token/entra-token.js';

/** Tracing channel of token requests: `tracing:ioredis-entraid:token:{start,end,asyncStart,asyncEnd,error}`. */
export const TOKEN_REQUEST_CHANNEL = 'ioredis-entraid:token';
/** Tracing channel of in-place re-authentication: `tracing:ioredis-entraid:reauth:{start,end,asyncStart,asyncEnd,error}`. */
export const REAUTH_CHANNEL = 'ioredis-entraid:reauth';
/** Plain channel: a connection is reconnected to move it to a new token, because it could not be moved in place. */
export const REAUTH_RECONNECT_CHANNEL = 'ioredis-entraid:reauth:reconnect';

/** Plain channel: a RESP2 subscriber's handover entered a phase. */
export const HANDOVER_CHANNEL = 'ioredis-entraid:handover';

/**
 * Message of {@link HANDOVER_CHANNEL}. Phases, in order: `preparing` (a shadow connection and a publisher connect
 * with the new token), `shadowing` (the shadow subscribes to the application's channels), `splitting` (marker A is
 * published; the client is reconnected when it sees it), `reconnecting` (the shadow delivers while the client
 * reconnects), `joining` (marker B is published; the client delivers again once both connections saw it), then
 * `done`, or `fallback` from any phase (the client is reconnected plainly with the new token).
 */
export interface HandoverPhaseMessage {
  /** The connection's name (`connectionName`) or address. */
  connection: string;
  phase: 'preparing' | 'shadowing' | 'splitting' | 'reconnecting' | 'joining' | 'done' | 'fallback';
  /** Local ports of the client's socket and of the handover's own connections, when connected. */
  ports: { client?: number; shadow?: number; publisher?: number };
}

const handoverChannel = diagnosticsChannel.channel(HANDOVER_CHANNEL);

/** Publishes on {@link HANDOVER_CHANNEL}; `message` is only built when someone listens. */
export function publishHandoverPhase(message: () => HandoverPhaseMessage): void {
  if (handoverChannel.hasSubscribers) handoverChannel.publish(message());
}

/** Context of a token-request trace. The same object travels through start, end, asyncStart, asyncEnd and error. */
export interface TokenRequestTraceContext {
  /** Attempt within the current refresh cycle, from 1. */
  attempt: number;
  /** Attempts the cycle may make (`retryOptions.maxAttempts`). */
  maxAttempts: number;
  /** Time limit of this request (`tokenRequestTimeout`), ms. */
  timeoutMs: number;
  /** Set when the request succeeded: the token received, described without the token. */
  result?: TokenInfo;
  /** Set when the request failed (redacted). */
  error?: unknown;
}

/** Context of a re-authentication trace. */
export interface ReauthTraceContext {
  /** The connection's name (`connectionName`) or address. */
  connection: string;
  /** How: `AUTH` on the live connection, or a handover of a RESP2 subscriber's subscriptions to a new connection. */
  method: 'auth' | 'handover';
  /** The token the connection moves to, described without the token. */
  token: TokenInfo;
  /** Attempt to move this connection to this token, from 1. */
  attempt: number;
  /**
   * Set when it completed. For `auth`, the server's reply: `'OK'`; anything else (e.g. `'QUEUED'` inside MULTI) means
   * "not done".
   */
  result?: unknown;
  /** Set when it failed (redacted: the token a failed `AUTH` carried is removed). */
  error?: unknown;
}

/** Message of {@link REAUTH_RECONNECT_CHANNEL}. */
export interface ReauthReconnectMessage {
  /** The connection's name (`connectionName`) or address. */
  connection: string;
  /** The token the connection will present when it reconnects, described without the token. */
  token: TokenInfo;
  /** Why: `AUTH` did not complete before the old token's deadline, or the handover of a subscriber failed. */
  reason: 'auth-timeout' | 'handover-failed';
}

const tokenChannel = diagnosticsChannel.tracingChannel<unknown, TokenRequestTraceContext>(TOKEN_REQUEST_CHANNEL);
const reauthChannel = diagnosticsChannel.tracingChannel<unknown, ReauthTraceContext>(REAUTH_CHANNEL);
const reconnectChannel = diagnosticsChannel.channel(REAUTH_RECONNECT_CHANNEL);

/** Whether any of the five channels of a tracing channel has a subscriber (`TracingChannel#hasSubscribers` is newer). */
function isTraced(channel: diagnosticsChannel.TracingChannel<unknown, object>): boolean {
  return (
    channel.start.hasSubscribers ||
    channel.end.hasSubscribers ||
    channel.asyncStart.hasSubscribers ||
    channel.asyncEnd.hasSubscribers ||
    channel.error.hasSubscribers
  );
}

/**
 * Runs one token request, traced on {@link TOKEN_REQUEST_CHANNEL}. Resolves with the token `request` resolved with;
 * subscribers see only its description (`context.result`). Without subscribers this is `request()` itself.
 */
export function traceTokenRequest(
  request: () => Promise<EntraToken>,
  context: () => Omit<TokenRequestTraceContext, 'result' | 'error'>,
): Promise<EntraToken> {
  if (!isTraced(tokenChannel)) return request();
  let token: EntraToken | undefined;
  const traced = tokenChannel.tracePromise(
    async () => {
      try {
        token = await request();
      } catch (error) {
        throw redactError(error);
      }
      return describeToken(token);
    },
    { ...context() },
  );
  return traced.then(() => token as EntraToken);
}

/** True when someone subscribes to {@link REAUTH_CHANNEL}: only then is a re-authentication's trace context built. */
export function isReauthTraced(): boolean {
  return isTraced(reauthChannel);
}

/**
 * Runs one re-authentication of a live connection (`redis.auth(...)`, or a subscriber handover), traced on
 * {@link REAUTH_CHANNEL}. Resolves or rejects as `reauthenticate` does; the rejection is redacted. Without
 * subscribers this is `reauthenticate()` itself.
 */
export function traceReauthentication<T>(
  reauthenticate: () => Promise<T>,
  context: () => { connection: string; method?: ReauthTraceContext['method']; token: EntraToken; attempt: number },
): Promise<T> {
  if (!isTraced(reauthChannel)) return reauthenticate();
  const { connection, method = 'auth', token, attempt } = context();
  return reauthChannel.tracePromise(
    async () => {
      try {
        return await reauthenticate();
      } catch (error) {
        throw redactError(error);
      }
    },
    { connection, method, token: describeToken(token), attempt },
  );
}

/** Publishes on {@link REAUTH_RECONNECT_CHANNEL} that `connection` is reconnected to present `token`. */
export function publishReauthReconnect(
  connection: string,
  token: EntraToken,
  reason: ReauthReconnectMessage['reason'],
): void {
  if (!reconnectChannel.hasSubscribers) return;
  const message: ReauthReconnectMessage = { connection, token: describeToken(token), reason };
  reconnectChannel.publish(message);
}
