/** The soak's fixed settings and its options. */

/** Token lifetimes drawn at random, seconds. */
export const LIFETIMES_S = [2, 3, 4, 5, 6];
/** A token that reaches the library later than this before the previous one expires leaves no time to re-AUTH. */
export const LATE_TOKEN_MS = 250;
/** Failures this long after an outage window ends still belong to it (ioredis retries reconnects up to every 2 s). */
export const GRACE_MS = 5_000;
/** Pause between writes of one lane (one write in flight per lane). */
export const PACE_MS = 15;
/** Event-loop stalls longer than this are recorded (sampled every STALL_SAMPLE_MS). */
export const STALL_MS = 100;
export const STALL_SAMPLE_MS = 20;
/** Quiet time at the end: no new fault, every lane must write again. */
export const SETTLE_MS = 15_000;
/**
 * Persistence of every redis-server of the soak: with `appendonly yes` + `appendfsync always` redis-server answers a
 * write only after it is in the AOF and fsynced, so neither a SIGTERM restart nor a SIGKILL loses an acknowledged write.
 */
export const PERSISTENCE = ['appendonly yes', 'appendfsync always'];
export const TOKEN_MANAGER_OPTIONS = { tokenRequestTimeout: 1_000, retryOptions: { initialDelay: 100, maxDelay: 500 } };

export interface SoakOptions {
  minutes: number;
  /** Seed of the fault schedule. Default: random (reported). */
  seed?: number;
  /** Progress lines. Default: stderr. */
  log?: (line: string) => void;
  /**
   * When a newer token counts as late, so that an expiry close is not the library's doing: `strict` (the default, for
   * the long soak) when it came less than 250 ms before the old token expired; `deadline` (the short soak in the
   * test command, which must fail for library defects and not for a slow scheduler) when it came after the old token's
   * re-AUTH deadline, min(5 s, 20 % of its life) before its expiry: the library guarantees in-place re-authentication
   * for tokens that come before the deadline, and after it a busy scheduler decides.
   */
  lateTokenRule?: 'strict' | 'deadline';
}
