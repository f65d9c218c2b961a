/** Listener counts of emitters and clients, the commands ioredis holds queued, and differences between snapshots. */
import type { Redis } from 'ioredis';

/** Listener count of every event an emitter has listeners for. */
export function listenerCounts(emitter: {
  eventNames(): (string | symbol)[];
  listenerCount(event: string | symbol): number;
}): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const event of emitter.eventNames()) counts[String(event)] = emitter.listenerCount(event);
  return counts;
}

/** Names of the commands a client holds in ioredis's command queue (sent, unanswered) and offline queue. */
export function queued(client: Redis): string[] {
  const internals = client as unknown as Record<
    'commandQueue' | 'offlineQueue',
    { toArray?(): { command?: { name?: string } }[] } | undefined
  >;
  return [internals.commandQueue, internals.offlineQueue]
    .flatMap((queue) => queue?.toArray?.() ?? [])
    .map((item) => item.command?.name ?? '?');
}

export function summarizeNames(names: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].map(([name, count]) => `${count}× ${name}`).join(', ');
}

/** Listener counts of a client and of its socket. */
export function clientListeners(client: Redis): { client: Record<string, number>; stream: Record<string, number> } {
  const stream = (client as unknown as { stream?: Parameters<typeof listenerCounts>[0] }).stream;
  return { client: listenerCounts(client), stream: stream ? listenerCounts(stream) : {} };
}

/** Differences between two listener-count snapshots, as readable lines ([] when equal). */
export function diffCounts(what: string, expected: Record<string, number>, actual: Record<string, number>): string[] {
  const lines: string[] = [];
  for (const event of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    if ((expected[event] ?? 0) !== (actual[event] ?? 0))
      lines.push(`${what} '${event}': ${expected[event] ?? 0} -> ${actual[event] ?? 0}`);
  }
  return lines;
}
