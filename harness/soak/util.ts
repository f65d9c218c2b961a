/** Small helpers of the soak: error descriptions, tallies, retries of a server coming back, time windows. */
import { setTimeout as sleep } from 'node:timers/promises';
import { GRACE_MS } from './settings.js';

export const describeError = (error: unknown): string =>
  String(error instanceof Error ? `${error.name}: ${error.message}` : error).slice(0, 160);

export function tally(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** The most frequent keys of a tally, as "count× key". */
export function top(map: Map<string, number>, limit = 8): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([message, count]) => `${count}× ${message}`);
}

/**
 * Runs `action` until it succeeds, for up to a minute. A server that stopped listening (token service down, redis-server
 * killed) comes back on the same port, which a connection of this busy machine may hold meanwhile as its local port
 * (EADDRINUSE): it is free again once that connection closes.
 */
export async function persist(action: () => Promise<void>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      await action();
      if (attempt > 1) process.stderr.write(`soak: ${what} after ${attempt} attempts\n`);
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`soak: gave up waiting for ${what}: ${describeError(error)}`, { cause: error });
      await sleep(500);
    }
  }
}

/** Sleeps `ms` unless `signal` aborts first (then resolves early, without throwing). */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}

/** A span of time (epoch ms) in which failures are expected, and why. */
export interface Window {
  start: number;
  end: number;
  why: string;
}

/** Whether [start, end] meets one of `windows`, each extended by `grace` ms at its end. */
export const overlaps = (windows: readonly Window[], start: number, end: number, grace = GRACE_MS): boolean =>
  windows.some((w) => start <= w.end + grace && end >= w.start);
