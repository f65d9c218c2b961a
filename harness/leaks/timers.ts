/** Timers: every one made through the globals, tracked with its creation stack, and the ref'd ones Node.js reports. */
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

interface TrackedTimer {
  stack: string;
  unref: boolean;
  kind: 'timeout' | 'interval';
}

/**
 * Tracks every setTimeout/setInterval made through the globals (the library's and ioredis's) from install to
 * uninstall: created, cleared, fired. Unlike `process.getActiveResourcesInfo()` it sees unref'd timers too.
 */
export class TimerTracker {
  readonly live = new Map<object, TrackedTimer>();
  created = 0;
  readonly #originals = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    setInterval: globalThis.setInterval,
    clearInterval: globalThis.clearInterval,
  };

  install(): this {
    const { live } = this;
    const o = this.#originals;
    const track =
      (kind: TrackedTimer['kind']) =>
      (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
        this.created++;
        const holder = {} as { stack: string };
        Error.captureStackTrace(holder);
        const run = (...runArgs: unknown[]) => {
          if (kind === 'timeout') live.delete(timer);
          callback(...runArgs);
        };
        const timer: ReturnType<typeof setTimeout> = (kind === 'timeout' ? o.setTimeout : o.setInterval)(
          run,
          ms,
          ...args,
        );
        const entry: TrackedTimer = {
          get stack() {
            return holder.stack;
          },
          unref: false,
          kind,
        };
        live.set(timer, entry);
        const unref = timer.unref.bind(timer);
        const ref = timer.ref.bind(timer);
        timer.unref = () => {
          entry.unref = true;
          return unref();
        };
        timer.ref = () => {
          entry.unref = false;
          return ref();
        };
        return timer;
      };
    const clear =
      (original: (t?: ReturnType<typeof setTimeout>) => void) => (timer?: ReturnType<typeof setTimeout>) => {
        if (timer !== undefined) live.delete(timer);
        original(timer);
      };
    const custom = promisify.custom;
    globalThis.setTimeout = Object.assign(track('timeout'), {
      [custom]: (o.setTimeout as unknown as Record<symbol, unknown>)[custom],
    }) as unknown as typeof setTimeout;
    globalThis.setInterval = track('interval') as unknown as typeof setInterval;
    globalThis.clearTimeout = clear(o.clearTimeout) as typeof clearTimeout;
    globalThis.clearInterval = clear(o.clearInterval) as typeof clearInterval;
    return this;
  }

  uninstall(): void {
    Object.assign(globalThis, this.#originals);
  }

  /** Live timers whose creation stack goes through `dir` (a source folder), with their stacks. */
  liveFrom(dir: string): TrackedTimer[] {
    return [...this.live.values()].filter((timer) =>
      timer.stack
        .split('\n')
        .slice(1)
        .some((frame) => frame.includes(dir)),
    );
  }
}

/** Timers `process.getActiveResourcesInfo()` reports (ref'd ones only). */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((type) => type === 'Timeout' || type === 'Immediate').length;
}

/** The library's source folder: timers whose creation stack passes through it are the library's. */
export const LIB_DIR = fileURLToPath(new URL('../../lib/', import.meta.url));
