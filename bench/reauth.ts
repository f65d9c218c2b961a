/**
 * Re-authentication: N clients share one provider, straight to redis-server, under a closed-loop GET load. For each
 * rotation: the time from the new token (the credential handing it over) until every connection reported
 * `reauthenticated`, and command latency right after the rotation against the second before it.
 *
 * For comparison, the same clients then send the same AUTH with plain `redis.auth()` all at once, under the same
 * load: the floor that ioredis and the server set, whatever a library does around it.
 */
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { FAN_OUT_BATCH_SIZE } from '../lib/identity/token-fan-out.js';
import { createEntraRedis } from '../lib/index.js';
import type { BenchWorld } from './support/bench-world.js';
import { closeClients, ErrorTally, openClients, sleep } from './support/clients.js';
import { ClosedLoopLoad, latencyFigures } from './support/load.js';
import { num, range, table, verdict, type TargetRow } from './support/markdown.js';
import { RotationTracker, type Rotation } from './support/rotations.js';
import { summarize, type Summary } from './support/stats.js';

/** Client counts, with the default `reauthJitter` (0); the last one again with a jitter, to see what it trades. */
const CASES: readonly { clients: number; reauthJitter: number }[] = [
  { clients: 10, reauthJitter: 0 }, { clients: 100, reauthJitter: 0 }, { clients: 1_000, reauthJitter: 0 },
  { clients: 1_000, reauthJitter: 100 },
];
const ROTATIONS = 5;
const TOKEN_LIFETIME_S = 3;
const LOAD_CONCURRENCY = 16;
/** Commands started this long after the new token count as "during the rotation". */
const ROTATION_WINDOW_MS = 800;
/** Steady state: commands started in [t0 - STEADY_FROM_MS, t0 - STEADY_TO_MS) of each rotation's t0. */
const STEADY_FROM_MS = 1_000;
const STEADY_TO_MS = 200;
const FLOOR_BURSTS = 5;
const TARGET_MS_AT_1000 = 20;
const TARGET_P99_RATIO = 1.2;

type Latency = ReturnType<typeof latencyFigures>;

export interface ReauthSize {
  clients: number;
  /** `reauthJitter` of the clients, ms. */
  reauthJitter: number;
  rotations: number;
  /** New token to the last `reauthenticated`, ms. */
  reauthMs: Summary;
  /** New token to the last AUTH written (handed out in batches over several event-loop turns), ms. */
  writeMs: Summary;
  /** CPU time of the process over the same interval, ms. */
  writeCpuMs: Summary;
  /** Plain `redis.auth()` on every client at once until the last reply, same load, ms. */
  floorMs: Summary;
  /** Its synchronous part (every AUTH written): wall and CPU ms. */
  floorWriteMs: Summary;
  floorWriteCpuMs: Summary;
  steady: Latency;
  rotation: Latency;
  /** Commands in flight at some moment between the new token and the last `reauthenticated`. */
  strict: Latency;
  /** p99 during / p99 steady, per rotation. */
  p99Ratio: Summary;
  /** The same over the pooled samples of all rotations: the headline figure. */
  pooledP99Ratio: number;
  /** Share of the rotation windows' commands that were in flight during a re-authentication. */
  inFlightShare: number;
  tokenRequestsPerRotation: number;
  byReconnect: number;
  reauthenticationFailures: number;
  loadErrors: number;
  loadOpsPerSecond: number;
  clientErrors: number;
  clientErrorMessages: string;
}

export interface ReauthResult {
  sizes: ReauthSize[];
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out.sort();
}

interface FloorBurst {
  /** Until the last reply, ms. */
  total: number;
  /** The synchronous part (every AUTH written), wall and CPU ms. */
  write: number;
  writeCpu: number;
}

/** Plain `redis.auth()` on every client at once, `FLOOR_BURSTS` times. */
async function measureFloor(clients: Redis[], username: string, password: string): Promise<FloorBurst[]> {
  const bursts: FloorBurst[] = [];
  for (let burst = 0; burst < FLOOR_BURSTS; burst++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const pending = clients.map((client) => client.auth(username, password));
    const written = performance.now();
    const used = process.cpuUsage(cpu);
    const replies = await Promise.all(pending);
    bursts.push({ total: performance.now() - start, write: written - start, writeCpu: (used.user + used.system) / 1000 });
    if (replies.some((reply) => reply !== 'OK')) throw new Error('a plain AUTH was not answered OK');
    await sleep(300);
  }
  return bursts;
}

