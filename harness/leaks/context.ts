/** What every phase of a leak run shares: the servers, the providers to dispose, error tallies, gc and the log. */
import type { Redis } from 'ioredis';
import type { EntraCredentialsProvider } from '../../lib/index.js';
import type { World } from '../world.js';
import { waitFor } from '../wait.js';

export interface LeakContext {
  world: World;
  /** Every provider made, disposed at the end of the run. */
  providers: EntraCredentialsProvider[];
  clients: WatchedClients;
  gc: () => void;
  log: (line: string) => void;
}

/**
 * Counts the `error` events of the clients it watches by message, and waits for clients to be ready. Its methods are
 * bound (arrow functions): the phases pass them around as plain functions.
 */
export class WatchedClients {
  readonly errors: Record<string, number> = {};

  readonly watch = (client: Redis): Redis => {
    client.on('error', (error: unknown) => {
      const key = (error instanceof Error ? error.message : String(error)).slice(0, 100);
      this.errors[key] = (this.errors[key] ?? 0) + 1;
    });
    return client;
  };

  /** Resolves with `client` once it is ready; rejects when it ends first. */
  readonly ready = async (client: Redis): Promise<Redis> => {
    if (client.status !== 'ready')
      await waitFor(() => client.status === 'ready' || client.status === 'end', 'a client ready', 30_000, 1);
    if (client.status !== 'ready') throw new Error('client ended before it was ready');
    return client;
  };
}
