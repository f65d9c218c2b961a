/**
 * Waiting out a stall of the process before acting on a timer. After a stall (a loaded machine), timers run before
 * the I/O that arrived meanwhile is read, so what a timer bounds (a reply, a message) may already be in the socket
 * when it fires. Two turns of setImmediate put one poll phase of the event loop (where sockets are read) between the
 * call and `fn`, wherever in the loop the call is made.
 */

/** Calls `fn` once the I/O that has already arrived has been read. */
export function afterPendingIo(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}

/** Resolves once the I/O that has already arrived has been read. */
export function pendingIoRead(): Promise<void> {
  return new Promise((resolve) => {
    afterPendingIo(resolve);
  });
}
