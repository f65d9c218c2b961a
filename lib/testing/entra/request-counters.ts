// Request counters of the emulator and waiting for them to reach a number.
import type { EntraRequestCounters, WaitForRequestsOptions } from './types.js';

function emptyCounters(): EntraRequestCounters {
  return { total: 0, managedIdentity: 0, authority: 0, tokenEndpoint: 0, discovery: 0, byOid: {} };
}

export class RequestCounters {
  #counters: EntraRequestCounters = emptyCounters();
  #waiters = new Set<() => void>();

  /** A snapshot of the counters. */
  snapshot(): EntraRequestCounters {
    return { ...this.#counters, byOid: { ...this.#counters.byOid } };
  }

  /** Applies `update` and wakes the waiters. */
  count(update: (counters: EntraRequestCounters) => void): void {
    update(this.#counters);
    this.wake();
  }

  countOid(oid: string): void {
    this.count((c) => {
      c.byOid[oid] = (c.byOid[oid] ?? 0) + 1;
    });
  }

  /** Sets all counters to zero. */
  reset(): void {
    this.#counters = emptyCounters();
  }

  /** Lets every waiter check its condition again (after a count, or when the emulator stops). */
  wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /**
   * Resolves once at least `n` requests were counted on the chosen counter. Rejects after `timeoutMs` (default 10 s)
   * or when `stopped()` holds at a wake-up.
   */
  async waitFor(n: number, options: WaitForRequestsOptions, stopped: () => boolean): Promise<EntraRequestCounters> {
    const current = (): number =>
      options.oid !== undefined ? (this.#counters.byOid[options.oid] ?? 0) : this.#counters[options.counter ?? 'total'];
    if (current() >= n) return this.snapshot();
    const timeoutMs = options.timeoutMs ?? 10_000;
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        if (current() >= n) finish();
        else if (stopped()) finish(new Error(`The emulator stopped after ${current()} of ${n} requests`));
      };
      const timer = setTimeout(
        () => finish(new Error(`Timed out after ${timeoutMs} ms waiting for ${n} requests (got ${current()})`)),
        timeoutMs,
      );
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (error) reject(error);
        else resolve(this.snapshot());
      };
      this.#waiters.add(check);
    });
  }
}
