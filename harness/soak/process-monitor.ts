/**
 * What the soak watches in its own process: rejections and exceptions nobody handled, event-loop delay, and stalls of
 * the event loop (the AMR emulators live in this process too: after a stall their expiry timers run before the AUTH
 * bytes that arrived meanwhile are read).
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { STALL_MS, STALL_SAMPLE_MS } from './settings.js';
import { describeError, tally, type Window } from './util.js';

export class ProcessMonitor {
  unhandledRejections = 0;
  uncaughtExceptions = 0;
  readonly unhandledMessages = new Map<string, number>();
  /** Event-loop stalls over STALL_MS. */
  readonly stalls: Window[] = [];
  readonly #loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  readonly #stallSampler: ReturnType<typeof setInterval>;

  readonly #onRejection = (reason: unknown) => {
    this.unhandledRejections++;
    tally(this.unhandledMessages, `unhandledRejection: ${describeError(reason)}`);
  };

  readonly #onException = (error: unknown) => {
    this.uncaughtExceptions++;
    tally(this.unhandledMessages, `uncaughtException: ${describeError(error)}`);
  };

  /** Starts watching at once. */
  constructor() {
    process.on('unhandledRejection', this.#onRejection);
    process.on('uncaughtException', this.#onException);
    this.#loopDelay.enable();
    let lastTick = performance.now();
    this.#stallSampler = setInterval(() => {
      const now = performance.now();
      const late = now - lastTick - STALL_SAMPLE_MS;
      if (late > STALL_MS) this.stalls.push({ start: Date.now() - late, end: Date.now(), why: 'event-loop stall' });
      lastTick = now;
    }, STALL_SAMPLE_MS);
    this.#stallSampler.unref();
  }

  /** Milliseconds of [start, end] (epoch ms) in which the event loop was not stalled. */
  responsiveMs(start: number, end: number): number {
    let stalled = 0;
    for (const stall of this.stalls) stalled += Math.max(0, Math.min(end, stall.end) - Math.max(start, stall.start));
    return end - start - stalled;
  }

  /** Event-loop delay so far, ms. */
  loopDelayMs(): { p50: number; p99: number; max: number } {
    const delay = this.#loopDelay;
    return { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 };
  }

  stallFigures(): { count: number; totalMs: number } {
    return { count: this.stalls.length, totalMs: this.stalls.reduce((sum, w) => sum + (w.end - w.start), 0) };
  }

  /** Stops measuring the event loop; the unhandled counters keep counting until detach(). */
  stopSampling(): void {
    this.#loopDelay.disable();
    clearInterval(this.#stallSampler);
  }

  detach(): void {
    process.off('unhandledRejection', this.#onRejection);
    process.off('uncaughtException', this.#onException);
  }
}
