/**
 * Command path: a client made by createEntraRedis against a plain `new Redis()` presenting the same token, both
 * ioredis, both straight to the same redis-server (no proxy to dilute a difference), and a second plain client as the
 * control. The three take turns unit by unit — one SET+GET, or one pipeline of 100 — in every order, so that
 * whatever the shared machine does affects all three alike. Each unit is timed; the throughput ratio is the ratio of
 * median unit times, taken over the whole run and, for the spread, over ten consecutive blocks of it.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { createEntraRedis } from '../lib/index.js';
import type { BenchWorld } from './support/bench-world.js';
import { closeClients, ErrorTally, whenReady } from './support/clients.js';
import { iqr, num, table, verdict, type TargetRow } from './support/markdown.js';
import { median, NumberList, summarize, type Summary } from './support/stats.js';

const DURATION_MS: Record<'sequential' | 'pipelined', number> = { sequential: 8_000, pipelined: 14_000 };
const WARMUP_MS = 500;
const BLOCKS = 10;
const PIPELINE_DEPTH = 100;
const VALUE = 'x'.repeat(16);
const TARGET_RATIO = 0.99;

type Mode = 'sequential' | 'pipelined';
type Name = 'plain' | 'control' | 'entra';
const NAMES: readonly Name[] = ['plain', 'control', 'entra'];

/** The three in a random order (Fisher–Yates): over many rounds each comes first, last, and after each other alike. */
function shuffled(): Name[] {
  const order = [...NAMES];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j] as Name, order[i] as Name];
  }
  return order;
}

export interface CommandPathMode {
  mode: Mode;
  /** Units each client ran. */
  units: number;
  /** Operations per second of one client, from the median unit time. */
  plainOps: number;
  entraOps: number;
  /** Throughput entra / plain (median unit time plain / entra): whole run, and per block. */
  ratio: number;
  ratioBlocks: Summary;
  /** The same for the control client against plain: what two identical clients differ by here. */
  control: number;
  controlBlocks: Summary;
  /** Unit time, µs: median (IQR) over all units. */
  plainUnit: Summary;
  entraUnit: Summary;
  /** CPU time of the process (user + system) per operation while each client's units ran, µs, and entra / plain. */
  plainCpu: number;
  entraCpu: number;
  cpuRatio: number;
  controlCpuRatio: number;
}

export interface CommandPathResult {
  durationMs: Record<Mode, number>;
  blocks: number;
  modes: CommandPathMode[];
  clientErrors: number;
  clientErrorMessages: string;
}

/** One unit of work: a SET and a GET awaited in turn, or one pipeline of SET+GET pairs. Returns its operations. */
async function unit(client: Redis, mode: Mode, key: string): Promise<number> {
  if (mode === 'sequential') {
    await client.set(key, VALUE);
    await client.get(key);
    return 2;
  }
  const pipeline = client.pipeline();
  for (let i = 0; i < PIPELINE_DEPTH / 2; i++) pipeline.set(key, VALUE).get(key);
  const results = await pipeline.exec();
  if (!results || results.some(([error]) => error)) throw new Error('a pipelined command failed');
  return PIPELINE_DEPTH;
}

