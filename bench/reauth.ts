/**
 * Re-authentication: N clients share one provider, straight to redis-server, under a closed-loop GET load. For each
 * rotation: the time from the new token (the credential handing it over) until every connection reported
 * `reauthenticated`, and command latency right after the new token.
 *
 * Side by side, after each rotation: N plain `new Redis()` clients, connected to the same server as the same user,
 * send the same AUTH with `redis.auth()` all at once, under the same load: the floor that ioredis and the server set,
 * whatever a library does around it. Rotations and plain bursts alternate, so that the shared machine's ups and downs
 * hit both alike; each rotation is compared with the burst that follows it.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { FAN_OUT_BATCH_SIZE, setFanOutBatchSize } from '../lib/identity/token-fan-out.js';
import { createEntraRedis } from '../lib/index.js';
import type { BenchWorld } from './support/bench-world.js';
import { closeClients, ErrorTally, openClients, sleep } from './support/clients.js';
import { ClosedLoopLoad, latencyFigures } from './support/load.js';
import { num, range, table, verdict, type TargetRow } from './support/markdown.js';
import { RotationTracker, type Rotation } from './support/rotations.js';
import { summarize, type Summary } from './support/stats.js';
import { CATEGORIES, type Category, categorize, CpuProfiler, hrMicrosOf, type Window } from './support/cpu-profile.js';

interface Case {
  clients: number;
  /** `reauthJitter` of the clients, ms. */
  reauthJitter: number;
  /** Connections the provider hands a new token to per event-loop turn. */
  batchSize: number;
}

/**
 * Client counts with the defaults; then 1,000 clients with other fan-out batch sizes (all in one turn, as a plain
 * burst does) and with a jitter, to see what each trades.
 */
const CASES: readonly Case[] = [
  { clients: 10, reauthJitter: 0, batchSize: FAN_OUT_BATCH_SIZE },
  { clients: 100, reauthJitter: 0, batchSize: FAN_OUT_BATCH_SIZE },
  { clients: 1_000, reauthJitter: 0, batchSize: FAN_OUT_BATCH_SIZE },
  ...[20, 100, 250, 1_000]
    .filter((size) => size !== FAN_OUT_BATCH_SIZE)
    .map((batchSize) => ({ clients: 1_000, reauthJitter: 0, batchSize })),
  { clients: 1_000, reauthJitter: 100, batchSize: FAN_OUT_BATCH_SIZE },
];
/** `REAUTH_CLIENTS=1000` runs only the cases of that many clients. */
const ONLY_CLIENTS = process.env.REAUTH_CLIENTS ? Number(process.env.REAUTH_CLIENTS) : undefined;
const ROTATIONS = 10;
/** Tokens live 4 to 5 s (whole-second `exp`), refreshed at 70 %: a rotation every 2.8 to 3.5 s. */
const TOKEN_LIFETIME_S = 5;
const LOAD_CONCURRENCY = 16;
/** Commands started this long after the new token (or the start of a plain burst) count as "during" it. */
const ROTATION_WINDOW_MS = 800;
/** Steady state: commands started in [t0 - STEADY_FROM_MS, t0 - STEADY_TO_MS) of each rotation's t0. */
const STEADY_FROM_MS = 1_000;
const STEADY_TO_MS = 200;
/** The plain burst after a rotation starts this long after its new token: its window ends before the next steady one. */
const FLOOR_AFTER_MS = 1_000;
/** `REAUTH_PROFILE=1`: each case is CPU-profiled, and where the time of its rotations and plain bursts went is logged. */
const PROFILE = process.env.REAUTH_PROFILE === '1';

function logProfile(
  sampled: Record<'rotation' | 'plain', Record<Category, number>>,
  log: (line: string) => void,
): void {
  for (const category of CATEGORIES) {
    log(
      `    ${category}: rotation ${num(sampled.rotation[category], 2)} ms, plain ${num(sampled.plain[category], 2)} ms`,
    );
  }
}

