/**
 * Chaos soak: every client shape the library binds (standalone clients, duplicates of them and of their duplicates, a
 * Cluster, a pub/sub subscriber, a queue consumer blocked in BLMOVE) writes continuously through the AMR emulator while
 * token lifetimes change at random between 2 and 6 s, the token service fails at random (5xx, 429 with Retry-After,
 * hangs, resets, down for longer than a token's life), redis-server is restarted (SIGTERM) or killed (SIGKILL) and
 * restarted, and cluster nodes are killed and restarted. Every acknowledged write is recorded and verified at the end.
 *
 *   npm run soak -- --minutes 30             writes docs/soak.md
 *   npm run soak -- --minutes 2 --no-write   prints the report only
 *   options: --seed N (reproducible fault schedule), --out FILE
 *
 * The servers run with `appendonly yes` + `appendfsync always`: redis-server answers a write only after it is in the
 * AOF and fsynced, so neither a SIGTERM restart nor a SIGKILL loses an acknowledged write, and acknowledged writes are
 * verified over the whole run instead of between restarts only (which would leave most of the chaos unverified).
 *
 * spec/soak.test.ts runs the 2-minute version and asserts the must-be-0 figures. Exit code of the command: 0 when
 * every must-be-0 figure is 0, else 1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ManagedIdentityCredential } from '@azure/identity';
import type { Cluster, Redis } from 'ioredis';
import {
  createCredentialsProvider, createEntraCluster, createEntraRedis, type EntraCredentialsProvider, type TokenInfo,
} from '../lib/index.js';
import { AmrEmulator, startAmrCluster, type AmrCluster, type AmrConnectionInfo } from '../lib/testing/amr-emulator.js';
import { EntraEmulator, type EntraFault } from '../lib/testing/entra-emulator.js';
import { startRedisCluster, startRedisServer, type RedisClusterHandle, type RedisServerHandle } from '../lib/testing/redis-server.js';
import { MAX_VALIDITY_MARGIN_MS, VALIDITY_MARGIN_FRACTION } from '../lib/manager/schedule.js';

// ---------------------------------------------------------------------------------------------------------------------
// Settings.

/** Token lifetimes drawn at random, seconds. */
const LIFETIMES_S = [2, 3, 4, 5, 6];
/** A token that reaches the library later than this before the previous one expires leaves no time to re-AUTH. */
const LATE_TOKEN_MS = 250;
/** Failures this long after an outage window ends still belong to it (ioredis retries reconnects up to every 2 s). */
const GRACE_MS = 5_000;
/** Pause between writes of one lane (one write in flight per lane). */
const PACE_MS = 15;
/** Event-loop stalls longer than this are recorded (sampled every STALL_SAMPLE_MS). */
const STALL_MS = 100;
const STALL_SAMPLE_MS = 20;
/** Quiet time at the end: no new fault, every lane must write again. */
const SETTLE_MS = 15_000;
/** Persistence of every redis-server of the soak (see the file comment). */
const PERSISTENCE = ['appendonly yes', 'appendfsync always'];
const TOKEN_MANAGER_OPTIONS = { tokenRequestTimeout: 1_000, retryOptions: { initialDelay: 100, maxDelay: 500 } };

export interface SoakOptions {
  minutes: number;
  /** Seed of the fault schedule. Default: random (reported). */
  seed?: number;
  /** Progress lines. Default: stderr. */
  log?: (line: string) => void;
  /**
   * When a newer token counts as late, so that an expiry close is not the library's doing: `strict` (the default, for
   * the long soak) when it came less than 250 ms before the old token expired; `deadline` (the short soak in the
   * test command, which must fail for library defects and not for a slow scheduler) when it came after the old token's
   * re-AUTH deadline, min(5 s, 20 % of its life) before its expiry: the library guarantees in-place re-authentication
   * for tokens that come before the deadline, and after it a busy scheduler decides.
   */
  lateTokenRule?: 'strict' | 'deadline';
}

// ---------------------------------------------------------------------------------------------------------------------
// Report.

export interface FaultRecord {
  kind: string;
  detail: string;
  /** ms since the start of the chaos phase. */
  at: number;
  durationMs: number;
}

export interface LaneReport {
  name: string;
  target: 'standalone' | 'cluster';
  acked: number;
  failedInOutage: number;
  failedOutside: number;
  lost: number;
}

export interface SoakReport {
  seed: number;
  minutes: number;
  startedAt: string;
  wallSeconds: number;
  environment: { node: string; ioredis: string; redis: string; cpus: number; loadAverage: number[] };
  lifetimesUsed: number[];
  faults: FaultRecord[];
  faultCounts: Record<string, number>;
  rotations: { standalone: number; cluster: number };
  reauthenticated: Record<string, number>;
  reauthenticationFailed: number;
  refreshFailed: number;
  lanes: LaneReport[];
  /** Acknowledged writes missing at the end (ZADD/HSET members, INCR shortfall, queue items). Must be 0. */
  ackedWritesLost: number;
  incr: { acked: number; value: number };
  queue: {
    pushed: number; delivered: number; remaining: number; duplicates: number;
    /**
     * Moved by the server into the taken list while the connection broke (an outage, or the library reconnecting the
     * blocked consumer to move it to a new token), so its reply never reached the consumer. The reliable-queue pattern
     * (BLMOVE into a list of taken items) keeps them; with BLPOP they would be lost (docs/guarantees.md).
     */
    takenReplyLost: number;
    /** Acknowledged pushes neither delivered, nor taken, nor still queued. Must be 0 (counted in ackedWritesLost). */
    lost: number;
    details: string[];
  };
  pubsub: { publishedToSubscribers: number; received: number; duplicates: number; outOfOrder: number; lostInOutage: number; lostOutside: number };
  expiry: {
    total: number;
    /** The connection's token expired before a newer one reached the library (token service impaired). */
    tokenLate: number;
    /** A newer token was there in time, but this process's event loop was stalled for most of the time left. */
    duringStall: number;
    /**
     * A newer token was there in time, but the server had just restarted (it answers LOADING while it reads its AOF, and
     * ioredis holds the connection in 'connect' until it is done; the library re-AUTHs such connections too, and the
     * server answers AUTH while loading, but slowly).
     */
    avoidableDuringRestart: number;
    /** A newer token was there in time, no restart, and the connection was not blocked. Must be 0. */
    avoidableNotBlocked: number;
    /** A newer token was there in time, no restart, and the connection was the blocked queue consumer. Expected 0. */
    avoidableBlocked: number;
    details: string[];
  };
  /** Tokens that came less than LATE_TOKEN_MS before the previous one expired although no token fault was injected. */
  lateTokensWithoutFault: number;
  failedOutsideMessages: string[];
  recovery: Array<{ at: number; downMs: number; tokenBackMs: number; lanesBackMs: number }>;
  lanesNotRecovered: string[];
  unhandledRejections: number;
  uncaughtExceptions: number;
  unhandledMessages: string[];
  clientErrors: number;
  /** BLMOVE calls of the consumer that were rejected (outages, and the final disconnect). */
  consumerFailures: number;
  clientErrorMessages: string[];
  amr: { accepted: number; authOk: number; authFailed: number };
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Event-loop stalls over STALL_MS. */
  stalls: { count: number; totalMs: number };
}

