/** Order statistics for benchmark figures: medians, quantiles and spreads of small and large samples. */

/** Shared with the leak scenario in harness/. */
export { slope } from '../../harness/slope.js';

/** A sample summarised: median with its spread. */
export interface Summary {
  /** Number of values. */
  n: number;
  median: number;
  min: number;
  max: number;
  /** First and third quartiles. */
  q1: number;
  q3: number;
}

/** The `q`-quantile (0..1) of `values`, with linear interpolation between order statistics. NaN when empty. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  return sortedQuantile(sorted, q);
}

/** Like {@link quantile}, for values already sorted ascending. */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const a = sorted[lower] as number;
  const b = sorted[upper] as number;
  return a + (b - a) * (position - lower);
}

export function median(values: ArrayLike<number>): number {
  return quantile(values, 0.5);
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  return {
    n: sorted.length,
    median: sortedQuantile(sorted, 0.5),
    min: sorted.length > 0 ? (sorted[0] as number) : Number.NaN,
    max: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : Number.NaN,
    q1: sortedQuantile(sorted, 0.25),
    q3: sortedQuantile(sorted, 0.75),
  };
}

/** Theil–Sen slope: the median of the slopes between every pair of points. One outlier cannot move it far. */
export function robustSlope(xs: readonly number[], ys: readonly number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    for (let j = i + 1; j < xs.length; j++) {
      const dx = (xs[j] as number) - (xs[i] as number);
      if (dx !== 0) slopes.push(((ys[j] as number) - (ys[i] as number)) / dx);
    }
  }
  return median(slopes);
}

/** A growable list of numbers without per-item allocation (latency samples can run into the hundreds of thousands). */
export class NumberList {
  #data = new Float64Array(1024);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.#length++] = value;
  }

  at(index: number): number {
    return this.#data[index] as number;
  }

  toArray(): Float64Array {
    return this.#data.slice(0, this.#length);
  }
}