async function runMode(clients: Record<Name, Redis>, mode: Mode): Promise<CommandPathMode> {
  const keyOf = (name: Name) => `bench:command-path:${name}`;
  for (const name of NAMES) {
    const end = performance.now() + WARMUP_MS / NAMES.length;
    while (performance.now() < end) await unit(clients[name], mode, keyOf(name));
  }
  const times: Record<Name, NumberList> = {
    plain: new NumberList(),
    control: new NumberList(),
    entra: new NumberList(),
  };
  const cpu: Record<Name, number> = { plain: 0, control: 0, entra: 0 };
  const ops: Record<Name, number> = { plain: 0, control: 0, entra: 0 };
  const end = performance.now() + DURATION_MS[mode];
  while (performance.now() < end) {
    for (const name of shuffled()) {
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      ops[name] += await unit(clients[name], mode, keyOf(name));
      times[name].push((performance.now() - start) * 1000);
      const used = process.cpuUsage(cpuStart);
      cpu[name] += used.user + used.system;
    }
  }
  const all = { plain: times.plain.toArray(), control: times.control.toArray(), entra: times.entra.toArray() };
  const units = all.plain.length;
  const blockRatio = (name: Name) => {
    const size = Math.floor(units / BLOCKS);
    const ratios: number[] = [];
    for (let b = 0; b < BLOCKS; b++) {
      const slice = (values: Float64Array) => values.subarray(b * size, (b + 1) * size);
      ratios.push(median(slice(all.plain)) / median(slice(all[name])));
    }
    return summarize(ratios);
  };
  const perUnit = mode === 'sequential' ? 2 : PIPELINE_DEPTH;
  const cpuPerOp = (name: Name) => cpu[name] / ops[name];
  return {
    mode,
    units,
    plainOps: (perUnit * 1e6) / median(all.plain),
    entraOps: (perUnit * 1e6) / median(all.entra),
    ratio: median(all.plain) / median(all.entra),
    ratioBlocks: blockRatio('entra'),
    control: median(all.plain) / median(all.control),
    controlBlocks: blockRatio('control'),
    plainUnit: summarize(all.plain),
    entraUnit: summarize(all.entra),
    plainCpu: cpuPerOp('plain'),
    entraCpu: cpuPerOp('entra'),
    cpuRatio: cpuPerOp('entra') / cpuPerOp('plain'),
    controlCpuRatio: cpuPerOp('control') / cpuPerOp('plain'),
  };
}

export async function runCommandPath(bench: BenchWorld, log: (line: string) => void): Promise<CommandPathResult> {
  const identity = await bench.directIdentity();
  const lifetime = bench.entra.tokenLifetimeSeconds;
  bench.entra.tokenLifetimeSeconds = 3_600; // no rotation during the runs
  const errors = new ErrorTally();
  const opened: Redis[] = [];
  try {
    const { provider } = bench.provider(identity);
    const token = await provider.getToken();
    const plainOptions = { ...bench.direct, username: token.username, password: token.password };
    const clients: Record<Name, Redis> = {
      plain: errors.watch(new Redis(plainOptions)),
      control: errors.watch(new Redis(plainOptions)),
      entra: errors.watch(createEntraRedis({ ...bench.direct, credentialsProvider: provider })),
    };
    opened.push(...Object.values(clients));
    await Promise.all(opened.map((client) => whenReady(client)));
    const modes: CommandPathMode[] = [];
    for (const mode of ['sequential', 'pipelined'] as const) {
      const result = await runMode(clients, mode);
      log(
        `  ${mode}: ${num(result.units)} units each; entra/plain ${num(result.ratio, 3)} (control ${num(result.control, 3)}), ` +
          `CPU per op ${num(result.cpuRatio, 3)} (control ${num(result.controlCpuRatio, 3)})`,
      );
      modes.push(result);
    }
    return {
      durationMs: DURATION_MS,
      blocks: BLOCKS,
      modes,
      clientErrors: errors.count,
      clientErrorMessages: errors.top(),
    };
  } finally {
    await closeClients(opened);
    bench.entra.tokenLifetimeSeconds = lifetime;
  }
}

/** How far a mode missed the target, and whether the control says that is more than noise. */
function missedBy(m: CommandPathMode): string {
  const noise = Math.max(Math.abs(1 - m.controlBlocks.min), Math.abs(1 - m.controlBlocks.max));
  const shortfall = TARGET_RATIO - m.ratio;
  return (
    `${num(shortfall * 100, 1)} points below ${TARGET_RATIO}; ` +
    (1 - m.ratio <= noise
      ? `within what the control differs by in a block (up to ${num(noise * 100, 1)} %): not distinguishable from noise here`
      : `more than the control differs by in any block (up to ${num(noise * 100, 1)} %)`)
  );
}

