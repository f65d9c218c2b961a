/**
 * Leaks: what a long-lived process accumulates per token rotation, per reconnect and per client created and closed.
 *
 *   npm run bench:leaks                       10,000 rotations over 100 connections, 1,000 reconnect rounds,
 *                                             1,000 create/quit cycles; writes docs/leaks.md
 *   npm run bench:leaks -- --rotations 500 --reconnects 200 --cycles 200 --no-write
 *
 * Checked after each phase: listener counts of every client (every event name) against a fresh client of the same
 * shape, listener counts of the provider and of `process`, the provider's `subscriberCount` against the clients that
 * are alive, and the heap after full garbage collections (bytes per rotation, reconnect and cycle: least-squares
 * slopes over checkpoints). After everything is closed: no timer of the library is left (every setTimeout/setInterval
 * is tracked with the stack that created it, unref'd ones included, which `process.getActiveResourcesInfo()` cannot
 * see), and `process.getActiveResourcesInfo()` holds no more timers than before the first client.
 *
 * How 10,000 rotations run in minutes through the real library: the provider's credential mints tokens with the
 * Entra emulator's key (`entra.mint()`), whose `exp` is an hour away but whose `expiresOnTimestamp` says they live
 * `--token-ms` (default 100 ms). The library takes the earlier of the two, so its real TokenManager refreshes every
 * ~50 ms (half the life: `expirationRefreshRatio` 0.5, no jitter) and every real ClientBinding sends AUTH on its live
 * connection. These connections go straight to redis-server as an ACL user that takes any password (the AMR emulator
 * checks every AUTH against the key and creates its backend user for every good AUTH: a million of those would
 * measure the emulator). A connection whose AUTH is not answered by the library's deadline (20 % of the life before
 * expiry, 20 ms here) is reconnected instead, as in production: those are counted. Reconnect rounds and create/quit
 * cycles go through the AMR emulator (`amr.closeAllConnections()`), with hour-long tokens so that only the measured
 * event happens.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import type { Redis } from 'ioredis';
import { createCredentialsProvider, createEntraRedis, type EntraCredentialsProvider } from '../lib/index.js';
import type { EntraEmulator } from '../lib/testing/entra-emulator.js';
import { World } from '../spec/support/world.js';
import { waitFor } from './support/clients.js';
import { slope } from './support/stats.js';

export interface LeakOptions {
  rotations: number;
  /** Connections during the rotations. */
  connections: number;
  /** Rounds of `amr.closeAllConnections()`. */
  reconnects: number;
  /** createEntraRedis → ready → duplicate → ready → quit both. */
  cycles: number;
  /** Rotations over 10 connections of which one is blocked in BLPOP 0 (0: skip). Default 1,000. */
  blockedRotations?: number;
  /** Lifetime the credential reports for rotation tokens, ms. */
  tokenMs?: number;
  log?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------------------------------
// Timers.

interface TrackedTimer { stack: string; unref: boolean; kind: 'timeout' | 'interval' }

/**
 * Tracks every setTimeout/setInterval made through the globals (the library's and ioredis's) from install to
 * uninstall: created, cleared, fired. Unlike `process.getActiveResourcesInfo()` it sees unref'd timers too.
 */