/** Goals: re-authentication within this factor of the plain burst's time; p99 during it no worse than the burst's. */
const TARGET_TIME_RATIO = 1.1;
const TARGET_P99_RATIO = 1;

type Latency = ReturnType<typeof latencyFigures>;

export interface ReauthSize {
  clients: number;
  /** `reauthJitter` of the clients, ms. */
  reauthJitter: number;
  batchSize: number;
  rotations: number;
  /** New token to the last `reauthenticated`, ms. */
  reauthMs: Summary;
  /** New token to the last AUTH written (handed out in batches over several event-loop turns), ms. */
  writeMs: Summary;
  /** CPU time of the process over the same interval, ms. */
  writeCpuMs: Summary;
  /** Plain `redis.auth()` on N plain clients at once until the last reply, same load, ms. */
  floorMs: Summary;
  /** Its synchronous part (every AUTH written): wall and CPU ms. */
  floorWriteMs: Summary;
  floorWriteCpuMs: Summary;
  /** re-auth / plain floor, per rotation and the burst after it. */
  timeRatio: Summary;
  /** The application's commands (the load's) started during the re-authentication, and during the plain burst. */
  appCommandsDuring: Summary;
  appCommandsDuringFloor: Summary;
  steady: Latency;
  rotation: Latency;
  /** Commands started within the window after the start of each plain burst. */
  floor: Latency;
  /** Commands in flight at some moment between the new token and the last `reauthenticated`. */
  strict: Latency;
  /** p99 during the rotation / p99 during the plain burst after it, per pair. */
  p99VsFloor: Summary;
  /** The same over the pooled samples of all rotations and bursts: the headline figure. */
  pooledP99VsFloor: number;
  /** p99 during / p99 steady, pooled. */
  pooledP99VsSteady: number;
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
  /** performance.now() at its start. */
  startAt: number;
  /** Until the last reply, ms. */
  total: number;
  /** The synchronous part (every AUTH written), wall and CPU ms. */
  write: number;
  writeCpu: number;
}

/** Plain `redis.auth()` on every plain client at once. */
async function floorBurst(clients: Redis[], username: string, password: string): Promise<FloorBurst> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const pending = clients.map((client) => client.auth(username, password));
  const written = performance.now();
  const used = process.cpuUsage(cpu);
  // AUTH resolves 'OK' or rejects, so every reply was OK once they all resolved.
  await Promise.all(pending);
  const total = performance.now() - start;
  return { startAt: start, total, write: written - start, writeCpu: (used.user + used.system) / 1000 };
}