async function runCase(bench: BenchWorld, size: number, reauthJitter: number, log: (line: string) => void): Promise<ReauthSize> {
  const identity = await bench.directIdentity();
  const errors = new ErrorTally();
  const { provider, credential } = bench.provider(identity, { expirationRefreshRatio: 0.7, refreshJitter: 0 });
  const clients = await openClients(size, () => errors.watch(createEntraRedis({
    ...bench.direct, credentialsProvider: provider, ...(reauthJitter > 0 ? { reauthJitter } : {}),
  })));
  let tracker: RotationTracker | undefined;
  let load: ClosedLoopLoad | undefined;
  try {
    await clients[0]?.set('bench:reauth', 'value');
    tracker = new RotationTracker(provider, credential, () => size);
    const loadStart = performance.now();
    load = new ClosedLoopLoad((sequence) => (clients[sequence % size] as Redis).get('bench:reauth'), LOAD_CONCURRENCY);
    await tracker.nextCompleted(); // warm-up rotation, not counted
    const rotations: Rotation[] = [];
    const requests: number[] = [];
    for (let i = 0; i < ROTATIONS; i++) {
      rotations.push(await tracker.nextCompleted());
      requests.push(bench.tokenRequests(identity.oid));
    }
    await sleep(ROTATION_WINDOW_MS);
    const token = await provider.getToken();
    const floors = await measureFloor(clients, token.username, token.password);
    await load.stop();
    const loadEnd = performance.now();

    const during: Float64Array[] = [];
    const steady: Float64Array[] = [];
    const strict: Float64Array[] = [];
    const ratios: number[] = [];
    rotations.forEach((rotation, i) => {
      const previous = i === 0 ? undefined : rotations[i - 1];
      const steadyFrom = Math.max(rotation.tokenAt - STEADY_FROM_MS, previous ? previous.tokenAt + ROTATION_WINDOW_MS : loadStart);
      const s = load!.startedIn(steadyFrom, rotation.tokenAt - STEADY_TO_MS);
      const d = load!.startedIn(rotation.tokenAt, rotation.tokenAt + ROTATION_WINDOW_MS);
      steady.push(s);
      during.push(d);
      strict.push(load!.overlapping(rotation.tokenAt, rotation.doneAt));
      ratios.push(latencyFigures(d).p99 / latencyFigures(s).p99);
    });
    const result: ReauthSize = {
      clients: size,
      reauthJitter,
      rotations: rotations.length,
      reauthMs: summarize(rotations.map((r) => r.doneAt - r.tokenAt)),
      writeMs: summarize(rotations.map((r) => r.writtenAt - r.tokenAt)),
      writeCpuMs: summarize(rotations.map((r) => r.writeCpuMs)),
      floorMs: summarize(floors.map((f) => f.total)),
      floorWriteMs: summarize(floors.map((f) => f.write)),
      floorWriteCpuMs: summarize(floors.map((f) => f.writeCpu)),
      steady: latencyFigures(concat(steady)),
      rotation: latencyFigures(concat(during)),
      strict: latencyFigures(concat(strict)),
      p99Ratio: summarize(ratios),
      pooledP99Ratio: Number.NaN,
      inFlightShare: Number.NaN,
      tokenRequestsPerRotation: ((requests.at(-1) ?? 0) - (requests[0] ?? 0)) / Math.max(1, requests.length - 1),
      byReconnect: rotations.reduce((sum, r) => sum + r.byReconnect, 0),
      reauthenticationFailures: tracker.reauthenticationFailures,
      loadErrors: load.errors,
      loadOpsPerSecond: (load.completed * 1000) / (loadEnd - loadStart),
      clientErrors: errors.count,
      clientErrorMessages: errors.top(),
    };
    result.pooledP99Ratio = result.rotation.p99 / result.steady.p99;
    result.inFlightShare = result.strict.n / Math.max(1, result.rotation.n);
    log(`  N=${label(result)}: re-auth ${range(result.reauthMs, 1)} ms (floor ${range(result.floorMs, 1)}), `
      + `p99 steady ${num(result.steady.p99, 2)} ms, during ${num(result.rotation.p99, 2)} ms`);
    return result;
  } finally {
    await load?.stop();
    tracker?.stop();
    await closeClients(clients);
    provider.dispose();
  }
}

