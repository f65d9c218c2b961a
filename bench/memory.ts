/**
 * Memory: V8 heap per connection of a client made by createEntraRedis against a plain `new Redis()`, and heap kept per
 * token rotation by 1,000 connections sharing one provider. Heap figures are taken after full garbage collections.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { Redis } from 'ioredis';
import { createEntraRedis } from '../lib/index.js';
import type { BenchWorld } from './support/bench-world.js';
import { closeClients, ErrorTally, openClients } from './support/clients.js';
import { kib, num, range, table } from './support/markdown.js';
import { RotationTracker } from './support/rotations.js';
import { robustSlope, slope, summarize, type Summary } from './support/stats.js';

const CONNECTIONS = 1_000;
const REPEATS = 3;
const ROTATIONS = 6;
/** The emulator's `exp` is whole seconds, so a token lives between this and one second less. */
const ROTATION_TOKEN_LIFETIME_S = 4;

export interface MemoryResult {
  connections: number;
  repeats: number;
  /** Heap bytes per connection, one value per repeat. */
  plain: Summary;
  entra: Summary;
  /** entra - plain per repeat, bytes per connection. */
  overhead: Summary;
  rotations: number;
  /** Theil–Sen slope of the heap over rotations, bytes per rotation (all connections together). */
  perRotation: number;
  /** Least-squares slope, for comparison: one outlier moves it. */
  perRotationLeastSquares: number;
  /** Heap change between successive rotations, bytes. */
  steps: Summary;
  /** Time between rotations, ms. */
  periodMs: Summary;
  gcExposed: boolean;
  clientErrors: number;
  clientErrorMessages: string;
}

/** `gc()` from --expose-gc, or one obtained at run time when the flag was not given. */
function garbageCollector(): { gc: () => void; exposed: boolean } {
  const exposed = typeof globalThis.gc === 'function';
  if (exposed) return { gc: globalThis.gc as () => void, exposed };
  setFlagsFromString('--expose-gc');
  return { gc: runInNewContext('gc') as () => void, exposed };
}

async function heapAfterGc(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(10);
  }
  return process.memoryUsage().heapUsed;
}

/**
 * Heap bytes per client of `CONNECTIONS` ready clients. A function of its own on purpose: a suspended async function
 * keeps values that live across an `await` in its frame until they are overwritten, so clients opened in a caller's
 * loop would stay reachable into the next iteration and be counted again.
 */
async function heapPerClient(gc: () => void, make: () => Redis): Promise<number> {
  const before = await heapAfterGc(gc);
  const clients = await openClients(CONNECTIONS, make);
  const after = await heapAfterGc(gc);
  await closeClients(clients);
  return (after - before) / CONNECTIONS;
}

