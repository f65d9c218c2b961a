/** What a before hook starts and an after hook stops: a server, an emulator. */
export interface Stoppable {
  stop(): Promise<unknown>;
}

/**
 * Stops each of `servers`, one after the other in the order given, skipping those that were never started: an after
 * hook runs even when its before hook failed part way, so a variable the before hook assigns may still be unset.
 */
export async function stopStarted(...servers: (Stoppable | undefined)[]): Promise<void> {
  for (const server of servers) await server?.stop();
}
