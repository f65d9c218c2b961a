/** One measured phase: drives its operations and checks heap, listener counts, subscriber counts and queues at checkpoints. */
import type { Redis } from 'ioredis';
import type { EntraCredentialsProvider } from '../../lib/index.js';
import { slope } from '../slope.js';
import { waitFor } from '../wait.js';
import { clientListeners, diffCounts, listenerCounts, queued, summarizeNames } from './listeners.js';
import type { PhaseReport } from './report.js';
import { heapAfterGc, whenEnded } from './tokens-and-heap.js';

/** A client shape and how to make a fresh one of it. */
export interface Shape {
  name: string;
  make: () => Promise<Redis>;
}

export interface PhaseInput {
  name: string;
  /** Compare every client's listener counts at the end with its own at the start (default true). */
  compareWithStart?: boolean;
  operations: number;
  connections: number;
  provider: EntraCredentialsProvider;
  clients: Array<{ shape: Shape; client: Redis }>;
  shapes: Shape[];
  gc: () => void;
  log: (line: string) => void;
  /** Runs the phase; calls onCheckpoint(operationsSoFar) now and then; returns extra figures. */
  drive(count: number, onCheckpoint: (done: number) => Promise<void>): Promise<Record<string, number | string>>;
}

type Used = PhaseInput['clients'];

/** Listener differences of each client against its own counts at the start of the phase. */
function diffsFromStart(clients: Used, startListeners: ReadonlyArray<ReturnType<typeof clientListeners>>): string[] {
  const listenerDiffs: string[] = [];
  for (const [index, { shape, client }] of clients.entries()) {
    const now = clientListeners(client);
    const then = startListeners[index] as ReturnType<typeof clientListeners>;
    listenerDiffs.push(...diffCounts(`${shape.name} #${index} client`, then.client, now.client));
    listenerDiffs.push(...diffCounts(`${shape.name} #${index} socket`, then.stream, now.stream));
  }
  return listenerDiffs;
}

/** Listener counts and queued commands of each client against a fresh client of its shape, made now. */
async function diffsFromFresh(
  clients: Used,
  shapes: readonly Shape[],
): Promise<{ listenerDiffs: string[]; queueGrowth: string[] }> {
  const listenerDiffs: string[] = [];
  const queueGrowth: string[] = [];
  for (const shape of shapes) {
    const fresh = await shape.make();
    const freshCounts = clientListeners(fresh);
    const freshQueued = queued(fresh);
    for (const [index, used] of clients.entries()) {
      if (used.shape !== shape) continue;
      // Rotations go on: a client caught in a reconnect holds its ready check for a moment. Compared once ready.
      await waitFor(() => used.client.status === 'ready', `${shape.name} #${index} ready`, 30_000, 5);
      const now = queued(used.client);
      if (now.length > freshQueued.length)
        queueGrowth.push(
          `${shape.name} #${index}: ${now.length} commands queued (${summarizeNames(now)}), a fresh one ${freshQueued.length}`,
        );
    }
    for (const [index, used] of clients.entries()) {
      if (used.shape !== shape) continue;
      const now = clientListeners(used.client);
      listenerDiffs.push(
        ...diffCounts(`${shape.name} #${index} client vs a fresh one`, freshCounts.client, now.client),
      );
      listenerDiffs.push(
        ...diffCounts(`${shape.name} #${index} socket vs a fresh one`, freshCounts.stream, now.stream),
      );
    }
    fresh.disconnect();
    await whenEnded(fresh);
  }
  return { listenerDiffs, queueGrowth };
}

/** Runs one phase with checkpoints of heap, listener counts and subscriber counts. */
export async function measurePhase(input: PhaseInput): Promise<PhaseReport> {
  const { provider, clients, gc } = input;
  const started = Date.now();
  const startListeners = clients.map(({ client }) => clientListeners(client));
  const providerListeners = listenerCounts(provider);
  const subscriberMismatches: string[] = [];
  const checkSubscribers = (label: string) => {
    const alive = clients.filter(({ client }) => client.status !== 'end').length;
    if (provider.subscriberCount !== alive)
      subscriberMismatches.push(`${label}: subscriberCount ${provider.subscriberCount}, connections alive ${alive}`);
  };
  checkSubscribers('start');
  const xs: number[] = [0];
  const heaps: number[] = [await heapAfterGc(gc)];
  const notes = await input.drive(input.operations, async (done) => {
    checkSubscribers(`after ${done}`);
    xs.push(done);
    heaps.push(await heapAfterGc(gc));
    input.log(
      `  ${input.name}: ${done} (heap ${((heaps.at(-1) as number) / 1048576).toFixed(1)} MiB, subscribers ${provider.subscriberCount})`,
    );
  });
  // Let the last rotation or reconnect settle before comparing listeners.
  await waitFor(() => clients.every(({ client }) => client.status === 'ready'), 'every client ready', 30_000, 5);
  const listenerDiffs = input.compareWithStart === false ? [] : diffsFromStart(clients, startListeners);
  const fresh = await diffsFromFresh(clients, input.shapes);
  listenerDiffs.push(...fresh.listenerDiffs);
  listenerDiffs.push(...diffCounts('provider', providerListeners, listenerCounts(provider)));
  checkSubscribers('end');
  const seconds = (Date.now() - started) / 1000;
  const report: PhaseReport = {
    name: input.name,
    operations: input.operations,
    connections: input.connections,
    seconds,
    heapPerOperation: slope(xs, heaps),
    heapStart: heaps[0] as number,
    heapEnd: heaps.at(-1) as number,
    listenerDiffs: [...new Set(listenerDiffs)],
    subscriberMismatches,
    queueGrowth: fresh.queueGrowth,
    notes,
  };
  input.log(
    `  ${input.name}: done in ${seconds.toFixed(0)} s, heap ${report.heapPerOperation.toFixed(0)} bytes per operation, ` +
      `${report.listenerDiffs.length} listener differences, ${subscriberMismatches.length} subscriber mismatches, ${report.queueGrowth.length} grown queues`,
  );
  return report;
}
