/**
 * The longest delay a Node.js timer waits, ms (2^31 − 1, about 24.8 days). `setTimeout` with a longer one fires
 * after 1 ms, with a TimeoutOverflowWarning: a wait derived from a token's lifetime is armed again in steps of this
 * (a custom credential may hand out tokens valid for weeks), and an option in ms that a timer waits is refused above it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What an option in ms above {@link MAX_TIMER_MS} is told. */
export const MAX_TIMER_RULE = `must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a Node.js timer waits)`;

/** A pending {@link setTimerAt}; cancel it with {@link clearTimerAt}. */
export interface TimerAt {
  /** When it runs, epoch ms. */
  readonly at: number;
}

interface TimerAtState<T> extends TimerAt {
  readonly run: (arg: T) => void;
  arg: T | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Its timer waits for less than the time to `at`: armed again when it fires. */
  clamped: boolean;
}

/**
 * Calls `run(arg)` at `at` (epoch ms), or on a later turn of the event loop if that is past, on an unref'd timer (it
 * never keeps the process alive). An instant more than {@link MAX_TIMER_MS} away is waited for in steps of at most
 * that. The callback gets its argument, as with `setTimeout`, so that callers can share one function.
 */
export function setTimerAt<T>(at: number, run: (arg: T) => void, arg: T): TimerAt {
  const state: TimerAtState<T> = { at, run, arg, timer: undefined, clamped: false };
  arm(state);
  return state;
}

/** Cancels `handle` if it has not run; it then lets go of its argument. */
export function clearTimerAt(handle: TimerAt | undefined): void {
  if (!handle) return;
  const state = handle as TimerAtState<unknown>;
  clearTimeout(state.timer);
  state.timer = undefined;
  state.arg = undefined;
}

function arm<T>(state: TimerAtState<T>): void {
  const delay = Math.max(0, state.at - Date.now());
  state.clamped = delay > MAX_TIMER_MS;
  state.timer = setTimeout(step, Math.min(delay, MAX_TIMER_MS), state);
  (state.timer as { unref?: () => void }).unref?.(); // a timer from a fake-timer library may lack unref
}

function step<T>(state: TimerAtState<T>): void {
  if (state.clamped) {
    arm(state);
    return;
  }
  state.timer = undefined;
  const arg = state.arg as T;
  state.arg = undefined;
  state.run(arg);
}
