/**
 * Workarounds for ioredis bugs, each with its upstream reference and a test that tells when it is no longer needed
 * (spec/binding/ioredis-workarounds.test.ts reproduces each bug on a plain ioredis client: when a release fixes it,
 * that test fails, naming the workaround to remove).
 */
import type { Redis } from 'ioredis';
import { CONNECTION_CLOSED_ERROR_MSG, internals, type RedisInternals, type SendCommand } from './ioredis-internals.js';

/**
 * ioredis 5 and 6: `disconnect()` while a reconnect is scheduled (status `reconnecting`) clears the timer, but the
 * socket is already closed, so no close handler runs: the client stays `reconnecting` forever, never emits `end`, and
 * whatever waits for `end` (the library detaches from the provider then) waits forever. The library reconnects
 * clients on purpose (forceReconnect), which opens that window more often: such a client is ended the way ioredis ends
 * a manually closed one. Upstream: the close handler is not run for a socket already closed when `disconnect()` is
 * called in `reconnecting` (ioredis `Redis#disconnect`, 5.x and 6.x).
 */
export function endIfStrandedInReconnect(redis: Redis): void {
  const client = internals(redis);
  if (redis.status !== 'reconnecting' || client.manuallyClosing !== true || client.reconnectTimeout) return;
  client.manuallyClosing = false;
  client.setStatus('end');
  client.flushQueue(new Error(CONNECTION_CLOSED_ERROR_MSG));
}

/** Commands ioredis's ready handler sends to restore a reconnected client's database and subscriptions. */
const STATE_RESTORE_COMMANDS = new Set(['select', 'subscribe', 'psubscribe', 'ssubscribe']);

/**
 * ioredis 5 and 6 (up to 6.0.0) send the commands that restore a reconnected client's database and subscriptions
 * without handling their promises: when the connection closes again before they are answered (a `disconnect()` right
 * after a reconnect, a server going away), each becomes an unhandled rejection, which ends a Node.js process by
 * default, whatever `error` listener the application has. The library reconnects clients on purpose (a subscriber's
 * handover, a deadline), so it handles them: a failure is reported as an `error` event the way ioredis reports its own
 * (nothing for a client closed on purpose), and the next ready restores the state again. Only the ready handler's run
 * is watched (from `setStatus('ready')` to the next tick, before the application's 'ready' listeners), through a
 * `sendCommand` installed for that run alone: nothing per command, and one small wrapper per client. Upstream: fixed
 * by https://github.com/redis/ioredis/pull/2187, in no release yet (ioredis 5.11.1 and 6.0.0 have the bug).
 */
export function handleStateRestoreRejections(redis: Redis): void {
  const client = internals(redis);
  if (client.setStatus !== setStatusWatchingRestore) client.setStatus = setStatusWatchingRestore;
}

/** One function for every client (a closure per client would cost memory on each): ioredis's own is the prototype's. */
function setStatusWatchingRestore(
  this: RedisInternals & { sendCommand: SendCommand },
  status: string,
  ...rest: unknown[]
): void {
  if (status === 'ready') watchStateRestore(this);
  (Object.getPrototypeOf(this) as RedisInternals).setStatus.call(this, status, ...rest);
}

function watchStateRestore(client: RedisInternals & { sendCommand: SendCommand }): void {
  const hadOwn = Object.prototype.hasOwnProperty.call(client, 'sendCommand');
  const previous = client.sendCommand;
  const report = (error: unknown) => client.silentEmit('error', error);
  const watching: SendCommand = function sendWatchingRestore(this: unknown, command, ...rest) {
    if (
      STATE_RESTORE_COMMANDS.has(String((command as typeof command | undefined)?.name)) &&
      command.promise instanceof Promise
    )
      command.promise.catch(report);
    return previous.call(this, command, ...rest);
  };
  client.sendCommand = watching;
  // Scheduled before ioredis schedules the 'ready' event: the application's listeners run outside the window.
  process.nextTick(() => {
    if (client.sendCommand !== watching) return; // replaced meanwhile (MONITOR mode wraps it): leave the chain as is
    if (hadOwn) client.sendCommand = previous;
    else delete (client as Partial<typeof client>).sendCommand;
  });
}
