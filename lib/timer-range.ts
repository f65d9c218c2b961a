/**
 * The longest delay a Node.js timer waits, ms (2^31 − 1, about 24.8 days). `setTimeout` with a longer one fires
 * after 1 ms, with a TimeoutOverflowWarning: a wait derived from a token's lifetime is armed again in steps of this
 * (a custom credential may hand out tokens valid for weeks), and an option in ms that a timer waits is refused above it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What an option in ms above {@link MAX_TIMER_MS} is told. */
export const MAX_TIMER_RULE = `must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a Node.js timer waits)`;
