/** Opening and closing many ioredis clients, and small waiting helpers. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';

export { sleep };
/** Shared with the scenarios in harness/. */
export { waitFor } from '../../harness/wait.js';

/** Counts `error` events of the clients it watches (an unhandled `error` event would crash the run). */
export class ErrorTally {
  count = 0;
  readonly messages = new Map<string, number>();

  watch<T extends { on(event: 'error', listener: (error: Error) => void): unknown }>(client: T): T {
    client.on('error', (error: unknown) => {
      this.count++;
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 120);
      this.messages.set(message, (this.messages.get(message) ?? 0) + 1);
    });
    return client;
  }

  /** The most frequent messages, for the report. */
  top(limit = 3): string {
    return [...this.messages.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([message, count]) => `${count}× ${message}`)
      .join('; ');
  }
}

/** Resolves when `client` is ready; rejects after `timeoutMs`. */
export function whenReady(client: Redis, timeoutMs = 30_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`client not ready within ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/**
 * Opens `count` clients made by `make`, `batch` at a time (a burst of thousands of SYNs overflows the listen backlog
 * and costs a 1 s SYN retry), and waits until all are ready.
 */
export async function openClients(count: number, make: (index: number) => Redis, batch = 100): Promise<Redis[]> {
  const clients: Redis[] = [];
  try {
    for (let start = 0; start < count; start += batch) {
      const made: Redis[] = [];
      for (let i = start; i < Math.min(count, start + batch); i++) made.push(make(i));
      clients.push(...made);
      await Promise.all(made.map((client) => whenReady(client)));
    }
  } catch (error) {
    await closeClients(clients);
    throw error;
  }
  return clients;
}

/** Disconnects every client and waits until each has ended. */
export async function closeClients(clients: readonly Redis[]): Promise<void> {
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          if (client.status === 'end') {
            resolve();
            return;
          }
          const timer = setTimeout(resolve, 5_000);
          client.once('end', () => {
            clearTimeout(timer);
            resolve();
          });
          client.disconnect();
        }),
    ),
  );
}
