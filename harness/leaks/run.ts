/**
 * Leaks: what a long-lived process accumulates per token rotation, per reconnect and per client created and closed.
 *
 * Checked after each phase: listener counts of every client (every event name) against a fresh client of the same
 * shape, listener counts of the provider and of `process`, the provider's `subscriberCount` against the clients that
 * are alive, and the heap after full garbage collections (bytes per rotation, reconnect and cycle: least-squares
 * slopes over checkpoints). After everything is closed: no timer of the library is left (every setTimeout/setInterval
 * is tracked with the stack that created it, unref'd ones included, which `process.getActiveResourcesInfo()` cannot
 * see), and `process.getActiveResourcesInfo()` holds no more timers than before the first client.
 *
 * How thousands of rotations run in minutes through the real library: the provider's credential mints tokens with the
 * Entra emulator's key (`entra.mint()`), whose `exp` is an hour away but whose `expiresOnTimestamp` says they live
 * `tokenMs` (default 100 ms). The library takes the earlier of the two, so its real TokenManager refreshes every
 * ~50 ms (half the life: `expirationRefreshRatio` 0.5, no jitter) and every real ClientBinding sends AUTH on its live
 * connection. These connections go straight to redis-server as an ACL user that takes any password (the AMR emulator
 * checks every AUTH against the key and creates its backend user for every good AUTH: a million of those would
 * measure the emulator). A connection whose AUTH is not answered by the library's deadline (20 % of the life before
 * expiry, 20 ms here) is reconnected instead, as in production: those are counted. Reconnect rounds and create/quit
 * cycles go through the AMR emulator (`amr.closeAllConnections()`), with hour-long tokens so that only the measured
 * event happens.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { World } from '../world.js';
import { connectionPhases } from './connections.js';
import { WatchedClients, type LeakContext } from './context.js';
import { diffCounts, listenerCounts } from './listeners.js';
import type { LeakOptions, LeakReport, PhaseReport } from './report.js';
import { rotationPhase } from './rotations.js';
import { activeTimers, LIB_DIR, TimerTracker } from './timers.js';
import { garbageCollector } from './tokens-and-heap.js';

/** Runs the phases; resolves with them and the `process` listeners they added and did not remove. */
async function runPhases(
  context: LeakContext,
  options: Required<Omit<LeakOptions, 'log'>>,
): Promise<{ phases: PhaseReport[]; processListenerDiffs: string[] }> {
  // after the world: redis-server.ts installs its own exit and signal handlers once per process
  const processListenersBefore = listenerCounts(process);
  const phases: PhaseReport[] = [];
  const rotation = { tokenMs: options.tokenMs };
  phases.push(
    await rotationPhase(context, {
      ...rotation,
      name: 'rotations',
      rotations: options.rotations,
      connections: options.connections,
      blocked: 0,
    }),
  );
  if (options.blockedRotations > 0) {
    phases.push(
      await rotationPhase(context, {
        ...rotation,
        name: 'rotations, one connection blocked in BLPOP 0',
        rotations: options.blockedRotations,
        connections: 10,
        blocked: 1,
      }),
    );
  }
  phases.push(...(await connectionPhases(context, options)));
  return { phases, processListenerDiffs: diffCounts('process', processListenersBefore, listenerCounts(process)) };
}

/** Library timers still alive (waits up to 5 s for them, and for ref'd timers, to go), each as "kind frame". */
async function timersLeft(tracker: TimerTracker, activeTimersBefore: number): Promise<string[]> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && (tracker.liveFrom(LIB_DIR).length > 0 || activeTimers() > activeTimersBefore))
    await sleep(50);
  return tracker.liveFrom(LIB_DIR).map((timer) => {
    const frame =
      timer.stack
        .split('\n')
        .slice(1)
        .find((line) => line.includes(LIB_DIR)) ?? '';
    return `${timer.kind}${timer.unref ? ' (unref)' : ''} ${frame.trim()}`;
  });
}

export async function runLeaks(input: LeakOptions): Promise<LeakReport> {
  const options = { tokenMs: 100, blockedRotations: 1_000, ...input };
  const settings = {
    rotations: options.rotations,
    connections: options.connections,
    reconnects: options.reconnects,
    cycles: options.cycles,
    tokenMs: options.tokenMs,
    blockedRotations: options.blockedRotations,
  };
  const log = input.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const gc = garbageCollector();
  const tracker = new TimerTracker().install();
  let unhandledRejections = 0;
  const onRejection = () => {
    unhandledRejections++;
  };
  process.on('unhandledRejection', onRejection);
  const activeTimersBefore = activeTimers();
  const clients = new WatchedClients();
  const world = await World.start({ tokenLifetimeSeconds: 3_600 });
  const context: LeakContext = { world, providers: [], clients, gc, log };
  let outcome: Awaited<ReturnType<typeof runPhases>>;
  try {
    outcome = await runPhases(context, settings);
  } finally {
    for (const provider of context.providers) provider.dispose();
    await world.stop();
  }
  // Whatever is left once everything is closed.
  const libTimersLeft = await timersLeft(tracker, activeTimersBefore);
  const activeTimersAfter = activeTimers();
  tracker.uninstall();
  process.off('unhandledRejection', onRejection);
  return {
    options: settings,
    startedAt: new Date().toISOString(),
    node: process.version,
    ioredis: process.env.IOREDIS_MAJOR === '6' ? 'ioredis 6' : 'ioredis 5',
    phases: outcome.phases,
    libTimersLeft,
    activeTimersBefore,
    activeTimersAfter,
    timersCreated: tracker.created,
    processListenerDiffs: outcome.processListenerDiffs,
    clientErrors: clients.errors,
    unhandledRejections,
  };
}