export class TimerTracker {
  readonly live = new Map<object, TrackedTimer>();
  created = 0;
  readonly #originals = {
    setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout,
    setInterval: globalThis.setInterval, clearInterval: globalThis.clearInterval,
  };

  install(): this {
    const { live } = this;
    const o = this.#originals;
    const track = (kind: TrackedTimer['kind']) => (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      this.created++;
      const holder = {} as { stack: string };
      Error.captureStackTrace(holder);
      const run = (...runArgs: unknown[]) => {
        if (kind === 'timeout') live.delete(timer);
        callback(...runArgs);
      };
      const timer: ReturnType<typeof setTimeout> = (kind === 'timeout' ? o.setTimeout : o.setInterval)(run, ms, ...args);
      const entry: TrackedTimer = { get stack() { return holder.stack; }, unref: false, kind };
      live.set(timer, entry);
      const unref = timer.unref.bind(timer);
      const ref = timer.ref.bind(timer);
      timer.unref = () => { entry.unref = true; return unref(); };
      timer.ref = () => { entry.unref = false; return ref(); };
      return timer;
    };
    const clear = (original: (t?: ReturnType<typeof setTimeout>) => void) => (timer?: ReturnType<typeof setTimeout>) => {
      if (timer !== undefined && timer !== null) live.delete(timer);
      original(timer);
    };
    const custom = promisify.custom;
    globalThis.setTimeout = Object.assign(track('timeout'), { [custom]: (o.setTimeout as unknown as Record<symbol, unknown>)[custom] }) as unknown as typeof setTimeout;
    globalThis.setInterval = track('interval') as unknown as typeof setInterval;
    globalThis.clearTimeout = clear(o.clearTimeout) as typeof clearTimeout;
    globalThis.clearInterval = clear(o.clearInterval) as typeof clearInterval;
    return this;
  }

  uninstall(): void {
    Object.assign(globalThis, this.#originals);
  }

  /** Live timers whose creation stack goes through `dir` (a source folder), with their stacks. */
  liveFrom(dir: string): TrackedTimer[] {
    return [...this.live.values()].filter((timer) => timer.stack.split('\n').slice(1).some((frame) => frame.includes(dir)));
  }
}

/** Timers `process.getActiveResourcesInfo()` reports (ref'd ones only). */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((type) => type === 'Timeout' || type === 'Immediate').length;
}

export const LIB_DIR = fileURLToPath(new URL('../lib/', import.meta.url));

// ---------------------------------------------------------------------------------------------------------------------
// Listeners.

/** Listener count of every event an emitter has listeners for. */
export function listenerCounts(emitter: { eventNames(): (string | symbol)[]; listenerCount(event: string | symbol): number }): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const event of emitter.eventNames()) counts[String(event)] = emitter.listenerCount(event);
  return counts;
}

/** Names of the commands a client holds in ioredis's command queue (sent, unanswered) and offline queue. */
export function queued(client: Redis): string[] {
  const internals = client as unknown as Record<'commandQueue' | 'offlineQueue', { toArray?(): Array<{ command?: { name?: string } }> } | undefined>;
  return [internals.commandQueue, internals.offlineQueue].flatMap((queue) => queue?.toArray?.() ?? [])
    .map((item) => String(item.command?.name ?? '?'));
}

