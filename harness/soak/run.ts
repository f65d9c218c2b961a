/**
 * Chaos soak: every client shape the library binds writes continuously through the AMR emulator while token lifetimes
 * change at random between 2 and 6 s, the token service fails at random, redis-server is restarted or killed and
 * cluster nodes are killed (chaos.ts). Every acknowledged write is recorded (workload.ts) and verified at the end
 * (writes.ts); every expiry close is classified (expiries.ts). The servers persist every write before answering it,
 * so acknowledged writes are verified over the whole run, not only between restarts.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Chaos } from './chaos.js';
import { Dice } from './dice.js';
import { classifyExpiries, lateTokensWithoutFault, recordExpirations, type Expiration } from './expiries.js';
import type { Lane } from './lane.js';
import { ProcessMonitor } from './process-monitor.js';
import type { SoakReport } from './report.js';
import { startServers, stopServers, type Servers } from './servers.js';
import { SETTLE_MS, type SoakOptions } from './settings.js';
import { describeError, top } from './util.js';
import { checkIncr, checkLanes, checkPubsub, checkQueue } from './writes.js';
import { Clients, Providers, Workload } from './workload.js';

/** Version of an installed package (by its folder under node_modules). */
function installedVersion(folder: string): string {
  try {
    return (
      JSON.parse(
        readFileSync(fileURLToPath(new URL(`../../node_modules/${folder}/package.json`, import.meta.url)), 'utf8'),
      ) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

/** Everything a run is made of, for the verification at its end. */
interface Run {
  options: SoakOptions;
  seed: number;
  wallStart: number;
  monitor: ProcessMonitor;
  servers: Servers;
  providers: Providers;
  clients: Clients;
  workload: Workload;
  expirations: Expiration[];
  chaos: Chaos;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const dice = new Dice(seed);
  const wallStart = Date.now();
  const monitor = new ProcessMonitor();

  log(`soak: seed ${seed}, ${options.minutes} min; starting servers`);
  const servers = await startServers();
  const providers = new Providers(servers);
  const clients = new Clients(servers, providers);
  const workload = new Workload(clients, dice);
  const expirations = recordExpirations(servers, clients.standalone());
  const chaos = new Chaos(
    servers,
    workload.lanes,
    { standalone: providers.standalone, cluster: providers.cluster },
    dice,
    log,
  );
  const run: Run = { options, seed, wallStart, monitor, servers, providers, clients, workload, expirations, chaos };
  try {
    log('soak: clients connecting');
    await workload.start();
    const quietFrom = await chaos.run(options.minutes);
    const lanesNotRecovered = await settle(run, quietFrom);
    await workload.stopWriting();
    // Drain the queue into the consumer, and the last messages into the subscriber.
    await workload.drain(servers);
    return await verify(run, lanesNotRecovered);
  } finally {
    chaos.abort();
    workload.halt();
    for (const client of clients.all()) client.disconnect();
    for (const provider of providers.all()) provider.dispose();
    await stopServers(servers).catch((error: unknown) => log(`soak: stopping servers failed: ${describeError(error)}`));
    monitor.stopSampling();
    // Late rejections of what was just closed still count: give them a turn of the loop before detaching.
    await sleep(200);
    monitor.detach();
  }
}

/**
 * The quiet end of the run: waits until every lane has written again since the last fault (SETTLE_MS at least, and
 * until the run's minutes are over). Resolves with the lanes that did not.
 */
async function settle(run: Run, quietFrom: number): Promise<string[]> {
  const { lanes } = run.workload;
  const settleDeadline = Math.max(quietFrom + SETTLE_MS, run.chaos.start + run.options.minutes * 60_000);
  while (Date.now() < settleDeadline && lanes.some((lane) => lane.lastSuccessAt < quietFrom)) await sleep(100);
  const lanesNotRecovered = lanes.filter((lane) => lane.lastSuccessAt < quietFrom).map((lane) => lane.name);
  const remainingSettle = settleDeadline - Date.now();
  if (remainingSettle > 0) await sleep(remainingSettle);
  return lanesNotRecovered;
}

/** Checks the data and the disconnects against what was recorded, and puts the report together. */
async function verify(run: Run, lanesNotRecovered: string[]): Promise<SoakReport> {
  const { servers, providers, clients, workload, chaos, monitor } = run;
  const { timelines } = providers;
  const outages = {
    standalone: [...chaos.serverWindows.standalone, ...timelines.standalone.lateWindows()],
    cluster: [...chaos.serverWindows.cluster, ...timelines.cluster.lateWindows()],
  };
  const lanes = await checkLanes(servers, workload.lanes, outages);
  const incr = await checkIncr(servers, workload.lanes.find((lane) => lane.name === 'a incr') as Lane);
  const queue = await checkQueue(servers, workload.pushed, workload.delivered, chaos.start);
  const pubsub = checkPubsub(workload.published, workload.received, outages.standalone);
  const expiry = classifyExpiries(run.expirations, {
    timelines,
    serverWindows: chaos.serverWindows,
    standaloneOutages: outages.standalone,
    responsiveMs: (start, end) => monitor.responsiveMs(start, end),
    lateTokenRule: run.options.lateTokenRule,
    chaosStart: chaos.start,
  });
  const faultCounts: Record<string, number> = {};
  for (const fault of chaos.faults) faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
  const ioredisVersion = installedVersion(process.env.IOREDIS_MAJOR === '6' ? 'ioredis6' : 'ioredis');
  const redisVersion =
    /redis_version:(\S+)/.exec(String(await servers.redis.command('INFO', 'server')))?.[1] ?? 'unknown';
  return {
    seed: run.seed,
    minutes: run.options.minutes,
    startedAt: new Date(run.wallStart).toISOString(),
    wallSeconds: (Date.now() - run.wallStart) / 1000,
    environment: {
      node: process.version,
      ioredis: ioredisVersion,
      redis: redisVersion,
      cpus: os.cpus().length,
      loadAverage: os.loadavg(),
    },
    lifetimesUsed: [...chaos.lifetimesUsed].sort((x, y) => x - y),
    faults: [...chaos.faults].sort((x, y) => x.at - y.at),
    faultCounts,
    rotations: { standalone: timelines.standalone.tokens.length, cluster: timelines.cluster.tokens.length },
    reauthenticated: Object.fromEntries(providers.reauthenticated),
    reauthenticationFailed: providers.reauthenticationFailed,
    refreshFailed: providers.refreshFailed,
    lanes: lanes.lanes,
    ackedWritesLost: lanes.lost + incr.lost + queue.lost,
    incr: { acked: incr.acked, value: incr.value },
    queue,
    pubsub,
    expiry,
    lateTokensWithoutFault: lateTokensWithoutFault(timelines, chaos.tokenFaultWindows),
    failedOutsideMessages: top(lanes.failedOutsideMessages),
    recovery: chaos.recovery(),
    lanesNotRecovered,
    unhandledRejections: monitor.unhandledRejections,
    uncaughtExceptions: monitor.uncaughtExceptions,
    unhandledMessages: top(monitor.unhandledMessages),
    clientErrors: clients.errorCount,
    consumerFailures: workload.consumerFailures,
    clientErrorMessages: top(clients.errors),
    amr: {
      accepted: servers.amr.counters.accepted + servers.amrCluster.total('accepted'),
      authOk: servers.amr.counters.authOk + servers.amrCluster.total('authOk'),
      authFailed: servers.amr.counters.authFailed + servers.amrCluster.total('authFailed'),
    },
    eventLoopDelayMs: monitor.loopDelayMs(),
    stalls: monitor.stallFigures(),
  };
}