export async function runReauth(bench: BenchWorld, log: (line: string) => void): Promise<ReauthResult> {
  const lifetime = bench.entra.tokenLifetimeSeconds;
  bench.entra.tokenLifetimeSeconds = TOKEN_LIFETIME_S;
  try {
    const sizes: ReauthSize[] = [];
    for (const { clients, reauthJitter } of CASES) sizes.push(await runCase(bench, clients, reauthJitter, log));
    return { sizes };
  } finally {
    bench.entra.tokenLifetimeSeconds = lifetime;
  }
}

/** The row label of a case. */
function label(s: ReauthSize): string {
  return s.reauthJitter > 0 ? `${num(s.clients)}, reauthJitter ${s.reauthJitter} ms` : num(s.clients);
}

export function renderReauth(result: ReauthResult): string {
  const ms = (latency: Latency) => `${num(latency.p50, 2)} / ${num(latency.p99, 2)} / ${num(latency.max, 1)}`;
  const timeRows = result.sizes.map((s) => [
    label(s), range(s.reauthMs, 1), range(s.writeMs, 1), range(s.writeCpuMs, 1), range(s.floorMs, 1),
    range(s.floorWriteMs, 1), range(s.floorWriteCpuMs, 1),
    num(s.tokenRequestsPerRotation, 2), `${s.byReconnect} / ${s.reauthenticationFailures}`,
  ]);
  const latencyRows = result.sizes.map((s) => [
    label(s), num(s.loadOpsPerSecond), ms(s.steady), ms(s.rotation), `${ms(s.strict)} (${num(s.strict.n)} cmds)`,
    `${num(s.pooledP99Ratio, 2)} (${num(s.p99Ratio.min, 2)}–${num(s.p99Ratio.max, 2)})`,
    `${num(s.inFlightShare * 100, 1)} %`, `${s.loadErrors}`,
  ]);
  const largest = result.sizes.find((s) => s.clients === 1_000 && s.reauthJitter === 0);
  const jittered = result.sizes.find((s) => s.clients === 1_000 && s.reauthJitter > 0);
  const notes: string[] = [];
  if (largest) {
    const met = largest.reauthMs.median < TARGET_MS_AT_1000;
    const floorShare = largest.floorMs.median / largest.reauthMs.median;
    notes.push(`- 1,000 connections in under ${TARGET_MS_AT_1000} ms: ${verdict(met,
      `median ${num(largest.reauthMs.median, 1)} ms, ${num(largest.reauthMs.median - TARGET_MS_AT_1000, 1)} ms over. `
      + `Plain ioredis needs ${num(largest.floorMs.median, 1)} ms for the same 1,000 AUTHs under the same load `
      + `(${num(floorShare * 100, 0)} % of the library's time). The library writes the 1,000 AUTHs in batches of `
      + `${FAN_OUT_BATCH_SIZE} per event-loop turn, the last one ${num(largest.writeMs.median, 1)} ms after the new token `
      + `(${num(largest.writeCpuMs.median, 1)} ms of CPU by then, replies already being read between batches), against `
      + `${num(largest.floorWriteCpuMs.median, 1)} ms of CPU for the plain calls, all in one turn. `
      + 'The rest of the time is the server answering and 1,000 sockets being read, one reply each.')}`);
    const p99met = largest.pooledP99Ratio <= TARGET_P99_RATIO;
    notes.push(`- p99 during a rotation within ${TARGET_P99_RATIO}× of steady state (1,000 clients): ${verdict(p99met,
      `${num(largest.pooledP99Ratio, 2)}× (p99 ${num(largest.rotation.p99, 2)} ms against ${num(largest.steady.p99, 2)} ms), `
      + `${num((largest.pooledP99Ratio - TARGET_P99_RATIO) * 100, 0)} points over.`)} Commands in flight during the `
      + `re-authentication were ${num(largest.inFlightShare * 100, 1)} % of the window's commands, and the slowest took `
      + `${num(largest.strict.max, 1)} ms (p99 of the in-flight ones ${num(largest.strict.p99, 1)} ms): they wait behind `
      + 'batches of AUTH writes and the reading of their replies, on two CPUs shared with redis-server answering 1,000 AUTHs.'
      + (jittered ? ` With \`reauthJitter: ${jittered.reauthJitter}\` the writes are spread over up to `
        + `${jittered.reauthJitter} ms: p99 ratio ${num(jittered.pooledP99Ratio, 2)}×, slowest in-flight command `
        + `${num(jittered.strict.max, 1)} ms, and re-authentication of all 1,000 takes ${num(jittered.reauthMs.median, 1)} ms.` : ''));
  }
  return [
    '## Re-authentication',
    '',
    `N clients made by \`createEntraRedis()\` share one provider and connect straight to redis-server; tokens live `
    + `${TOKEN_LIFETIME_S} s and are refreshed at 70 % of their life (refresh jitter 0, so rotations are evenly spaced); `
    + 'default `reauthJitter` (0) except in the last row. '
    + `A closed loop of ${LOAD_CONCURRENCY} concurrent GETs, spread round-robin over the `
    + `clients, runs throughout. ${ROTATIONS} rotations per N after one warm-up rotation. Cells: median (min–max) `
    + 'over rotations.',
    '',
    '- *re-auth*: from the moment the credential hands over the new token until the last connection emitted '
    + '`reauthenticated` (the AUTH reply `OK` has been read).',
    `- *writing*: from the new token until the last AUTH was written (the library hands a new token to ${FAN_OUT_BATCH_SIZE} `
    + 'connections per event-loop turn; timed by the `end` of each AUTH\'s trace on the `ioredis-entraid:reauth` channel, '
    + 'which this bench subscribes to). *writing, CPU*: CPU time the process spent in that interval, reading replies '
    + 'included; when it is well below the wall time, the difference was spent waiting for a CPU (the machine is shared).',
    '- *plain floor*: after the rotations, under the same load, `redis.auth(user, token)` is called on every client at '
    + `once and awaited (${FLOOR_BURSTS} bursts): what ioredis and redis-server need for N AUTHs with no library around them; `
    + '*plain writing* is its synchronous part, the N `auth()` calls.',
    '',
    table(['N', 're-auth ms', 'writing ms', 'writing, CPU ms', 'plain floor ms', 'plain writing ms', 'plain writing, CPU ms', 'token requests / rotation', 'by reconnect / failed'], timeRows),
    '',
    `Command latency, ms, p50 / p99 / max. *steady*: commands started ${STEADY_FROM_MS}–${STEADY_TO_MS} ms before each `
    + `new token; *rotation*: started within ${ROTATION_WINDOW_MS} ms after it; *in flight*: commands in flight at some `
    + 'moment between the new token and the last `reauthenticated`. p99 ratio: rotation / steady over the samples of '
    + 'all rotations pooled, with the range of the per-rotation ratios. *in flight share*: the in-flight commands as a '
    + 'share of the rotation windows\' commands; the p99 of a window moves when that share nears 1 %.',
    '',
    table(['N', 'load ops/s', 'steady', 'rotation', 'in flight during re-auth', 'p99 ratio', 'in flight share', 'load errors'], latencyRows),
    '',
    ...notes,
  ].join('\n');
}