function summarizeNames(names: readonly string[]): string {
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
    if ((expected[event] ?? 0) !== (actual[event] ?? 0)) lines.push(`${what} '${event}': ${expected[event] ?? 0} -> ${actual[event] ?? 0}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------------------------
// Tokens and heap.

/** Mints tokens with the Entra emulator's key: `exp` an hour away, `expiresOnTimestamp` as the caller says. */
export class MintingCredential implements TokenCredential {
  issued = 0;
  constructor(readonly entra: EntraEmulator, readonly oid: string, public lifetimeMs: number) {}

  async getToken(): Promise<AccessToken> {
    const now = Date.now();
    this.issued++;
    const token = this.entra.mint({ oid: this.oid, exp: Math.floor(now / 1000) + 3_600 });
    return { token, expiresOnTimestamp: now + this.lifetimeMs };
  }
}

/** `gc()` from --expose-gc, or one obtained at run time when the flag was not given. */
export function garbageCollector(): () => void {
  const given = globalThis.gc;
  if (typeof given === 'function') return () => { given(); };
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function heapAfterGc(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(5);
  }
  return process.memoryUsage().heapUsed;
}

function whenEnded(client: Redis): Promise<void> {
  if (client.status === 'end') return Promise.resolve();
  return new Promise((resolve) => client.once('end', () => resolve()));
}

// ---------------------------------------------------------------------------------------------------------------------
// The run.

export interface PhaseReport {
  name: string;
  /** Operations done (rotations, reconnect rounds, cycles). */
  operations: number;
  /** Connections involved. */
  connections: number;
  seconds: number;
  /** Heap slope over checkpoints, bytes per operation. */
  heapPerOperation: number;
  heapStart: number;
  heapEnd: number;
  /** Listener counts that differ from a fresh client of the same shape, or from the start. Must be empty. */
  listenerDiffs: string[];
  /** provider.subscriberCount vs connections alive, at each checkpoint: mismatches. Must be empty. */
  subscriberMismatches: string[];
  /** Clients holding more commands in ioredis's queues (command + offline) than a fresh client of the same shape. */
  queueGrowth: string[];
  /** Extra figures of the phase. */
  notes: Record<string, number | string>;
}

export interface LeakReport {
  options: Required<Omit<LeakOptions, 'log'>>;
  startedAt: string;
  node: string;
  ioredis: string;
  phases: PhaseReport[];
  /** Library timers alive after everything was closed, with a frame of their creation stack. Must be empty. */
  libTimersLeft: string[];
  /** Ref'd timers (getActiveResourcesInfo) before the first client and after everything closed. */
  activeTimersBefore: number;
  activeTimersAfter: number;
  timersCreated: number;
  processListenerDiffs: string[];
  clientErrors: Record<string, number>;
  unhandledRejections: number;
}

/** A client shape and how to make a fresh one of it. */
interface Shape { name: string; make: () => Promise<Redis> }

export async function runLeaks(input: LeakOptions): Promise<LeakReport> {
  const options = { tokenMs: 100, blockedRotations: 1_000, ...input };
  const log = input.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const gc = garbageCollector();
  const tracker = new TimerTracker().install();
  let unhandledRejections = 0;
  const onRejection = () => { unhandledRejections++; };
  process.on('unhandledRejection', onRejection);
  const activeTimersBefore = activeTimers();
  const clientErrors: Record<string, number> = {};
  const watch = (client: Redis): Redis => {
    client.on('error', (error: Error) => {
      const key = String(error?.message ?? error).slice(0, 100);
      clientErrors[key] = (clientErrors[key] ?? 0) + 1;
    });
    return client;
  };
  const ready = async (client: Redis) => {
    if (client.status !== 'ready') await waitFor(() => client.status === 'ready' || client.status === 'end', 'a client ready', 30_000, 1);
    if (client.status !== 'ready') throw new Error('client ended before it was ready');
    return client;
  };

  const world = await World.start({ tokenLifetimeSeconds: 3_600 });
  // after the world: redis-server.ts installs its own exit and signal handlers once per process
  const processListenersBefore = listenerCounts(process);
  const phases: PhaseReport[] = [];
  const providers: EntraCredentialsProvider[] = [];
  let processListenerDiffs: string[];
  try {
    // ----- rotations: straight to redis-server, as a user that takes any password
    const rotationPhase = async (name: string, rotations: number, connections: number, blocked: number) => {
      const oid = randomUUID();
      await world.redis.command('ACL', 'SETUSER', oid, 'on', 'nopass', '~*', '&*', '+@all');
      const credential = new MintingCredential(world.entra, oid, options.tokenMs);
      const provider = createCredentialsProvider({
        credential, tokenManagerOptions: { expirationRefreshRatio: 0.5, refreshJitter: 0, tokenRequestTimeout: 2_000 },
      });
      providers.push(provider);
      const direct = { host: world.redis.host, port: world.redis.port, credentialsProvider: provider };
      const shapes: Shape[] = [
        { name: 'createEntraRedis', make: async () => ready(watch(createEntraRedis(direct))) },
        { name: 'duplicate', make: async () => { const base = watch(createEntraRedis({ ...direct, lazyConnect: true })); const copy = await ready(watch(base.duplicate({ lazyConnect: false }))); base.disconnect(); return copy; } },
        { name: 'blocked in BLPOP 0', make: async () => { const c = await ready(watch(createEntraRedis(direct))); c.blpop(`leaks:never:${randomUUID()}`, 0).catch(() => {}); return c; } },
      ];
      const [plain, duplicate, blocking] = shapes as [Shape, Shape, Shape];
      const clients: Array<{ shape: Shape; client: Redis }> = [];
      const base = await ready(watch(createEntraRedis(direct)));
      clients.push({ shape: plain, client: base });
      for (let i = 1; i < connections; i++) {
        const shape = i <= blocked ? blocking : i % 5 === 0 ? duplicate : plain;
        // duplicates of a live client, made the way BullMQ makes them
        const client = shape === duplicate ? await ready(watch(base.duplicate())) : await shape.make();
        clients.push({ shape, client });
      }
      log(`leaks: ${name}: ${clients.length} connections, ${blocked} blocked (tokens live ${options.tokenMs} ms as far as the library knows)`);
      const result = await measurePhase({
        // rotations run from the first client on: the clients are compared with fresh ones, not with themselves
        compareWithStart: false,
        name, operations: rotations, connections: clients.length, provider, clients,
        shapes: blocked > 0 ? shapes : [plain, duplicate], gc, log,
        drive: async (count, onCheckpoint) => {
          let rotations = 0;
          const methods: Record<string, number> = {};
          let failures = 0;
          const onToken = () => { rotations++; };
          const onReauth = (event: { method: string }) => { methods[event.method] = (methods[event.method] ?? 0) + 1; };
          const onFailed = () => { failures++; };
          provider.on('tokenRefreshed', onToken);
          provider.on('reauthenticated', onReauth);
          provider.on('reauthenticationFailed', onFailed);
          try {
            const every = Math.max(1, Math.floor(count / 10));
            for (let next = every; next <= count; next += every) {
              await waitFor(() => rotations >= next, `${next} rotations`, 1_800_000, 5);
              await onCheckpoint(rotations);
            }
            // Quiescence for the listener comparison: the next token lives an hour, so rotations (and the reconnects
            // of connections whose AUTH missed its deadline) stop once every connection has it.
            credential.lifetimeMs = 3_600_000;
            const last = rotations;
            await waitFor(() => rotations > last, 'the hour-long token', 30_000, 5);
            const token = provider.currentToken();
            await waitFor(() => clients.every(({ client }) => client.status === 'ready'
              && (client.options as { password?: string }).password === token?.password), 'every client on the hour-long token', 30_000, 5);
            // ioredis emits 'ready' on the next tick after the status changed: let those listeners run
            await new Promise((resolve) => setImmediate(resolve));
          } finally {
            provider.off('tokenRefreshed', onToken);
            provider.off('reauthenticated', onReauth);
            provider.off('reauthenticationFailed', onFailed);
          }
          return { 'tokens received': rotations, 're-AUTH in place': methods.auth ?? 0,
            'moved by reconnect (AUTH not answered by the deadline, or blocked)': methods.reconnect ?? 0,
            'failed re-AUTH attempts (retried)': failures, 'tokens minted': credential.issued };
        },
      });
      for (const { client } of clients) client.disconnect();
      await Promise.all(clients.map(({ client }) => whenEnded(client)));
      provider.dispose();
      return result;
    };
    phases.push(await rotationPhase('rotations', options.rotations, options.connections, 0));
    if (options.blockedRotations > 0) {
      phases.push(await rotationPhase('rotations, one connection blocked in BLPOP 0', options.blockedRotations, 10, 1));
    }

    // ----- reconnect rounds and create/quit cycles: through the AMR emulator, hour-long tokens
    {
      const oid = randomUUID();
      const provider = createCredentialsProvider({ credential: new MintingCredential(world.entra, oid, 3_600_000) });
      providers.push(provider);
      const amr = { ...world.endpoint, credentialsProvider: provider };
      const subscribe = async (client: Redis) => { await client.subscribe('leaks:channel'); return client; };
      const shapes: Shape[] = [
        { name: 'createEntraRedis', make: async () => ready(watch(createEntraRedis(amr))) },
        { name: 'duplicate', make: async () => { const base = watch(createEntraRedis({ ...amr, lazyConnect: true })); const copy = await ready(watch(base.duplicate({ lazyConnect: false }))); base.disconnect(); return copy; } },
        { name: 'subscriber', make: async () => subscribe(await ready(watch(createEntraRedis(amr)))) },
        { name: 'blocked in BLPOP 0', make: async () => { const c = await ready(watch(createEntraRedis(amr))); c.blpop(`leaks:never:${randomUUID()}`, 0).catch(() => {}); return c; } },
      ];
      const clients: Array<{ shape: Shape; client: Redis }> = [];
      const base = await ready(watch(createEntraRedis(amr)));
      clients.push({ shape: shapes[0] as Shape, client: base });
      for (let i = 0; i < 5; i++) clients.push({ shape: shapes[0] as Shape, client: await (shapes[0] as Shape).make() });
      for (let i = 0; i < 4; i++) clients.push({ shape: shapes[1] as Shape, client: await ready(watch(base.duplicate())) });
      for (let i = 0; i < 2; i++) clients.push({ shape: shapes[2] as Shape, client: await (shapes[2] as Shape).make() });
      clients.push({ shape: shapes[3] as Shape, client: await (shapes[3] as Shape).make() });
      const expectedOpen = world.amr.counters.open;
      log(`leaks: ${options.reconnects} reconnect rounds of ${clients.length} connections`);
      phases.push(await measurePhase({
        name: 'reconnects', operations: options.reconnects, connections: clients.length, provider, clients, shapes, gc, log,
        drive: async (count, onCheckpoint) => {
          const every = Math.max(1, Math.floor(count / 10));
          const acceptedBefore = world.amr.counters.accepted;
          for (let round = 1; round <= count; round++) {
            const accepted = world.amr.counters.accepted;
            world.amr.closeAllConnections();
            // every connection back, authenticated, subscribers subscribed again
            await waitFor(() => world.amr.counters.accepted >= accepted + clients.length
              && clients.every(({ client }) => client.status === 'ready') && world.amr.counters.open === expectedOpen,
            `round ${round}: every client ready again`, 30_000, 2);
            if (round % every === 0) await onCheckpoint(round);
          }
          return { 'connections accepted by the AMR emulator': world.amr.counters.accepted - acceptedBefore };
        },
      }));

      log(`leaks: ${options.cycles} create/quit cycles`);
      phases.push(await measurePhase({
        name: 'create/quit cycles', operations: options.cycles, connections: clients.length, provider, clients, shapes, gc, log,
        drive: async (count, onCheckpoint) => {
          const every = Math.max(1, Math.floor(count / 10));
          for (let cycle = 1; cycle <= count; cycle++) {
            const client = await ready(watch(createEntraRedis(amr)));
            const copy = await ready(watch(client.duplicate()));
            if (cycle % 10 === 0) await copy.subscribe('leaks:cycle');
            else await copy.ping();
            await client.set('leaks:cycle', String(cycle));
            await Promise.all([copy.quit(), client.quit()]);
            await Promise.all([whenEnded(copy), whenEnded(client)]);
            if (cycle % every === 0) await onCheckpoint(cycle);
          }
          return {};
        },
      }));
      for (const { client } of clients) client.disconnect();
      await Promise.all(clients.map(({ client }) => whenEnded(client)));
      provider.dispose();
    }
    processListenerDiffs = diffCounts('process', processListenersBefore, listenerCounts(process));
  } finally {
    for (const provider of providers) provider.dispose();
    await world.stop();
  }
  // Whatever is left once everything is closed.
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && (tracker.liveFrom(LIB_DIR).length > 0 || activeTimers() > activeTimersBefore)) await sleep(50);
  const libTimersLeft = tracker.liveFrom(LIB_DIR).map((timer) => {
    const frame = timer.stack.split('\n').slice(1).find((line) => line.includes(LIB_DIR)) ?? '';
    return `${timer.kind}${timer.unref ? ' (unref)' : ''} ${frame.trim()}`;
  });
  const activeTimersAfter = activeTimers();
  tracker.uninstall();
  process.off('unhandledRejection', onRejection);
  return {
    options: {
      rotations: options.rotations, connections: options.connections, reconnects: options.reconnects, cycles: options.cycles,
      tokenMs: options.tokenMs, blockedRotations: options.blockedRotations,
    },
    startedAt: new Date().toISOString(),
    node: process.version,
    ioredis: process.env.IOREDIS_MAJOR === '6' ? 'ioredis 6' : 'ioredis 5',
    phases,
    libTimersLeft,
    activeTimersBefore,
    activeTimersAfter,
    timersCreated: tracker.created,
    processListenerDiffs,
    clientErrors,
    unhandledRejections,
  };
}

interface PhaseInput {
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

/** Runs one phase with checkpoints of heap, listener counts and subscriber counts. */
async function measurePhase(input: PhaseInput): Promise<PhaseReport> {
  const { provider, clients, gc } = input;
  const started = Date.now();
  const startListeners = clients.map(({ client }) => clientListeners(client));
  const providerListeners = listenerCounts(provider);
  const subscriberMismatches: string[] = [];
  const checkSubscribers = (label: string) => {
    const alive = clients.filter(({ client }) => client.status !== 'end').length;
    if (provider.subscriberCount !== alive) subscriberMismatches.push(`${label}: subscriberCount ${provider.subscriberCount}, connections alive ${alive}`);
  };
  checkSubscribers('start');
  const xs: number[] = [0];
  const heaps: number[] = [await heapAfterGc(gc)];
  const notes = await input.drive(input.operations, async (done) => {
    checkSubscribers(`after ${done}`);
    xs.push(done);
    heaps.push(await heapAfterGc(gc));
    input.log(`  ${input.name}: ${done} (heap ${(heaps.at(-1) as number / 1048576).toFixed(1)} MiB, subscribers ${provider.subscriberCount})`);
  });
  // Let the last rotation or reconnect settle before comparing listeners.
  await waitFor(() => clients.every(({ client }) => client.status === 'ready'), 'every client ready', 30_000, 5);
  const listenerDiffs: string[] = [];
  for (const [index, { shape, client }] of clients.entries()) {
    if (input.compareWithStart === false) break;
    const now = clientListeners(client);
    const then = startListeners[index] as ReturnType<typeof clientListeners>;
    listenerDiffs.push(...diffCounts(`${shape.name} #${index} client`, then.client, now.client));
    listenerDiffs.push(...diffCounts(`${shape.name} #${index} socket`, then.stream, now.stream));
  }
  // Against fresh clients of every shape, made now with the same provider.
  const queueGrowth: string[] = [];
  for (const shape of input.shapes) {
    const fresh = await shape.make();
    const freshCounts = clientListeners(fresh);
    const freshQueued = queued(fresh);
    for (const [index, used] of clients.entries()) {
      if (used.shape !== shape) continue;
      // Rotations go on: a client caught in a reconnect holds its ready check for a moment. Compared once ready.
      await waitFor(() => used.client.status === 'ready', `${shape.name} #${index} ready`, 30_000, 5);
      const now = queued(used.client);
      if (now.length > freshQueued.length) queueGrowth.push(`${shape.name} #${index}: ${now.length} commands queued (${summarizeNames(now)}), a fresh one ${freshQueued.length}`);
    }
    for (const [index, used] of clients.entries()) {
      if (used.shape !== shape) continue;
      const now = clientListeners(used.client);
      listenerDiffs.push(...diffCounts(`${shape.name} #${index} client vs a fresh one`, freshCounts.client, now.client));
      listenerDiffs.push(...diffCounts(`${shape.name} #${index} socket vs a fresh one`, freshCounts.stream, now.stream));
    }
    fresh.disconnect();
    await whenEnded(fresh);
  }
  listenerDiffs.push(...diffCounts('provider', providerListeners, listenerCounts(provider)));
  checkSubscribers('end');
  const seconds = (Date.now() - started) / 1000;
  const report: PhaseReport = {
    name: input.name, operations: input.operations, connections: input.connections, seconds,
    heapPerOperation: slope(xs, heaps), heapStart: heaps[0] as number, heapEnd: heaps.at(-1) as number,
    listenerDiffs: [...new Set(listenerDiffs)], subscriberMismatches, queueGrowth, notes,
  };
  input.log(`  ${input.name}: done in ${seconds.toFixed(0)} s, heap ${report.heapPerOperation.toFixed(0)} bytes per operation, `
    + `${report.listenerDiffs.length} listener differences, ${subscriberMismatches.length} subscriber mismatches, ${queueGrowth.length} grown queues`);
  return report;
}