/** The figures that must be 0, by name, with their values. */
export function mustBeZero(report: SoakReport): Record<string, number> {
  return {
    ackedWritesLost: report.ackedWritesLost,
    expiryDisconnectsNotBlocked: report.expiry.avoidableNotBlocked,
    expiryDisconnectsBlocked: report.expiry.avoidableBlocked,
    unhandledRejections: report.unhandledRejections,
    uncaughtExceptions: report.uncaughtExceptions,
    lanesNotRecovered: report.lanesNotRecovered.length,
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers.

/** Small seeded PRNG (mulberry32): the fault schedule of a seed is reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Version of an installed package (by its folder under node_modules). */
function installedVersion(folder: string): string {
  try {
    return (JSON.parse(readFileSync(fileURLToPath(new URL(`../node_modules/${folder}/package.json`, import.meta.url)), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const describeError = (error: unknown): string => String(error instanceof Error ? `${error.name}: ${error.message}` : error).slice(0, 160);

function tally(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function top(map: Map<string, number>, limit = 8): string[] {
  return [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([message, count]) => `${count}× ${message}`);
}

/**
 * Runs `action` until it succeeds, for up to a minute. A server that stopped listening (token service down, redis-server
 * killed) comes back on the same port, which a connection of this busy machine may hold meanwhile as its local port
 * (EADDRINUSE): it is free again once that connection closes.
 */
async function persist(action: () => Promise<void>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      await action();
      if (attempt > 1) process.stderr.write(`soak: ${what} after ${attempt} attempts\n`);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`soak: gave up waiting for ${what}: ${describeError(error)}`, { cause: error });
      await sleep(500);
    }
  }
}

/** Sleeps `ms` unless `signal` aborts first (then resolves early, without throwing). */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => {});
}

interface Window { start: number; end: number; why: string }

const overlaps = (windows: readonly Window[], start: number, end: number, grace = GRACE_MS) =>
  windows.some((w) => start <= w.end + grace && end >= w.start);

/** A lane: one client, one key space, one write in flight, every acknowledgement recorded. */
class Lane {
  readonly acked: number[] = [];
  readonly failures: Array<{ start: number; end: number; message: string }> = [];
  lastSuccessAt = 0;
  /** Completion times of successes, sampled for recovery measurement (first success after a given time). */
  readonly #successProbes: Array<{ after: number; at: number | undefined }> = [];

  constructor(
    readonly name: string,
    readonly target: 'standalone' | 'cluster',
    readonly write: (i: number) => Promise<unknown>,
    readonly onAck: (i: number, reply: unknown, start: number) => void = () => {},
    readonly pace: () => number = () => PACE_MS,
  ) {}

  /** Records the completion time of the first success completed after `after`. */
  probe(after: number): { readonly at: number | undefined } {
    const probe = { after, at: undefined as number | undefined };
    this.#successProbes.push(probe);
    return probe;
  }

  async run(running: () => boolean): Promise<void> {
    for (let i = 0; running(); i++) {
      const start = Date.now();
      try {
        const reply = await this.write(i);
        const end = Date.now();
        this.acked.push(i);
        this.lastSuccessAt = end;
        this.onAck(i, reply, start);
        for (const probe of this.#successProbes) if (probe.at === undefined && end >= probe.after) probe.at = end;
      } catch (error) {
        this.failures.push({ start, end: Date.now(), message: describeError(error) });
        await sleep(100);
      }
      await sleep(this.pace());
    }
  }
}

/** Records a provider's tokens (their description only: never the token). */
class TokenTimeline {
  readonly tokens: TokenInfo[] = [];
  constructor(provider: EntraCredentialsProvider) {
    provider.on('tokenRefreshed', (info) => this.tokens.push(info));
  }

  /** The first token that outlives `expiresOn`, i.e. the one that should have replaced a token expiring then. */
  successorOf(expiresOn: number): TokenInfo | undefined {
    return this.tokens.find((t) => t.expiresOn > expiresOn);
  }

  /** Intervals in which the next token came too late to re-AUTH before the previous one expired. */
  lateWindows(): Window[] {
    const windows: Window[] = [];
    for (let i = 1; i < this.tokens.length; i++) {
      const previous = this.tokens[i - 1] as TokenInfo;
      const next = this.tokens[i] as TokenInfo;
      if (next.receivedAt > previous.expiresOn - LATE_TOKEN_MS) {
        windows.push({ start: Math.min(previous.expiresOn, next.receivedAt) - 1_000, end: Math.max(previous.expiresOn, next.receivedAt), why: 'late token' });
      }
    }
    return windows;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The soak.

interface Servers {
  redis: RedisServerHandle;
  cluster: RedisClusterHandle;
  entra: EntraEmulator;
  amr: AmrEmulator;
  amrCluster: AmrCluster;
  restoreEnv: () => void;
}

async function startServers(): Promise<Servers> {
  const redis = await startRedisServer({ extraConfig: PERSISTENCE });
  let cluster: RedisClusterHandle | undefined;
  let entra: EntraEmulator | undefined;
  let amr: AmrEmulator | undefined;
  try {
    cluster = await startRedisCluster({ masters: 3, extraConfig: PERSISTENCE });
    entra = await EntraEmulator.start({ tokenLifetimeSeconds: 4 });
    amr = await AmrEmulator.start({ backend: { host: redis.host, port: redis.port }, publicKey: entra.publicKey, admin: redis.admin });
    const amrCluster = await startAmrCluster(cluster, { publicKey: entra.publicKey });
    const restoreEnv = entra.applyManagedIdentityEnv();
    return { redis, cluster, entra, amr, amrCluster, restoreEnv };
  } catch (error) {
    await amr?.stop();
    await entra?.stop();
    await cluster?.stop();
    await redis.stop();
    throw error;
  }
}

async function stopServers(servers: Servers): Promise<void> {
  servers.restoreEnv();
  await servers.entra.stop();
  await servers.amr.stop();
  await servers.amrCluster.stop();
  await servers.redis.stop();
  await servers.cluster.stop();
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = prng(seed);
  const randInt = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const between = (min: number, max: number) => min + random() * (max - min);
  const wallStart = Date.now();

  // Process-wide: what nobody handled.
  let unhandledRejections = 0;
  let uncaughtExceptions = 0;
  const unhandledMessages = new Map<string, number>();
  const onRejection = (reason: unknown) => { unhandledRejections++; tally(unhandledMessages, `unhandledRejection: ${describeError(reason)}`); };
  const onException = (error: unknown) => { uncaughtExceptions++; tally(unhandledMessages, `uncaughtException: ${describeError(error)}`); };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  // Stalls of this process's event loop (the AMR emulators live in it too: after a stall their expiry timers run
  // before the AUTH bytes that arrived meanwhile are read).
  const stalls: Window[] = [];
  let lastTick = performance.now();
  const stallSampler = setInterval(() => {
    const now = performance.now();
    const late = now - lastTick - STALL_SAMPLE_MS;
    if (late > STALL_MS) stalls.push({ start: Date.now() - late, end: Date.now(), why: 'event-loop stall' });
    lastTick = now;
  }, STALL_SAMPLE_MS);
  stallSampler.unref();
  const responsiveMs = (start: number, end: number) => {
    let stalled = 0;
    for (const stall of stalls) stalled += Math.max(0, Math.min(end, stall.end) - Math.max(start, stall.start));
    return end - start - stalled;
  };

  log(`soak: seed ${seed}, ${options.minutes} min; starting servers`);
  const servers = await startServers();
  const { redis, cluster, entra, amr, amrCluster } = servers;
  const identity = entra.addManagedIdentity({ kind: 'user' });
  const providers: EntraCredentialsProvider[] = [];
  const makeProvider = () => {
    const provider = createCredentialsProvider({
      credential: new ManagedIdentityCredential({ clientId: identity.clientId, retryOptions: { maxRetries: 0 } }),
      tokenManagerOptions: TOKEN_MANAGER_OPTIONS,
    });
    providers.push(provider);
    return provider;
  };
  const standaloneProvider = makeProvider();
  const clusterProvider = makeProvider();
  const timelines = { standalone: new TokenTimeline(standaloneProvider), cluster: new TokenTimeline(clusterProvider) };
  const reauthenticated = new Map<string, number>();
  let reauthenticationFailed = 0;
  let refreshFailed = 0;
  for (const provider of providers) {
    provider.on('reauthenticated', (event) => tally(reauthenticated, event.method));
    provider.on('reauthenticationFailed', () => { reauthenticationFailed++; });
    provider.on('refreshFailed', () => { refreshFailed++; });
  }

  const clientErrors = new Map<string, number>();
  let clientErrorCount = 0;
  const watch = <T extends Redis | Cluster>(client: T): T => {
    client.on('error', (error: unknown) => { clientErrorCount++; tally(clientErrors, describeError(error)); });
    return client;
  };
  const endpoint = { host: amr.host, port: amr.port };
  const standalone = (name: string) => watch(createEntraRedis({ ...endpoint, connectionName: name, credentialsProvider: standaloneProvider }));
  const a = standalone('soak-a');
  const b = standalone('soak-b');
  const dup1 = watch(a.duplicate({ connectionName: 'soak-dup1' }));
  const dup2 = watch(dup1.duplicate({ connectionName: 'soak-dup2' }));
  const consumer = standalone('soak-consumer');
  const subscriber = standalone('soak-sub');
  const clusterClient = watch(createEntraCluster(amrCluster.startupNodes(), {
    natMap: amrCluster.natMap, credentialsProvider: clusterProvider, redisOptions: { connectionName: 'soak-cluster' },
  }));
  clusterClient.on('node error', () => { clientErrorCount++; });
  const clients: Array<Redis | Cluster> = [a, b, dup1, dup2, consumer, subscriber, clusterClient];

  // Expiry disconnects, as the AMR emulators see them.
  // The state of the standalone client behind an expired connection, for the report.
  const byName = new Map<string, { client: Redis; readyAt: number; closeAt: number }>();
  for (const client of [a, b, dup1, dup2, consumer, subscriber]) {
    const entry = { client, readyAt: 0, closeAt: 0 };
    byName.set(String(client.options.connectionName), entry);
    client.on('ready', () => { entry.readyAt = Date.now(); });
    client.on('close', () => { entry.closeAt = Date.now(); });
  }
  const clientState = (name: string | undefined) => {
    const entry = name === undefined ? undefined : byName.get(name);
    if (!entry) return '';
    const now = Date.now();
    return `, client ${entry.client.status}, last ready ${now - entry.readyAt} ms ago, last close ${now - entry.closeAt} ms ago`;
  };
  const expirations: Array<{ info: AmrConnectionInfo; target: 'standalone' | 'cluster'; at: number; state: string }> = [];
  amr.on('expired', (info: AmrConnectionInfo) => expirations.push({ info, target: 'standalone', at: Date.now(), state: clientState(info.name) }));
  for (const emulator of amrCluster.emulators) emulator.on('expired', (info: AmrConnectionInfo) => expirations.push({ info, target: 'cluster', at: Date.now(), state: '' }));

  // Pub/sub and queue bookkeeping.
  const published: Array<{ i: number; at: number }> = [];
  const received: number[] = [];
  subscriber.on('message', (channel: string, message: string) => { if (channel === 'soak:events') received.push(Number(message)); });
  const pushed: Array<{ i: number; at: number }> = [];
  const delivered: Array<{ i: number; at: number }> = [];
  let consumerFailures = 0;

  let writing = true;
  const running = () => writing;
  let queueBurstUntil = 0;
  let queuePauseUntil = 0;
  const queuePace = () => {
    const now = Date.now();
    if (now < queueBurstUntil) return 30;
    if (now < queuePauseUntil) return queuePauseUntil - now;
    // a burst of pushes, then a pause long enough for the consumer to sit blocked across rotations
    queueBurstUntil = now + between(1_000, 3_000);
    queuePauseUntil = queueBurstUntil + between(2_000, 8_000);
    return 30;
  };
  const clusterKey = (lane: number, i: number) => `soak:{c${lane}-${i % 6}}`;
  const lanes: Lane[] = [
    new Lane('a zadd', 'standalone', (i) => a.zadd('soak:a', i, String(i))),
    new Lane('a incr', 'standalone', () => a.incr('soak:incr')),
    new Lane('b hset', 'standalone', (i) => b.hset('soak:b', String(i), String(i))),
    new Lane('b publish', 'standalone', (i) => b.publish('soak:events', String(i)),
      (i, reply, start) => { if (Number(reply) >= 1) published.push({ i, at: start }); }, () => 20),
    new Lane('b rpush (queue)', 'standalone', (i) => b.rpush('soak:queue', String(i)),
      (i, _reply, start) => pushed.push({ i, at: start }), queuePace),
    new Lane('duplicate zadd', 'standalone', (i) => dup1.zadd('soak:dup1', i, String(i))),
    new Lane('duplicate of duplicate zadd', 'standalone', (i) => dup2.zadd('soak:dup2', i, String(i))),
    new Lane('cluster zadd 1', 'cluster', (i) => clusterClient.zadd(clusterKey(1, i), i, String(i))),
    new Lane('cluster zadd 2', 'cluster', (i) => clusterClient.zadd(clusterKey(2, i), i, String(i))),
  ];

  const chaosAbort = new AbortController();
  const signal = chaosAbort.signal;
  const faults: FaultRecord[] = [];
  const tokenFaultWindows: Window[] = [];
  const standaloneWindows: Window[] = [];
  const clusterWindows: Window[] = [];
  const downs: Array<{ start: number; clearedAt: number; probes: Array<{ readonly at: number | undefined }>; failedLanes: Lane[]; tokenBack: Map<string, number> }> = [];
  const lifetimesUsed = new Set<number>([entra.tokenLifetimeSeconds]);
  let chaosStart = 0;
  const record = (kind: string, detail: string, start: number) => {
    faults.push({ kind, detail, at: start - chaosStart, durationMs: Date.now() - start });
    log(`  ${((start - chaosStart) / 1000).toFixed(1)} s: ${kind} (${detail}), ${((Date.now() - start) / 1000).toFixed(1)} s`);
  };

  try {
    log('soak: clients connecting');
    await subscriber.subscribe('soak:events');
    await Promise.all([a.ping(), b.ping(), dup1.ping(), dup2.ping(), consumer.ping(), clusterClient.set('soak:warm', '1')]);
    const consumerLoop = (async () => {
      while (writing || consumer.status === 'ready') {
        try {
          // The reliable-queue pattern: the server moves the item into a list of taken items in the same step it
          // takes it from the queue, so an item whose reply is lost with a broken connection is still on record.
          const reply = await consumer.blmove('soak:queue', 'soak:taken', 'LEFT', 'RIGHT', 0);
          if (reply !== null) delivered.push({ i: Number(reply), at: Date.now() });
        } catch {
          consumerFailures++;
          if (consumer.status === 'end') return;
          await sleep(100);
        }
      }
    })();
    const laneRuns = lanes.map((lane) => lane.run(running));

    chaosStart = Date.now();
    const chaosEnd = chaosStart + options.minutes * 60_000 - SETTLE_MS;
    log(`soak: chaos for ${((chaosEnd - chaosStart) / 1000).toFixed(0)} s, then ${SETTLE_MS / 1000} s quiet`);

    const lifetimeLoop = async () => {
      while (!signal.aborted && Date.now() < chaosEnd) {
        await pause(between(8_000, 20_000), signal);
        if (signal.aborted) return;
        entra.tokenLifetimeSeconds = LIFETIMES_S[randInt(0, LIFETIMES_S.length - 1)] as number;
        lifetimesUsed.add(entra.tokenLifetimeSeconds);
      }
    };

    // Each kind of fault comes once per round, in a random order: a short run sees every kind.
    const deck = <T>(kinds: readonly T[]) => {
      let cards: T[] = [];
      return () => {
        if (cards.length === 0) cards = [...kinds].sort(() => random() - 0.5);
        return cards.pop() as T;
      };
    };
    const nextTokenFault = deck(['5xx', '429', 'hang', 'reset', 'down'] as const);
    const tokenLoop = async () => {
      while (!signal.aborted) {
        await pause(between(3_000, 8_000), signal);
        if (signal.aborted || Date.now() >= chaosEnd) return;
        const kind = nextTokenFault();
        const start = Date.now();
        let fault: EntraFault;
        let holdMs: number;
        let detail: string;
        switch (kind) {
          case '5xx': {
            const status = [500, 502, 503, 504][randInt(0, 3)] as number;
            const times = randInt(1, 4);
            fault = { kind: 'status', status, times };
            holdMs = 3_000;
            detail = `HTTP ${status} to the next ${times} requests`;
            break;
          }
          case '429': {
            const retryAfterSeconds = randInt(1, 2);
            const times = randInt(1, 2);
            fault = { kind: 'status', status: 429, retryAfterSeconds, times };
            holdMs = 4_000;
            detail = `HTTP 429 Retry-After ${retryAfterSeconds} s to the next ${times} requests`;
            break;
          }
          case 'hang':
            fault = { kind: 'hang', times: 1 };
            holdMs = 3_000;
            detail = 'the next request never answered (until reset 3 s later)';
            break;
          case 'reset': {
            const times = randInt(1, 3);
            fault = { kind: 'reset', times };
            holdMs = 2_000;
            detail = `the next ${times} requests reset`;
            break;
          }
          case 'down': {
            // longer than the longest token in use: every connection's token expires during it
            holdMs = (Math.max(...LIFETIMES_S) + randInt(1, 4)) * 1_000;
            fault = { kind: 'down' };
            detail = `down ${holdMs / 1000} s`;
            break;
          }
        }
        await entra.setFault(fault);
        await pause(holdMs, signal);
        if (signal.aborted) detail += ' (cut short: the chaos ended)';
        entra.destroyHungRequests();
        await persist(() => entra.clearFault(), 'the token service to listen again');
        const clearedAt = Date.now();
        tokenFaultWindows.push({ start, end: clearedAt, why: kind });
        if (kind === 'down' && !signal.aborted) {
          const failedLanes = lanes.filter((lane) => lane.failures.some((f) => f.end >= start));
          const tokenBack = new Map<string, number>();
          for (const [name, provider] of [['standalone', standaloneProvider], ['cluster', clusterProvider]] as const) {
            provider.once('tokenRefreshed', () => tokenBack.set(name, Date.now()));
          }
          downs.push({ start, clearedAt, probes: lanes.map((lane) => lane.probe(clearedAt)), failedLanes, tokenBack });
        }
        record(`token service ${kind}`, detail, start);
      }
    };

    const nextServerFault = deck(['restart', 'kill', 'node'] as const);
    const serverLoop = async () => {
      while (!signal.aborted) {
        await pause(between(8_000, 18_000), signal);
        if (signal.aborted || Date.now() >= chaosEnd) return;
        const kind = nextServerFault();
        const start = Date.now();
        try {
          if (kind === 'restart') {
            await persist(() => (redis.running ? redis.restart() : redis.start()), 'redis-server to restart');
            standaloneWindows.push({ start, end: Date.now(), why: 'redis-server restart' });
            record('redis-server restart (SIGTERM)', 'standalone', start);
          } else if (kind === 'kill') {
            await redis.kill();
            await sleep(between(500, 2_000));
            await persist(() => redis.start(), 'redis-server to start');
            standaloneWindows.push({ start, end: Date.now(), why: 'redis-server kill' });
            record('redis-server kill (SIGKILL) + start', 'standalone', start);
          } else {
            const node = randInt(0, cluster.nodes.length - 1);
            await cluster.killNode(node);
            await sleep(between(1_000, 4_000));
            await persist(() => cluster.restartNode(node), `cluster node ${node} to restart`);
            clusterWindows.push({ start, end: Date.now(), why: `cluster node ${node} kill` });
            record('cluster node kill (SIGKILL) + restart', `node ${node}`, start);
          }
        } catch (error) {
          log(`  server fault ${kind} failed: ${describeError(error)}`);
          const windows = kind === 'node' ? clusterWindows : standaloneWindows;
          windows.push({ start, end: Date.now(), why: `${kind} (failed)` });
        }
      }
    };

    const chaos = Promise.all([lifetimeLoop(), tokenLoop(), serverLoop()]);
    const stopTimer = setTimeout(() => chaosAbort.abort(), Math.max(0, chaosEnd - Date.now()));
    await chaos;
    clearTimeout(stopTimer);
    chaosAbort.abort();
    // Leave everything up, whatever the chaos was doing when it stopped.
    await persist(() => entra.clearFault(), 'the token service to listen again');
    entra.destroyHungRequests();
    if (!redis.running) await persist(() => redis.start(), 'redis-server to start');
    for (const [index, node] of cluster.nodes.entries()) {
      if (!node.running) await persist(() => cluster.restartNode(index), `cluster node ${index} to restart`);
    }
    await cluster.waitForHealthy(30_000);
    const quietFrom = Date.now();
    log(`soak: chaos over after ${((quietFrom - chaosStart) / 1000).toFixed(0)} s; settling`);

    // Every lane must write again after the last fault.
    const settleDeadline = Math.max(quietFrom + SETTLE_MS, chaosStart + options.minutes * 60_000);
    while (Date.now() < settleDeadline && lanes.some((lane) => lane.lastSuccessAt < quietFrom)) await sleep(100);
    const lanesNotRecovered = lanes.filter((lane) => lane.lastSuccessAt < quietFrom).map((lane) => lane.name);
    const remainingSettle = settleDeadline - Date.now();
    if (remainingSettle > 0) await sleep(remainingSettle);
    writing = false;
    await Promise.all(laneRuns);

    // Drain the queue into the consumer, and the last messages into the subscriber.
    const lastPublished = published.at(-1)?.i;
    const drainDeadline = Date.now() + 10_000;
    while (Date.now() < drainDeadline) {
      const queueEmpty = Number(await redis.command('LLEN', 'soak:queue')) === 0;
      const messagesIn = lastPublished === undefined || received.includes(lastPublished);
      if (queueEmpty && messagesIn) break;
      await sleep(50);
    }
    consumer.disconnect();
    await consumerLoop;

    // ----- verification, straight against the servers (admin user, not through the emulators)
    const lostBy = (acked: readonly number[], stored: Set<number>) => acked.filter((i) => !stored.has(i)).length;
    const members = async (key: string, read: (k: string) => Promise<unknown>) => new Set(((await read(key)) as string[]).map(Number));
    const standaloneRead = (command: string, ...args: string[]) => (key: string) => redis.command(command, key, ...args);
    const clusterNodeFor = async (key: string) => {
      const slot = Number(await cluster.nodes[0]?.command('CLUSTER', 'KEYSLOT', key));
      const node = cluster.nodes.find((n) => slot >= n.slots[0] && slot <= n.slots[1]);
      if (!node) throw new Error(`no node owns slot ${slot}`);
      return node;
    };
    const laneReports: LaneReport[] = [];
    let ackedWritesLost = 0;
    const allWindows = {
      standalone: [...standaloneWindows, ...timelines.standalone.lateWindows()],
      cluster: [...clusterWindows, ...timelines.cluster.lateWindows()],
    };
    const failedOutsideMessages = new Map<string, number>();
    for (const lane of lanes) {
      let lost = 0;
      if (lane.name === 'a zadd') lost = lostBy(lane.acked, await members('soak:a', standaloneRead('ZRANGE', '0', '-1')));
      if (lane.name === 'b hset') lost = lostBy(lane.acked, await members('soak:b', standaloneRead('HKEYS')));
      if (lane.name === 'duplicate zadd') lost = lostBy(lane.acked, await members('soak:dup1', standaloneRead('ZRANGE', '0', '-1')));
      if (lane.name === 'duplicate of duplicate zadd') lost = lostBy(lane.acked, await members('soak:dup2', standaloneRead('ZRANGE', '0', '-1')));
      if (lane.name.startsWith('cluster zadd')) {
        const laneNo = Number(lane.name.slice(-1));
        const stored = new Set<number>();
        for (let k = 0; k < 6; k++) {
          const key = clusterKey(laneNo, k);
          const node = await clusterNodeFor(key);
          for (const member of (await node.command('ZRANGE', key, '0', '-1')) as string[]) stored.add(Number(member));
        }
        lost = lostBy(lane.acked, stored);
      }
      ackedWritesLost += lost;
      const windows = allWindows[lane.target];
      let failedInOutage = 0;
      let failedOutside = 0;
      for (const failure of lane.failures) {
        if (overlaps(windows, failure.start, failure.end)) failedInOutage++;
        else {
          failedOutside++;
          tally(failedOutsideMessages, `${lane.name}: ${failure.message}`);
        }
      }
      laneReports.push({ name: lane.name, target: lane.target, acked: lane.acked.length, failedInOutage, failedOutside, lost });
    }
    const incrLane = lanes.find((lane) => lane.name === 'a incr') as Lane;
    const incrValue = Number(await redis.command('GET', 'soak:incr'));
    if (incrValue < incrLane.acked.length) ackedWritesLost += incrLane.acked.length - incrValue;

    // Queue: every acknowledged push was delivered, or taken by the server (its reply lost with a broken connection),
    // or is still queued. Anything else is an acknowledged write lost, whatever happened around it.
    const remaining = new Set(((await redis.command('LRANGE', 'soak:queue', '0', '-1')) as string[]).map(Number));
    const taken = new Set(((await redis.command('LRANGE', 'soak:taken', '0', '-1')) as string[]).map(Number));
    const deliveredCount = new Map<number, number>();
    for (const { i } of delivered) deliveredCount.set(i, (deliveredCount.get(i) ?? 0) + 1);
    const queueDuplicates = [...deliveredCount.values()].filter((n) => n > 1).length;
    const queueLossDetails: string[] = [];
    let takenReplyLost = 0;
    let queueLost = 0;
    for (const { i, at } of pushed) {
      if (deliveredCount.has(i) || remaining.has(i)) continue;
      if (taken.has(i)) {
        takenReplyLost++;
        continue;
      }
      queueLost++;
      queueLossDetails.push(`item ${i} pushed at ${((at - chaosStart) / 1000).toFixed(1)} s`);
    }
    ackedWritesLost += queueLost;

    // Pub/sub: at-most-once by nature; a message is expected when PUBLISH said a subscriber got it.
    const receivedCount = new Map<number, number>();
    for (const i of received) receivedCount.set(i, (receivedCount.get(i) ?? 0) + 1);
    let outOfOrder = 0;
    for (let k = 1; k < received.length; k++) if ((received[k] as number) < (received[k - 1] as number)) outOfOrder++;
    let pubLostInOutage = 0;
    let pubLostOutside = 0;
    for (const { i, at } of published) {
      if (receivedCount.has(i)) continue;
      if (overlaps(allWindows.standalone, at, at)) pubLostInOutage++;
      else pubLostOutside++;
    }

    // Expiry disconnects: avoidable when a newer token reached the library in time (see lateTokenRule).
    const lateMarginFor = (timeline: TokenTimeline, expiresAt: number): number => {
      if (options.lateTokenRule !== 'deadline') return LATE_TOKEN_MS;
      const held = timeline.tokens.find((t) => t.expiresOn === expiresAt);
      const life = held ? held.expiresOn - held.receivedAt : 0;
      return Math.max(LATE_TOKEN_MS, Math.min(MAX_VALIDITY_MARGIN_MS, life * VALIDITY_MARGIN_FRACTION));
    };
    let tokenLate = 0;
    let avoidableBlocked = 0;
    let avoidableNotBlocked = 0;
    let avoidableDuringRestart = 0;
    let duringStall = 0;
    const expiryDetails: string[] = [];
    const serverWindows = { standalone: standaloneWindows, cluster: clusterWindows };
    for (const { info, target, at, state } of expirations) {
      const successor = info.expiresAt === undefined ? undefined : timelines[target].successorOf(info.expiresAt);
      const late = !successor || successor.receivedAt > (info.expiresAt ?? 0) - lateMarginFor(timelines[target], info.expiresAt ?? 0);
      if (late) {
        tokenLate++;
        continue;
      }
      const blocked = info.name === 'soak-consumer';
      const expiresAt = info.expiresAt ?? 0;
      // The process could not run for most of the time between the new token and the expiry.
      if (responsiveMs(successor.receivedAt, expiresAt) < LATE_TOKEN_MS) {
        duringStall++;
        continue;
      }
      // After a restart the server loads its AOF: ioredis holds the connection in 'connect' (ready check) for a
      // second or more, and the library sends a new token only to 'ready' connections.
      if (overlaps(serverWindows[target], at, at)) avoidableDuringRestart++;
      else if (blocked) avoidableBlocked++;
      else avoidableNotBlocked++;
      expiryDetails.push(`${((at - chaosStart) / 1000).toFixed(1)} s: ${target} connection ${info.name ?? `port ${info.remotePort}`} `
        + `expired although a newer token arrived ${((info.expiresAt ?? 0) - successor.receivedAt)} ms before`
        + ` (${info.authCount} AUTHs on it${state}${overlaps(allWindows.standalone, at, at) && target === 'standalone' ? '; in a redis-server restart window' : ''})`);
    }
    let lateTokensWithoutFault = 0;
    for (const timeline of Object.values(timelines)) {
      for (const window of timeline.lateWindows()) if (!overlaps(tokenFaultWindows, window.start, window.end, 3_000)) lateTokensWithoutFault++;
    }

    const recovery = downs.map((down) => {
      const back = [...down.tokenBack.values()];
      const lanesBack = down.probes.map((p) => p.at ?? Number.NaN);
      return {
        at: down.start - chaosStart,
        downMs: down.clearedAt - down.start,
        tokenBackMs: back.length === 2 ? Math.max(...back) - down.clearedAt : Number.NaN,
        lanesBackMs: Math.max(...lanesBack) - down.clearedAt,
      };
    });

    const faultCounts: Record<string, number> = {};
    for (const fault of faults) faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
    const ioredisVersion = installedVersion(process.env.IOREDIS_MAJOR === '6' ? 'ioredis6' : 'ioredis');
    const redisVersion = /redis_version:(\S+)/.exec(String(await redis.command('INFO', 'server')))?.[1] ?? 'unknown';
    return {
      seed,
      minutes: options.minutes,
      startedAt: new Date(wallStart).toISOString(),
      wallSeconds: (Date.now() - wallStart) / 1000,
      environment: { node: process.version, ioredis: ioredisVersion, redis: redisVersion, cpus: os.cpus().length, loadAverage: os.loadavg() },
      lifetimesUsed: [...lifetimesUsed].sort((x, y) => x - y),
      faults: [...faults].sort((x, y) => x.at - y.at),
      faultCounts,
      rotations: { standalone: timelines.standalone.tokens.length, cluster: timelines.cluster.tokens.length },
      reauthenticated: Object.fromEntries(reauthenticated),
      reauthenticationFailed,
      refreshFailed,
      lanes: laneReports,
      ackedWritesLost,
      incr: { acked: incrLane.acked.length, value: incrValue },
      queue: {
        pushed: pushed.length, delivered: delivered.length, remaining: remaining.size, duplicates: queueDuplicates,
        takenReplyLost, lost: queueLost, details: queueLossDetails.slice(0, 10),
      },
      pubsub: {
        publishedToSubscribers: published.length, received: received.length,
        duplicates: [...receivedCount.values()].filter((n) => n > 1).length, outOfOrder,
        lostInOutage: pubLostInOutage, lostOutside: pubLostOutside,
      },
      expiry: { total: expirations.length, tokenLate, duringStall, avoidableDuringRestart, avoidableNotBlocked, avoidableBlocked, details: expiryDetails.slice(0, 30) },
      lateTokensWithoutFault,
      failedOutsideMessages: top(failedOutsideMessages),
      recovery,
      lanesNotRecovered,
      unhandledRejections,
      uncaughtExceptions,
      unhandledMessages: top(unhandledMessages),
      clientErrors: clientErrorCount,
      consumerFailures,
      clientErrorMessages: top(clientErrors),
      amr: {
        accepted: amr.counters.accepted + amrCluster.total('accepted'),
        authOk: amr.counters.authOk + amrCluster.total('authOk'),
        authFailed: amr.counters.authFailed + amrCluster.total('authFailed'),
      },
      eventLoopDelayMs: {
        p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6,
      },
      stalls: { count: stalls.length, totalMs: stalls.reduce((sum, w) => sum + (w.end - w.start), 0) },
    };
  } finally {
    chaosAbort.abort();
    writing = false;
    for (const client of clients) client.disconnect();
    for (const provider of providers) provider.dispose();
    await stopServers(servers).catch((error: unknown) => log(`soak: stopping servers failed: ${describeError(error)}`));
    loopDelay.disable();
    clearInterval(stallSampler);
    // Late rejections of what was just closed still count: give them a turn of the loop before detaching.
    await sleep(200);
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Markdown.

const n = (value: number, digits = 0) => (Number.isFinite(value)
  ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');
function table(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function renderSoak(report: SoakReport): string {
  const zero = mustBeZero(report);
  const ok = Object.values(zero).every((v) => v === 0);
  const recoveries = report.recovery;
  const recoveryRows = recoveries.map((r) => [`${n(r.at / 1000, 1)} s`, `${n(r.downMs / 1000, 1)} s`, `${n(r.tokenBackMs)} ms`, `${n(r.lanesBackMs)} ms`]);
  const failedIn = report.lanes.reduce((s, l) => s + l.failedInOutage, 0);
  const failedOut = report.lanes.reduce((s, l) => s + l.failedOutside, 0);
  const acked = report.lanes.reduce((s, l) => s + l.acked, 0);
  return [
    '# Chaos soak',
    '',
    `<!-- Generated by \`npm run soak -- --minutes ${report.minutes}\` (bench/soak.ts). Run it again rather than editing. -->`,
    '',
    `A ${report.minutes}-minute run started ${report.startedAt} (seed ${report.seed}; \`npm run soak -- --minutes ${report.minutes} --seed ${report.seed}\` `
    + `replays the same fault schedule, not the same timing). Verdict: **${ok ? 'every must-be-0 figure is 0' : 'a must-be-0 figure is not 0'}**.`,
    '',
    '## Method',
    '',
    '- **Servers** (spec/support, all on loopback in one process except redis-server): a standalone redis-server and a '
    + '3-master Redis Cluster, each behind the AMR emulator (verifies every token, answers WRONGPASS, closes a connection '
    + 'when the token it last authenticated with expires), and the Entra ID emulator serving a user-assigned managed '
    + 'identity to real `ManagedIdentityCredential`s. Two providers: one shared by the standalone clients, one by the cluster.',
    '- **Persistence**: every redis-server runs with `appendonly yes` and `appendfsync always`. Redis then replies to a '
    + 'write only after it is in the AOF and fsynced, so a SIGTERM restart and a SIGKILL both keep every acknowledged '
    + 'write, and acknowledged writes are verified over the whole run rather than only between restarts.',
    '- **Clients and writes** (one write in flight per lane, every acknowledgement recorded): `createEntraRedis` client A '
    + '(ZADD of sequence numbers; INCR), client B (HSET; PUBLISH; RPUSH to a queue in bursts with pauses of 2-8 s), '
    + '`A.duplicate()` and a duplicate of that duplicate (ZADD each), a `createEntraCluster` (two ZADD lanes over 12 keys '
    + 'on all masters), a subscriber (`createEntraRedis`, SUBSCRIBE; RESP2 on ioredis 5, so it is moved by handover) and '
    + 'a queue consumer in `BLMOVE queue taken LEFT RIGHT 0` (sits blocked during the pauses, across rotations; the '
    + 'reliable-queue pattern: an item whose reply is lost with a broken connection stays on record in the taken list).',
    `- **Token lifetimes**: the emulator's lifetime is redrawn from ${LIFETIMES_S.join(', ')} s every 8-20 s. `
    + `Token manager: defaults (refresh at 70 % of the lifetime), \`tokenRequestTimeout\` ${TOKEN_MANAGER_OPTIONS.tokenRequestTimeout} ms, retries 100-500 ms.`,
    '- **Faults** (each kind once per round, in random order): the token service answers 500/502/503/504 to the next 1-4 '
    + 'requests, 429 with Retry-After 1-2 s to the next 1-2, never answers the next request (reset 3 s later), resets '
    + 'the next 1-3, or is **down** for 7-10 s (longer than any token lives), every 3-8 s; redis-server is restarted '
    + '(SIGTERM) or killed (SIGKILL) and started 0.5-2 s later, or a cluster node is killed and restarted 1-4 s later, every 8-18 s. '
    + `The last ${SETTLE_MS / 1000} s are quiet: every lane must write again.`,
    '- **Verification**: at the end the data is read straight from the servers (admin user): every acknowledged ZADD/HSET '
    + 'member must be there, the INCR counter must be at least the number of acknowledged INCRs, every acknowledged RPUSH '
    + 'must have reached the consumer, be in the taken list or still be queued; no exception for outages.',
    '- **Outage windows** (when failures are expected): a redis-server restart or kill, or a cluster node kill, until it is '
    + `back, for the clients of that side; and for each provider, every time a new token reached the library less than ${LATE_TOKEN_MS} ms `
    + `before the previous one expired (or after it), from 1 s before the expiry to the new token. Each window is extended by ${GRACE_MS / 1000} s `
    + '(ioredis reconnects at most every 2 s). An expiry disconnect is *avoidable* when a newer token reached the library at least '
    + `${LATE_TOKEN_MS} ms before the connection's token expired and this process's event loop ran for at least ${LATE_TOKEN_MS} ms of that `
    + '(stalls are sampled); avoidable ones within a restart window of their server are counted apart.',
    '',
    '## Environment',
    '',
    table(['', ''], [
      ['Node.js', report.environment.node], ['ioredis', report.environment.ioredis], ['redis-server', report.environment.redis],
      ['CPUs', String(report.environment.cpus)], ['load average at the end (1, 5, 15 min)', report.environment.loadAverage.map((l) => n(l, 2)).join(', ')],
      ['event-loop delay (p50 / p99 / max)', `${n(report.eventLoopDelayMs.p50, 1)} / ${n(report.eventLoopDelayMs.p99, 1)} / ${n(report.eventLoopDelayMs.max, 0)} ms`],
      [`event-loop stalls over ${STALL_MS} ms`, `${report.stalls.count}, ${n(report.stalls.totalMs)} ms in all`],
      ['wall time', `${n(report.wallSeconds)} s`],
    ]),
    '',
    '## Must-be-0 figures',
    '',
    table(['figure', 'value'], [
      ['acknowledged writes lost (ZADD/HSET members, INCR shortfall, queue items)', String(report.ackedWritesLost)],
      ['expiry disconnects of connections that were not blocked, with a newer token in time (no restart)', String(report.expiry.avoidableNotBlocked)],
      ['expiry disconnects of the blocked queue consumer, with a newer token in time (no restart)', String(report.expiry.avoidableBlocked)],
      ['unhandled rejections / uncaught exceptions', `${report.unhandledRejections} / ${report.uncaughtExceptions}`],
      ['(reported, not counted above) expiry disconnects with a newer token in time, right after a restart of the server', String(report.expiry.avoidableDuringRestart)],
      ['lanes that did not write again after the last fault', String(report.lanesNotRecovered.length)],
    ]),
    '',
    '## Faults injected',
    '',
    table(['fault', 'count'], Object.entries(report.faultCounts).map(([kind, count]) => [kind, String(count)])),
    '',
    `Token lifetimes used: ${report.lifetimesUsed.join(', ')} s. Rotations (new tokens): ${report.rotations.standalone} (standalone provider), `
    + `${report.rotations.cluster} (cluster provider). Re-authentications: ${Object.entries(report.reauthenticated).map(([m, c]) => `${c} by ${m}`).join(', ')}; `
    + `${report.reauthenticationFailed} failed attempts (reported, retried); ${report.refreshFailed} failed refresh cycles.`,
    '',
    '## Writes',
    '',
    table(['lane', 'side', 'acknowledged', 'failed in outage windows', 'failed outside', 'acknowledged but lost'],
      report.lanes.map((l) => [l.name, l.target, n(l.acked), n(l.failedInOutage), n(l.failedOutside), n(l.lost)])),
    '',
    `In all: ${n(acked)} acknowledged writes, ${n(failedIn)} failed commands inside outage windows, **${n(failedOut)} outside**`
    + `${report.failedOutsideMessages.length > 0 ? ` (${report.failedOutsideMessages.join('; ')})` : ''}. `
    + `INCR: ${n(report.incr.acked)} acknowledged, counter at ${n(report.incr.value)} (a command resent after a reconnect may count twice; never less).`,
    '',
    `Queue (RPUSH → BLMOVE): ${n(report.queue.pushed)} acknowledged pushes, ${n(report.queue.delivered)} delivered, ${report.queue.remaining} left, `
    + `${report.queue.duplicates} delivered twice, ${report.queue.takenReplyLost} taken by the server but their reply lost with the connection `
    + '(in an outage, or as the library reconnected the blocked consumer to move it to a new token; kept in the taken list, '
    + `a plain BLPOP would have lost them), **${report.queue.lost} lost**${report.queue.details.length > 0 ? ` (${report.queue.details.join('; ')})` : ''}.`,
    '',
    `Pub/sub (at most once by nature): ${n(report.pubsub.publishedToSubscribers)} messages PUBLISH reported delivered, ${n(report.pubsub.received)} received, `
    + `${report.pubsub.duplicates} duplicates, ${report.pubsub.outOfOrder} out of order, lost: ${report.pubsub.lostInOutage} during outages, ${report.pubsub.lostOutside} outside.`,
    '',
    '## Expiry disconnects',
    '',
    `${report.expiry.total} connections were closed by the AMR emulator because their token expired: ${report.expiry.tokenLate} while no newer token had `
    + `reached the library in time (token service down or slow); ${report.expiry.duringStall} while this process's event loop was stalled `
    + `for all but ${LATE_TOKEN_MS} ms of the time between the newer token and the expiry (the AMR emulators run in it: their expiry `
    + `timers then run before the AUTH bytes are read); ${report.expiry.avoidableDuringRestart} although a newer token was there, right after `
    + 'a restart of their redis-server (it answers LOADING while it reads its AOF and ioredis keeps the connection in `connect` state '
    + 'until it is done; the library sends new tokens to such connections too, and the server answers AUTH between chunks of its load); '
    + `${report.expiry.avoidableNotBlocked + report.expiry.avoidableBlocked} avoidable otherwise.`
    + (report.expiry.details.length > 0 ? `\n\n${report.expiry.details.map((d) => `- ${d}`).join('\n')}` : ''),
    '',
    `Tokens that came late although no token-service fault was injected around them (normal refreshes delayed by load): ${report.lateTokensWithoutFault}.`,
    '',
    '## Recovery after the token service returns',
    '',
    recoveryRows.length > 0
      ? table(['outage at', 'down for', 'first token after', 'every lane writing again after'], recoveryRows)
      : 'No outage of the token service in this run.',
    '',
    '## Errors seen',
    '',
    `Client \`error\` events: ${report.clientErrors}${report.clientErrorMessages.length > 0 ? ` (most frequent: ${report.clientErrorMessages.join('; ')})` : ''}. `
    + `AMR emulators: ${n(report.amr.accepted)} connections accepted, ${n(report.amr.authOk)} good AUTHs, ${n(report.amr.authFailed)} failed.`
    + (report.unhandledMessages.length > 0 ? ` Unhandled: ${report.unhandledMessages.join('; ')}.` : ''),
    '',
    '## Fault timeline',
    '',
    table(['at', 'fault', 'detail', 'lasted'], report.faults.map((f) => [`${n(f.at / 1000, 1)} s`, f.kind, f.detail, `${n(f.durationMs / 1000, 1)} s`])),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------------
// Command line.

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string) => {
    const index = args.indexOf(name);
    return index === -1 ? undefined : args[index + 1];
  };
  const minutes = Number(value('--minutes') ?? 30);
  if (!Number.isFinite(minutes) || minutes < 1) throw new Error('--minutes must be a number of at least 1');
  const seedArg = value('--seed');
  const out = args.includes('--no-write') ? undefined : (value('--out') ?? fileURLToPath(new URL('../docs/soak.md', import.meta.url)));
  const report = await runSoak({ minutes, ...(seedArg !== undefined ? { seed: Number(seedArg) } : {}) });
  const markdown = renderSoak(report);
  if (out) {
    writeFileSync(out, markdown);
    process.stderr.write(`soak: wrote ${out}\n`);
  }
  process.stdout.write(`${markdown}\n`);
  const zero = mustBeZero(report);
  process.stderr.write(`soak: must-be-0 figures ${JSON.stringify(zero)}\n`);
  process.exitCode = Object.values(zero).every((v) => v === 0) ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`soak failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  });
}
