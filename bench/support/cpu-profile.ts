/**
 * The CPU profiler of `node --cpu-prof` (node:inspector) run over a whole benchmark, and its samples counted by
 * category inside named windows (a rotation, a plain burst): where the time of each went.
 */
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';

export const SAMPLING_INTERVAL_US = 50;

export const CATEGORIES = [
  'socket write',
  'library code',
  'ioredis',
  'token request (@azure/identity, MSAL)',
  'emulators (lib/testing)',
  'Node.js (streams, net, http, timers)',
  'garbage collection',
  'idle, socket reads',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

interface CallFrame {
  functionName: string;
  url: string;
}

export interface Profile {
  nodes: { id: number; callFrame: CallFrame }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** An interval of the run, on the profiler's clock (µs, that of process.hrtime). */
export interface Window<Kind extends string> {
  kind: Kind;
  from: number;
  to: number;
}

/** Now on the profiler's clock, µs. */
export const hrMicros = (): number => Number(process.hrtime.bigint() / 1000n);

/** A performance.now() value (ms) on the profiler's clock (µs). */
export function hrMicrosOf(performanceNow: number): number {
  return hrMicros() - (performance.now() - performanceNow) * 1000;
}

/** The category of a sample by the function it was taken in (its own time, not its callees'). */
function categoryOf({ functionName, url }: CallFrame): Category {
  if (/^write(v|Buffer|Utf8String|Latin1String|AsciiString|Ucs2String)$/.test(functionName)) return 'socket write';
  if (functionName === '(garbage collector)') return 'garbage collection';
  // libuv's poll phase, where V8 counts the process idle, also reads the sockets
  if (functionName === '(idle)') return 'idle, socket reads';
  if (/\/node_modules\/(ioredis|redis-parser|denque|standard-as-callback|cluster-key-slot)\//.test(url))
    return 'ioredis';
  if (/\/node_modules\/(@azure|@typespec)\//.test(url)) return 'token request (@azure/identity, MSAL)';
  if (url.includes('/lib/testing/')) return 'emulators (lib/testing)';
  if (url.includes('/lib/') && !url.includes('/node_modules/')) return 'library code';
  if (url.startsWith('node:')) return 'Node.js (streams, net, http, timers)';
  return 'other';
}

/** The profiler of this process (a session on the main thread answers synchronously). */
export class CpuProfiler {
  readonly #session = new Session();

  start(): void {
    this.#session.connect();
    this.#session.post('Profiler.enable');
    this.#session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
    this.#session.post('Profiler.start');
  }

  stop(): Promise<Profile> {
    return new Promise((resolve, reject) => {
      this.#session.post('Profiler.stop', (error, result) => {
        this.#session.disconnect();
        if (error) reject(error);
        else resolve(result.profile as Profile);
      });
    });
  }
}

/** Sampled ms per category inside the windows of each kind, as a mean per window. Windows must not overlap. */
export function categorize<Kind extends string>(
  profile: Profile,
  windows: readonly Window<Kind>[],
  kinds: readonly Kind[],
): Record<Kind, Record<Category, number>> {
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const totals = Object.fromEntries(
    kinds.map((kind) => [kind, Object.fromEntries(CATEGORIES.map((c) => [c, 0]))]),
  ) as Record<Kind, Record<Category, number>>;
  const ordered = [...windows].sort((a, b) => a.from - b.from);
  let at = profile.startTime;
  let windowIndex = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    while (windowIndex < ordered.length && (ordered[windowIndex] as Window<Kind>).to < at) windowIndex++;
    const window = ordered[windowIndex];
    if (!window || at < window.from) continue;
    const frame = frames.get(profile.samples[i] as number);
    if (!frame) continue;
    // a sample stands for the time until the next one
    const span = (profile.timeDeltas[i + 1] ?? SAMPLING_INTERVAL_US) / 1000;
    totals[window.kind][categoryOf(frame)] += span;
  }
  for (const kind of kinds) {
    const count = windows.filter((w) => w.kind === kind).length;
    for (const category of CATEGORIES) totals[kind][category] /= Math.max(1, count);
  }
  return totals;
}
