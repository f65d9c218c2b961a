/**
 * The situation of one connection, as far as a new token is concerned, and how a new token is applied in each: the
 * one place where that is decided. Read from ioredis each time a re-authentication may proceed (on a new token, after
 * EXEC/DISCARD, when a blocking command returns, on a retry), so it never goes stale.
 */
import type { Redis } from 'ioredis';
import { hasBlockingCommandInFlight, isResp2Subscriber, isTransactionOpen } from './ioredis-internals.js';

/**
 * - `down`: no connection that takes AUTH now (connecting, reconnecting, closed); the next handshake presents the
 *   newest token.
 * - `resp2-subscriber`: in RESP2 subscribe mode, where Redis accepts no AUTH.
 * - `transaction`: MULTI is open; an AUTH would be answered QUEUED and join the application's EXEC reply.
 * - `blocked`: a blocking command (BLPOP 0, XREAD BLOCK, ...) holds the connection; an AUTH would wait behind it.
 * - `open`: an AUTH written now is answered in order with the application's commands.
 */
export type ConnectionState = 'down' | 'resp2-subscriber' | 'transaction' | 'blocked' | 'open';

/** How a new token reaches the connection in each state. */
export type ReauthMethod =
  /** AUTH now. */
  | 'auth'
  /** AUTH right after the transaction's EXEC or DISCARD is written. */
  | 'after-transaction'
  /** AUTH once the blocking command returns; if it has not by the deadline, reconnect with the new token. */
  | 'after-blocking'
  /** Make-before-break move of the subscriptions to a connection with the new token. */
  | 'handover'
  /** Nothing now: the next connect presents the newest token. */
  | 'next-connect';

const METHODS: Readonly<Record<ConnectionState, ReauthMethod>> = {
  down: 'next-connect',
  'resp2-subscriber': 'handover',
  transaction: 'after-transaction',
  blocked: 'after-blocking',
  open: 'auth',
};

/**
 * The connection's state. Ready, or connected and still in the handshake or the ready check (a server loading its
 * dataset after a restart answers LOADING to commands for as long as it loads, but accepts AUTH, which ioredis writes
 * at once) counts as up; in `connect`, only while ioredis writes an AUTH at once: one it queued offline would be sent
 * after the commands it resends on ready, behind a blocking one among them for as long as that blocks.
 */
export function connectionState(redis: Redis): ConnectionState {
  // ioredis has no stream until its first connect, whatever its typings say.
  const stream = redis.stream as Redis['stream'] | undefined;
  const up = redis.status === 'ready' || (redis.status === 'connect' && stream !== undefined && stream.writable);
  if (!up) return 'down';
  if (isResp2Subscriber(redis)) return 'resp2-subscriber';
  if (isTransactionOpen(redis)) return 'transaction';
  if (hasBlockingCommandInFlight(redis)) return 'blocked';
  return 'open';
}

/** How a new token is applied to `redis` now. */
export function reauthMethod(redis: Redis): ReauthMethod {
  return METHODS[connectionState(redis)];
}