async function runCase(
  bench: BenchWorld,
  { clients: size, reauthJitter, batchSize }: Case,
  log: (line: string) => void,
): Promise<ReauthSize> {
  const identity = await bench.directIdentity();
  const errors = new ErrorTally();
  const previousBatchSize = setFanOutBatchSize(batchSize);
  let made: ReturnType<BenchWorld['provider']>;
  try {
    made = bench.provider(identity, { expirationRefreshRatio: 0.7, refreshJitter: 0 });
  } finally {
    setFanOutBatchSize(previousBatchSize);
  }
  const { provider, credential } = made;
  const clients = await openClients(size, () =>
    errors.watch(
      createEntraRedis({
        ...bench.direct,
        credentialsProvider: provider,
        ...(reauthJitter > 0 ? { reauthJitter } : {}),
      }),
    ),
  );
  const first = await provider.getToken();
  // The direct ACL user takes any password: the plain clients connect with the first token and re-AUTH with later ones.
  const plainClients = await openClients(size, () =>
    errors.watch(
      new Redis({
        ...bench.direct,
        username: first.username,
        password: first.password,
      }),
    ),
  );
  let tracker: RotationTracker | undefined;
  let load: ClosedLoopLoad | undefined;
  try {
    await clients[0]?.set('bench:reauth', 'value');
    tracker = new RotationTracker(provider, credential, () => size);
    const loadStart = performance.now();
    const running = new ClosedLoopLoad(
      (sequence) => (clients[sequence % size] as Redis).get('bench:reauth'),
      LOAD_CONCURRENCY,
    );
    load = running;
    await tracker.nextCompleted(); // warm-up rotation, not counted
    const rotations: Rotation[] = [];
    const floors: FloorBurst[] = [];
    const requests: number[] = [];
    const profiler = PROFILE ? new CpuProfiler() : undefined;
    const windows: Window<'rotation' | 'plain'>[] = [];
    profiler?.start();
    for (let i = 0; i < ROTATIONS; i++) {
      const rotation = await tracker.nextCompleted();
      windows.push({ kind: 'rotation', from: hrMicrosOf(rotation.tokenAt), to: hrMicrosOf(rotation.doneAt) });
      rotations.push(rotation);
      requests.push(bench.tokenRequests(identity.oid));
      await sleep(Math.max(0, rotation.tokenAt + FLOOR_AFTER_MS - performance.now()));
      const token = provider.currentToken();
      if (!token) throw new Error('no valid token for the plain burst');
      const floor = await floorBurst(plainClients, token.username, token.password);
      windows.push({ kind: 'plain', from: hrMicrosOf(floor.startAt), to: hrMicrosOf(floor.startAt + floor.total) });
      floors.push(floor);
    }
    if (profiler) logProfile(categorize(await profiler.stop(), windows, ['rotation', 'plain']), log);
    await sleep(ROTATION_WINDOW_MS);
    await running.stop();
    const loadEnd = performance.now();

    const during: Float64Array[] = [];
    const floorWindows: Float64Array[] = [];
    const steady: Float64Array[] = [];
    const strict: Float64Array[] = [];
    const p99VsFloor: number[] = [];
    rotations.forEach((rotation, i) => {
      const previous = i === 0 ? undefined : floors[i - 1];
      const steadyFrom = Math.max(
        rotation.tokenAt - STEADY_FROM_MS,
        previous ? previous.startAt + ROTATION_WINDOW_MS : loadStart,
      );
      const burst = floors[i] as FloorBurst;
      const d = running.startedIn(rotation.tokenAt, rotation.tokenAt + ROTATION_WINDOW_MS);
      const f = running.startedIn(burst.startAt, burst.startAt + ROTATION_WINDOW_MS);
      steady.push(running.startedIn(steadyFrom, rotation.tokenAt - STEADY_TO_MS));
      during.push(d);
      floorWindows.push(f);
      strict.push(running.overlapping(rotation.tokenAt, rotation.doneAt));
      p99VsFloor.push(latencyFigures(d).p99 / latencyFigures(f).p99);
    });
    const result: ReauthSize = {
      clients: size,
      reauthJitter,
      batchSize,
      rotations: rotations.length,
      reauthMs: summarize(rotations.map((r) => r.doneAt - r.tokenAt)),
      writeMs: summarize(rotations.map((r) => r.writtenAt - r.tokenAt)),
      writeCpuMs: summarize(rotations.map((r) => r.writeCpuMs)),
      floorMs: summarize(floors.map((f) => f.total)),
      floorWriteMs: summarize(floors.map((f) => f.write)),
      floorWriteCpuMs: summarize(floors.map((f) => f.writeCpu)),
      timeRatio: summarize(rotations.map((r, i) => (r.doneAt - r.tokenAt) / (floors[i] as FloorBurst).total)),
      appCommandsDuring: summarize(rotations.map((r) => running.startedIn(r.tokenAt, r.doneAt).length)),
      appCommandsDuringFloor: summarize(floors.map((f) => running.startedIn(f.startAt, f.startAt + f.total).length)),
      steady: latencyFigures(concat(steady)),
      rotation: latencyFigures(concat(during)),
      floor: latencyFigures(concat(floorWindows)),
      strict: latencyFigures(concat(strict)),
      p99VsFloor: summarize(p99VsFloor),
      pooledP99VsFloor: Number.NaN,
      pooledP99VsSteady: Number.NaN,
      inFlightShare: Number.NaN,
      tokenRequestsPerRotation: ((requests.at(-1) ?? 0) - (requests[0] ?? 0)) / Math.max(1, requests.length - 1),
      byReconnect: rotations.reduce((sum, r) => sum + r.byReconnect, 0),
      reauthenticationFailures: tracker.reauthenticationFailures,
      loadErrors: running.errors,
      loadOpsPerSecond: (load.completed * 1000) / (loadEnd - loadStart),
      clientErrors: errors.count,
      clientErrorMessages: errors.top(),
    };
    result.pooledP99VsFloor = result.rotation.p99 / result.floor.p99;
    result.pooledP99VsSteady = result.rotation.p99 / result.steady.p99;
    result.inFlightShare = result.strict.n / Math.max(1, result.rotation.n);
    log(
      `  N=${label(result)}: re-auth ${range(result.reauthMs, 1)} ms, plain ${range(result.floorMs, 1)} ms, ` +
        `ratio ${range(result.timeRatio, 2)}; p99 rotation ${num(result.rotation.p99, 2)} ms, plain ${num(result.floor.p99, 2)} ms, ` +
        `steady ${num(result.steady.p99, 2)} ms`,
    );
    return result;
  } finally {
    await load?.stop();
    tracker?.stop();
    await closeClients(clients);
    await closeClients(plainClients);
    provider.dispose();
  }
}