// ---------------------------------------------------------------------------------------------------------------------
// Markdown.

const n = (value: number, digits = 0) => (Number.isFinite(value)
  ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');

export function renderLeaks(report: LeakReport): string {
  const row = (p: PhaseReport) => [
    p.name, n(p.operations), n(p.connections), `${n(p.seconds)} s`,
    `${n(p.heapPerOperation)} B (${n(p.heapPerOperation / p.connections, 1)} B per connection)`,
    `${n(p.heapStart / 1048576, 1)} → ${n(p.heapEnd / 1048576, 1)} MiB`,
    p.listenerDiffs.length === 0 ? 'none' : `**${p.listenerDiffs.length}**`,
    p.subscriberMismatches.length === 0 ? 'none' : `**${p.subscriberMismatches.length}**`,
    p.queueGrowth.length === 0 ? 'none' : `**${p.queueGrowth.length}**`,
  ];
  const clean = report.phases.every((p) => p.listenerDiffs.length === 0 && p.subscriberMismatches.length === 0 && p.queueGrowth.length === 0)
    && report.libTimersLeft.length === 0 && report.activeTimersAfter <= report.activeTimersBefore && report.unhandledRejections === 0;
  return [
    '# Leaks',
    '',
    '<!-- Generated by `npm run bench:leaks` (bench/leaks.ts). Run it again rather than editing. -->',
    '',
    `Run ${report.startedAt} on Node.js ${report.node}, ${report.ioredis}. Verdict: **${clean ? 'nothing accumulates' : 'something accumulates (see below)'}**.`,
    '',
    '## Method',
    '',
    `- **Rotations**: ${n(report.options.rotations)} token rotations over ${n(report.options.connections)} connections sharing one provider `
    + '(createEntraRedis clients, one in five a `duplicate()`). To run them in minutes through the real '
    + 'library, the credential mints tokens with the Entra emulator\'s key whose `exp` is an hour away but whose '
    + `\`expiresOnTimestamp\` says ${report.options.tokenMs} ms: the library takes the earlier, so its real TokenManager refreshes every `
    + `~${n(report.options.tokenMs / 2)} ms (\`expirationRefreshRatio\` 0.5, no jitter) and every binding sends AUTH on its live connection `
    + '(or, blocked behind BLPOP or not answered by its deadline, reconnects). These connections go straight to redis-server as an ACL user '
    + 'that takes any password: through the AMR emulator, each of the million AUTHs would cost a signature check and an ACL SETUSER.',
    `- **Rotations with a blocked connection**: ${n(report.options.blockedRotations)} rotations, the same way, over 10 connections of which `
    + 'one sits in `BLPOP 0` on an empty list: its AUTH waits behind the BLPOP, so the library reconnects it before each token expires.',
    `- **Reconnects**: ${n(report.options.reconnects)} rounds of \`amr.closeAllConnections()\` over 12 connections through the AMR emulator `
    + '(6 clients, 4 duplicates, 2 RESP2 subscribers, 1 blocked in BLPOP): each round waits until every connection is back, authenticated '
    + 'and resubscribed. Hour-long tokens: no rotation interferes.',
    `- **Create/quit cycles**: ${n(report.options.cycles)} times createEntraRedis → ready → \`duplicate()\` → ready (every tenth subscribes) → `
    + 'SET → `quit()` both, through the AMR emulator, the 12 connections above still open.',
    '- **Checked**: listener counts of every client and of its socket for every event name, against the same client at the start of '
    + 'the phase and against a fresh client of the same shape made at the end; listener counts of the provider and of `process`; '
    + '`provider.subscriberCount` against the clients alive, at ten checkpoints; the commands each client holds in ioredis\'s '
    + 'command and offline queues against a fresh client of the same shape; the V8 heap after three `gc()` at each checkpoint '
    + '(least-squares slope = bytes kept per operation). After everything was closed and the providers disposed: every timer '
    + 'created through `setTimeout`/`setInterval` was tracked with its creation stack (unref\'d ones too, which '
    + '`process.getActiveResourcesInfo()` does not list: the library unrefs all its timers), and none created by lib/ may be left.',
    '',
    '## Figures',
    '',
    '| phase | operations | connections | time | heap kept per operation (slope) | heap at start → end | listener differences | subscriberCount mismatches | clients whose ioredis queues grew |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...report.phases.map((p) => `| ${row(p).join(' | ')} |`),
    '',
    ...report.phases.flatMap((p) => [
      `${p.name}: ${Object.entries(p.notes).map(([k, v]) => `${k} ${typeof v === 'number' ? n(v) : v}`).join(', ') || 'no other figures'}.`
      + (p.listenerDiffs.length > 0 ? ` Listener differences: ${p.listenerDiffs.slice(0, 10).join('; ')}.` : '')
      + (p.subscriberMismatches.length > 0 ? ` Subscriber mismatches: ${p.subscriberMismatches.slice(0, 5).join('; ')}.` : '')
      + (p.queueGrowth.length > 0 ? ` Queues: ${p.queueGrowth.slice(0, 5).join('; ')}.` : ''),
      '',
    ]),
    `Timers: ${n(report.timersCreated)} created through the globals during the run; left by lib/ after everything was closed: `
    + `**${report.libTimersLeft.length}**${report.libTimersLeft.length > 0 ? ` (${report.libTimersLeft.slice(0, 5).join('; ')})` : ''}; `
    + `ref'd timers in \`process.getActiveResourcesInfo()\`: ${report.activeTimersBefore} before the first client, ${report.activeTimersAfter} after. `
    + `\`process\` listeners added and not removed: ${report.processListenerDiffs.length === 0 ? 'none' : report.processListenerDiffs.join('; ')}. `
    + `Unhandled rejections: ${report.unhandledRejections}. Client \`error\` events: `
    + `${Object.keys(report.clientErrors).length === 0 ? 'none' : Object.entries(report.clientErrors).map(([m, c]) => `${c}× ${m}`).join('; ')}.`,
    '',
    'Heap slopes are small against V8\'s own noise (a few hundred KiB between checkpoints) when they are within a few hundred bytes per '
    + 'operation: what would matter is growth per operation that stays, which shows as a slope of kilobytes (a closure or listener '
    + 'kept per connection per rotation is already 100+ bytes × 100 connections).',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string, fallback: number) => {
    const index = args.indexOf(name);
    return index === -1 ? fallback : Number(args[index + 1]);
  };
  const report = await runLeaks({
    rotations: value('--rotations', 10_000), connections: value('--connections', 100), blockedRotations: value('--blocked-rotations', 1_000),
    reconnects: value('--reconnects', 1_000), cycles: value('--cycles', 1_000), tokenMs: value('--token-ms', 100),
  });
  const markdown = renderLeaks(report);
  if (!args.includes('--no-write')) {
    const out = fileURLToPath(new URL('../docs/leaks.md', import.meta.url));
    writeFileSync(out, markdown);
    process.stderr.write(`leaks: wrote ${out}\n`);
  }
  process.stdout.write(`${markdown}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`leaks failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  });
}