export function reauthTargets(result: ReauthResult): TargetRow[] {
  const largest = result.sizes.find((s) => s.clients === 1_000 && s.reauthJitter === 0);
  if (!largest) return [];
  return [
    {
      target: `1,000 connections re-authenticated in under ${TARGET_MS_AT_1000} ms`,
      figure: `${range(largest.reauthMs, 1, ' ms')}; plain ioredis floor ${num(largest.floorMs.median, 1)} ms`,
      met: largest.reauthMs.median < TARGET_MS_AT_1000,
      section: 'Re-authentication',
    },
    {
      target: `p99 latency during a rotation within ${TARGET_P99_RATIO}× of steady state (1,000 clients)`,
      figure: `${num(largest.pooledP99Ratio, 2)}× (per rotation ${num(largest.p99Ratio.min, 2)}–${num(largest.p99Ratio.max, 2)}); `
        + `slowest in-flight command ${num(largest.strict.max, 0)} ms`,
      met: largest.pooledP99Ratio <= TARGET_P99_RATIO,
      section: 'Re-authentication',
    },
  ];
}

export function reauthProblems(result: ReauthResult): string[] {
  return result.sizes.flatMap((s) => [
    ...(s.loadErrors > 0 ? [`N=${label(s)}: ${s.loadErrors} failed GETs`] : []),
    ...(s.clientErrors > 0 ? [`N=${label(s)}: ${s.clientErrors} client error events (${s.clientErrorMessages})`] : []),
    ...(s.reauthenticationFailures > 0 ? [`N=${label(s)}: ${s.reauthenticationFailures} reauthenticationFailed events`] : []),
  ]);
}