export async function runReauth(bench: BenchWorld, log: (line: string) => void): Promise<ReauthResult> {
  const lifetime = bench.entra.tokenLifetimeSeconds;
  bench.entra.tokenLifetimeSeconds = TOKEN_LIFETIME_S;
  try {
    const sizes: ReauthSize[] = [];
    for (const c of CASES)
      if (ONLY_CLIENTS === undefined || c.clients === ONLY_CLIENTS) sizes.push(await runCase(bench, c, log));
    return { sizes };
  } finally {
    bench.entra.tokenLifetimeSeconds = lifetime;
  }
}

/** The row label of a case. */
function label(s: ReauthSize): string {
  const extras = [
    ...(s.batchSize !== FAN_OUT_BATCH_SIZE ? [`batches of ${num(s.batchSize)}`] : []),
    ...(s.reauthJitter > 0 ? [`reauthJitter ${s.reauthJitter} ms`] : []),
  ];
  return [num(s.clients), ...extras].join(', ');
}

/** The cases with the library's defaults, by N. */
function defaultCase(result: ReauthResult, clients: number): ReauthSize | undefined {
  return result.sizes.find((s) => s.clients === clients && s.reauthJitter === 0 && s.batchSize === FAN_OUT_BATCH_SIZE);
}

export function renderReauth(result: ReauthResult): string {
  const ms = (latency: Latency) => `${num(latency.p50, 2)} / ${num(latency.p99, 2)} / ${num(latency.max, 1)}`;
  const timeRows = result.sizes.map((s) => [
    label(s),
    range(s.reauthMs, 1),
    range(s.floorMs, 1),
    range(s.timeRatio, 2),
    `${num(s.appCommandsDuring.median)} / ${num(s.appCommandsDuringFloor.median)}`,
    range(s.writeMs, 1),
    range(s.writeCpuMs, 1),
    range(s.floorWriteMs, 1),
    range(s.floorWriteCpuMs, 1),
    num(s.tokenRequestsPerRotation, 2),
    `${s.byReconnect} / ${s.reauthenticationFailures}`,
  ]);
  const latencyRows = result.sizes.map((s) => [
    label(s),
    num(s.loadOpsPerSecond),
    ms(s.steady),
    ms(s.rotation),
    ms(s.floor),
    `${num(s.pooledP99VsFloor, 2)} (${num(s.p99VsFloor.min, 2)}–${num(s.p99VsFloor.max, 2)})`,
    num(s.pooledP99VsSteady, 2),
    `${ms(s.strict)} (${num(s.strict.n)} cmds)`,
    `${num(s.inFlightShare * 100, 1)} %`,
    `${s.loadErrors}`,
  ]);
  const notes: string[] = [];
  for (const clients of [100, 1_000]) {
    const s = defaultCase(result, clients);
    if (!s) continue;
    notes.push(
      `- ${num(clients)} connections within ${TARGET_TIME_RATIO}× of plain ioredis: ${verdict(
        s.timeRatio.median <= TARGET_TIME_RATIO,
        `median ratio ${num(s.timeRatio.median, 2)} (${num(s.timeRatio.min, 2)}–${num(s.timeRatio.max, 2)}): ` +
          `${range(s.reauthMs, 1, ' ms')} against ${range(s.floorMs, 1, ' ms')}.`,
      )}` +
        ` p99 during the rotation no worse than during the plain burst: ${verdict(
          s.pooledP99VsFloor <= TARGET_P99_RATIO,
          `${num(s.pooledP99VsFloor, 2)}× (${num(s.rotation.p99, 2)} ms against ${num(s.floor.p99, 2)} ms).`,
        )}`,
    );
  }
  const batches = result.sizes
    .filter((s) => s.clients === 1_000 && s.reauthJitter === 0)
    .sort((a, b) => a.batchSize - b.batchSize);
  if (batches.length > 1) {
    notes.push(
      `- Fan-out batch size at 1,000 connections (${FAN_OUT_BATCH_SIZE} is the default): ` +
        batches
          .map(
            (s) =>
              `${num(s.batchSize)}: time ratio ${num(s.timeRatio.median, 2)}, p99 vs plain ${num(s.pooledP99VsFloor, 2)}×, ` +
              `slowest in-flight command ${num(s.strict.max, 1)} ms`,
          )
          .join('; ') +
        '.',
    );
  }
  const jittered = result.sizes.find((s) => s.clients === 1_000 && s.reauthJitter > 0);
  if (jittered) {
    notes.push(
      `- With \`reauthJitter: ${jittered.reauthJitter}\` the AUTHs are spread over up to ${jittered.reauthJitter} ms: p99 vs ` +
        `plain ${num(jittered.pooledP99VsFloor, 2)}×, slowest in-flight command ${num(jittered.strict.max, 1)} ms, and ` +
        `re-authentication of all 1,000 takes ${range(jittered.reauthMs, 1, ' ms')}.`,
    );
  }
  return [
    '## Re-authentication',
    '',
    `N clients made by \`createEntraRedis()\` share one provider and connect straight to redis-server; tokens live ` +
      `${TOKEN_LIFETIME_S - 1} to ${TOKEN_LIFETIME_S} s and are refreshed at 70 % of their life (refresh jitter 0, so rotations are evenly ` +
      `spaced). A closed loop of ${LOAD_CONCURRENCY} concurrent GETs, spread round-robin over the clients, runs throughout. ` +
      `${ROTATIONS} rotations per row after one warm-up rotation; ${FLOOR_AFTER_MS} ms after each new token, N plain \`new Redis()\` ` +
      'clients, connected to the same server as the same user, send the same AUTH at once (the *plain* burst), so that ' +
      "rotations and plain bursts alternate under the same load. Nobody subscribes to the library's tracing channels. " +
      'Cells: median (min–max) over rotations.',
    '',
    '- *re-auth*: from the moment the credential hands over the new token until the last connection emitted ' +
      '`reauthenticated` (the AUTH reply `OK` has been read).',
    '- *plain*: `redis.auth(user, token)` called on the N plain clients at once, until the last reply: what ioredis and ' +
      'redis-server need for N AUTHs with nothing of this library on their path. *ratio*: re-auth / plain, each rotation ' +
      'against the burst after it. *app commands*: commands of the load started during the re-authentication / during ' +
      'the plain burst (medians): the fan-out lets them run between its batches, and their work falls inside the ' +
      're-authentication; the plain burst holds them off while it writes.',
    `- *writing*: from the new token until the provider handed it to the last connection, which writes its AUTH then ` +
      `(${FAN_OUT_BATCH_SIZE} connections per event-loop turn by default). *writing, CPU*: CPU time the process spent in that ` +
      'interval, reading replies included; when it is well below the wall time, the difference was spent waiting for a CPU ' +
      '(the machine is shared). *plain writing*: the synchronous part of the plain burst, the N `auth()` calls.',
    '',
    table(
      [
        'N',
        're-auth ms',
        'plain ms',
        'ratio',
        'app commands',
        'writing ms',
        'writing, CPU ms',
        'plain writing ms',
        'plain writing, CPU ms',
        'token requests / rotation',
        'by reconnect / failed',
      ],
      timeRows,
    ),
    '',
    `Command latency, ms, p50 / p99 / max. *steady*: commands started ${STEADY_FROM_MS}–${STEADY_TO_MS} ms before each ` +
      `new token; *rotation*: started within ${ROTATION_WINDOW_MS} ms after it; *plain*: started within ${ROTATION_WINDOW_MS} ms ` +
      'after the start of each plain burst; *in flight*: commands in flight at some moment between the new token and the ' +
      'last `reauthenticated`. *p99 vs plain*: rotation / plain over the samples of all windows pooled, with the range of ' +
      'the per-rotation ratios; *p99 vs steady*: rotation / steady, pooled. *in flight share*: the in-flight commands as a ' +
      "share of the rotation windows' commands; the p99 of a window moves when that share nears 1 %.",
    '',
    table(
      [
        'N',
        'load ops/s',
        'steady',
        'rotation',
        'plain',
        'p99 vs plain',
        'p99 vs steady',
        'in flight during re-auth',
        'in flight share',
        'load errors',
      ],
      latencyRows,
    ),
    '',
    ...notes,
  ].join('\n');
}