export async function runMemory(bench: BenchWorld, log: (line: string) => void): Promise<MemoryResult> {
  const { gc, exposed } = garbageCollector();
  const errors = new ErrorTally();
  const lifetime = bench.entra.tokenLifetimeSeconds;
  try {
    // Heap per connection: no rotation while measuring.
    bench.entra.tokenLifetimeSeconds = 3_600;
    const identity = await bench.directIdentity();
    const { provider } = bench.provider(identity);
    const token = await provider.getToken();
    const makers = {
      plain: () => errors.watch(new Redis({ ...bench.direct, username: token.username, password: token.password })),
      entra: () => errors.watch(createEntraRedis({ ...bench.direct, credentialsProvider: provider })),
    };
    // Warm-up, not counted: the first clients of a kind also pay for compiled code and caches.
    for (const make of Object.values(makers)) await heapPerClient(gc, make);
    const perConnection = { plain: [] as number[], entra: [] as number[] };
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      const order = repeat % 2 === 0 ? (['plain', 'entra'] as const) : (['entra', 'plain'] as const);
      for (const kind of order) perConnection[kind].push(await heapPerClient(gc, makers[kind]));
    }
    provider.dispose();
    const overhead = perConnection.entra.map((value, i) => value - (perConnection.plain[i] as number));
    log(
      `  per connection: plain ${kib(summarize(perConnection.plain).median)}, entra ${kib(summarize(perConnection.entra).median)}`,
    );

    // Heap per rotation: 1,000 connections, one provider, a rotation every 2.1 to 2.8 s.
    bench.entra.tokenLifetimeSeconds = ROTATION_TOKEN_LIFETIME_S;
    const rotating = await bench.directIdentity();
    const { provider: rotatingProvider, credential } = bench.provider(rotating, { refreshJitter: 0 });
    const clients = await openClients(CONNECTIONS, () =>
      errors.watch(createEntraRedis({ ...bench.direct, credentialsProvider: rotatingProvider })),
    );
    const tracker = new RotationTracker(rotatingProvider, credential, () => CONNECTIONS);
    const heaps: number[] = [];
    try {
      await tracker.nextCompleted(); // warm-up
      for (let i = 0; i < ROTATIONS; i++) {
        await tracker.nextCompleted();
        heaps.push(await heapAfterGc(gc));
      }
    } finally {
      tracker.stop();
      await closeClients(clients);
      rotatingProvider.dispose();
    }
    const starts = tracker.rotations.map((rotation) => rotation.tokenAt);
    const periods = starts.slice(1).map((start, i) => start - (starts[i] as number));
    const indexes = heaps.map((_, i) => i);
    const steps = heaps.slice(1).map((heap, i) => heap - (heaps[i] as number));
    const result: MemoryResult = {
      connections: CONNECTIONS,
      repeats: REPEATS,
      plain: summarize(perConnection.plain),
      entra: summarize(perConnection.entra),
      overhead: summarize(overhead),
      rotations: ROTATIONS,
      perRotation: robustSlope(indexes, heaps),
      perRotationLeastSquares: slope(indexes, heaps),
      steps: summarize(steps),
      periodMs: summarize(periods),
      gcExposed: exposed,
      clientErrors: errors.count,
      clientErrorMessages: errors.top(),
    };
    log(`  per rotation: ${num(result.perRotation)} bytes (Theil–Sen slope over ${ROTATIONS} rotations)`);
    return result;
  } finally {
    bench.entra.tokenLifetimeSeconds = lifetime;
  }
}

export function renderMemory(result: MemoryResult): string {
  const bytes = (s: Summary) =>
    range({ ...s, median: s.median / 1024, min: s.min / 1024, max: s.max / 1024 }, 1, ' KiB');
  return [
    '## Memory',
    '',
    `V8 heap used (\`process.memoryUsage().heapUsed\`) after full garbage collections${result.gcExposed ? ' (`--expose-gc`)' : ''}. ` +
      `Per connection: heap before and after opening ${num(result.connections)} ready clients, divided by ` +
      `${num(result.connections)}; ${result.repeats} repeats, plain and entra alternating; entra clients share one ` +
      'provider. Cells: median (min–max).',
    '',
    table(
      ['', 'heap per connection'],
      [
        ['`new Redis()`', bytes(result.plain)],
        ['`createEntraRedis()`', bytes(result.entra)],
        ['added by the library', bytes(result.overhead)],
      ],
    ),
    '',
    `Per rotation: ${num(result.connections)} connections sharing one provider, straight to redis-server, a rotation ` +
      `every ${range(result.periodMs)} ms; heap ` +
      `after each of ${result.rotations} rotations (once every connection re-authenticated). Heap kept per rotation ` +
      `(Theil–Sen slope, the median of the slopes between every pair of samples): **${num(result.perRotation)} bytes** ` +
      `for all ${num(result.connections)} connections together (${num(result.perRotation / result.connections, 1)} bytes ` +
      `per connection); least-squares slope ${num(result.perRotationLeastSquares)} bytes; change from one rotation to the ` +
      `next: median ${num(result.steps.median)} bytes (${num(result.steps.min)} to ${num(result.steps.max)}). ` +
      'A slope that is small against the spread of the steps means no growth could be measured.',
    '',
    `Client errors: ${result.clientErrors}${result.clientErrors > 0 ? ` (${result.clientErrorMessages})` : ''}.`,
  ].join('\n');
}

export function memoryProblems(result: MemoryResult): string[] {
  return result.clientErrors > 0 ? [`${result.clientErrors} client error events (${result.clientErrorMessages})`] : [];
}
