/**
 * One rule for every event the library delivers to application code (provider events, and the pub/sub messages a
 * subscriber handover delivers itself): each listener is called on its own; an exception it throws neither stops
 * the library's work nor keeps the event from the other listeners, and is rethrown on the next tick, where it reaches
 * `process.on('uncaughtException')` as an exception of the listener. That is what Node.js's diagnostics_channel does
 * with a subscriber's exception, and what an exception in an ioredis event listener amounts to: the application's
 * bug stays visible, and never becomes an unhandled rejection inside the library's promises.
 */

/** Rethrows `error` on the next tick, outside the library's call stack. */
export function rethrowListenerError(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}

/** Calls `listener` with `args`; an exception it throws is rethrown on the next tick. */
export function callListener(listener: (...args: never[]) => unknown, self: unknown, args: unknown[]): void {
  try {
    (listener as (...a: unknown[]) => unknown).apply(self, args);
  } catch (error) {
    rethrowListenerError(error);
  }
}

/**
 * `emitter.emit(event, ...args)` under the rule above: every listener runs, in order, each on its own. Returns
 * whether the event had listeners, as `emit` does. `once` listeners are removed as `emit` removes them.
 */
export function emitIsolated(
  emitter: { rawListeners(event: string | symbol): unknown[] },
  event: string | symbol,
  args: unknown[],
): boolean {
  const listeners = emitter.rawListeners(event);
  for (const listener of listeners) callListener(listener as (...a: never[]) => unknown, emitter, args);
  return listeners.length > 0;
}