export function reauthTargets(result: ReauthResult): TargetRow[] {
  return [100, 1_000].flatMap((clients) => {
    const s = defaultCase(result, clients);
    if (!s) return [];
    return [
      {
        target: `${num(clients)} connections re-authenticated within ${TARGET_TIME_RATIO}× of plain ioredis sending the same AUTHs`,
        figure:
          `${num(s.timeRatio.median, 2)} (${num(s.timeRatio.min, 2)}–${num(s.timeRatio.max, 2)}); ` +
          `${num(s.reauthMs.median, 1)} ms against ${num(s.floorMs.median, 1)} ms`,
        met: s.timeRatio.median <= TARGET_TIME_RATIO,
        section: 'Re-authentication',
      },
      {
        target: `p99 of commands during a rotation of ${num(clients)} no worse than during the plain AUTH burst`,
        figure:
          `${num(s.pooledP99VsFloor, 2)}× (per rotation ${num(s.p99VsFloor.min, 2)}–${num(s.p99VsFloor.max, 2)}); ` +
          `${num(s.rotation.p99, 2)} ms against ${num(s.floor.p99, 2)} ms`,
        met: s.pooledP99VsFloor <= TARGET_P99_RATIO,
        section: 'Re-authentication',
      },
    ];
  });
}

export function reauthProblems(result: ReauthResult): string[] {
  return result.sizes.flatMap((s) => [
    ...(s.loadErrors > 0 ? [`N=${label(s)}: ${s.loadErrors} failed GETs`] : []),
    ...(s.clientErrors > 0 ? [`N=${label(s)}: ${s.clientErrors} client error events (${s.clientErrorMessages})`] : []),
    ...(s.reauthenticationFailures > 0
      ? [`N=${label(s)}: ${s.reauthenticationFailures} reauthenticationFailed events`]
      : []),
  ]);
}