export function renderCommandPath(result: CommandPathResult): string {
  const name = (m: CommandPathMode) =>
    m.mode === 'sequential' ? 'sequential: SET then GET, 1 in flight' : `pipelined: ${PIPELINE_DEPTH} per exec`;
  const rows = result.modes.map((m) => [
    name(m),
    num(m.units),
    num(m.plainOps),
    num(m.entraOps),
    `${num(m.ratio, 3)} (${num(m.ratioBlocks.min, 3)}–${num(m.ratioBlocks.max, 3)})`,
    `${num(m.control, 3)} (${num(m.controlBlocks.min, 3)}–${num(m.controlBlocks.max, 3)})`,
    verdict(m.ratio >= TARGET_RATIO, missedBy(m)),
  ]);
  const detailRows = result.modes.map((m) => [
    name(m),
    iqr(m.plainUnit, 0),
    iqr(m.entraUnit, 0),
    num(m.plainCpu, 2),
    num(m.entraCpu, 2),
    num(m.cpuRatio, 3),
    num(m.controlCpuRatio, 3),
  ]);
  return [
    '## Command path',
    '',
    'One client each: `new Redis()` (plain), a second `new Redis()` (control) and `createEntraRedis()` (entra), all ' +
      'ioredis, authenticated with the same token as the same ACL user, straight to redis-server (no proxy on the path, ' +
      `so that a client-side cost is not diluted). For ${num(result.durationMs.sequential / 1000)} s (sequential) and ` +
      `${num(result.durationMs.pipelined / 1000)} s (pipelined) the three take turns unit by unit, in a new random order ` +
      "each round, so that the shared machine's ups and downs hit all three alike; every unit is timed. Throughput is operations per unit over the median unit time; the ratio entra / plain " +
      `is the ratio of median unit times, over the whole run, with its range over ${result.blocks} consecutive blocks. ` +
      'The control shows how far two identical clients differ in the same run. Target: entra / plain ≥ 0.99.',
    '',
    table(
      [
        'Workload',
        'units each',
        'plain ops/s',
        'entra ops/s',
        'entra / plain (blocks)',
        'control / plain (blocks)',
        'Target',
      ],
      rows,
    ),
    '',
    "Unit time, µs, median (IQR); CPU time of the process (user + system) per operation while each client's units " +
      'ran, µs, and its ratio. CPU time leaves out time spent waiting for a CPU; a ratio above 1 means the entra client ' +
      'costs more:',
    '',
    table(
      [
        'Workload',
        'plain unit µs',
        'entra unit µs',
        'plain CPU µs/op',
        'entra CPU µs/op',
        'CPU entra / plain',
        'CPU control / plain',
      ],
      detailRows,
    ),
    '',
    `Client errors during the runs: ${result.clientErrors}. On a client, the library wraps \`connect\`, \`emit\` and the ` +
      "`auth`/`hello` methods, and adds one shared `sendCommand` step that compares the length of each command's name " +
      '(to see MULTI, EXEC, DISCARD and CLIENT SETNAME): the only thing a GET or SET goes through.',
  ].join('\n');
}

export function commandPathTargets(result: CommandPathResult): TargetRow[] {
  return result.modes.map((m) => ({
    target: `${m.mode} GET/SET throughput, createEntraRedis / new Redis ≥ ${TARGET_RATIO}`,
    figure:
      `${num(m.ratio, 3)} (blocks ${num(m.ratioBlocks.min, 3)}–${num(m.ratioBlocks.max, 3)}); control ` +
      `${num(m.control, 3)}; CPU per op ${num(m.cpuRatio, 3)}`,
    met: m.ratio >= TARGET_RATIO,
    section: 'Command path',
  }));
}

export function commandPathProblems(result: CommandPathResult): string[] {
  return result.clientErrors > 0 ? [`${result.clientErrors} client error events (${result.clientErrorMessages})`] : [];
}
