/** A closed-loop command load that records when each command started and ended. */
import { performance } from 'node:perf_hooks';
import { NumberList, sortedQuantile } from './stats.js';

export class ClosedLoopLoad {
  /** performance.now() at the start and the end of each completed command, index-aligned. */
  readonly starts = new NumberList();
  readonly ends = new NumberList();
  errors = 0;
  #running = true;
  readonly #workers: Promise<void>[];

  /** Runs `concurrency` workers, each issuing `command(sequence)` and awaiting it, until stop(). */
  constructor(command: (sequence: number) => Promise<unknown>, concurrency: number) {
    let sequence = 0;
    const worker = async () => {
      while (this.#running) {
        const start = performance.now();
        try {
          await command(sequence++);
        } catch {
          this.errors++;
          continue;
        }
        this.starts.push(start);
        this.ends.push(performance.now());
      }
    };
    this.#workers = Array.from({ length: concurrency }, () => worker());
  }

  get completed(): number {
    return this.starts.length;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
  }

  /** Latencies (ms, sorted) of commands that started in [from, to). */
  startedIn(from: number, to: number): Float64Array {
    const out: number[] = [];
    for (let i = 0; i < this.starts.length; i++) {
      const start = this.starts.at(i);
      if (start >= from && start < to) out.push(this.ends.at(i) - start);
    }
    return Float64Array.from(out).sort();
  }

  /** Latencies (ms, sorted) of commands in flight at some moment of [from, to]. */
  overlapping(from: number, to: number): Float64Array {
    const out: number[] = [];
    for (let i = 0; i < this.starts.length; i++) {
      const start = this.starts.at(i);
      const end = this.ends.at(i);
      if (start <= to && end >= from) out.push(end - start);
    }
    return Float64Array.from(out).sort();
  }
}

/** p50, p99 and max of sorted latencies. */
export function latencyFigures(sorted: Float64Array): { n: number; p50: number; p99: number; max: number } {
  return {
    n: sorted.length,
    p50: sortedQuantile(sorted, 0.5),
    p99: sortedQuantile(sorted, 0.99),
    max: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : Number.NaN,
  };
}
