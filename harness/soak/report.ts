/** What a soak run reports, and the figures of it that must be 0. */

export interface FaultRecord {
  kind: string;
  detail: string;
  /** ms since the start of the chaos phase. */
  at: number;
  durationMs: number;
}

export interface LaneReport {
  name: string;
  target: 'standalone' | 'cluster';
  acked: number;
  failedInOutage: number;
  failedOutside: number;
  lost: number;
}

export interface QueueReport {
  pushed: number;
  delivered: number;
  remaining: number;
  duplicates: number;
  /**
   * Moved by the server into the taken list while the connection broke (an outage, or the library reconnecting the
   * blocked consumer to move it to a new token), so its reply never reached the consumer. The reliable-queue pattern
   * (BLMOVE into a list of taken items) keeps them; with BLPOP they would be lost (docs/guarantees.md).
   */
  takenReplyLost: number;
  /** Acknowledged pushes neither delivered, nor taken, nor still queued. Must be 0 (counted in ackedWritesLost). */
  lost: number;
  details: string[];
}

export interface PubsubReport {
  publishedToSubscribers: number;
  received: number;
  duplicates: number;
  outOfOrder: number;
  lostInOutage: number;
  lostOutside: number;
}

export interface ExpiryReport {
  total: number;
  /** The connection's token expired before a newer one reached the library (token service impaired). */
  tokenLate: number;
  /** A newer token was there in time, but this process's event loop was stalled for most of the time left. */
  duringStall: number;
  /**
   * A newer token was there in time, but the server had just restarted (it answers LOADING while it reads its AOF, and
   * ioredis holds the connection in 'connect' until it is done; the library re-AUTHs such connections too, and the
   * server answers AUTH while loading, but slowly).
   */
  avoidableDuringRestart: number;
  /** A newer token was there in time, no restart, and the connection was not blocked. Must be 0. */
  avoidableNotBlocked: number;
  /** A newer token was there in time, no restart, and the connection was the blocked queue consumer. Expected 0. */
  avoidableBlocked: number;
  details: string[];
}

export interface RecoveryReport {
  at: number;
  downMs: number;
  tokenBackMs: number;
  lanesBackMs: number;
}

export interface SoakReport {
  seed: number;
  minutes: number;
  startedAt: string;
  wallSeconds: number;
  environment: { node: string; ioredis: string; redis: string; cpus: number; loadAverage: number[] };
  lifetimesUsed: number[];
  faults: FaultRecord[];
  faultCounts: Record<string, number>;
  rotations: { standalone: number; cluster: number };
  reauthenticated: Record<string, number>;
  reauthenticationFailed: number;
  refreshFailed: number;
  lanes: LaneReport[];
  /** Acknowledged writes missing at the end (ZADD/HSET members, INCR shortfall, queue items). Must be 0. */
  ackedWritesLost: number;
  incr: { acked: number; value: number };
  queue: QueueReport;
  pubsub: PubsubReport;
  expiry: ExpiryReport;
  /** Tokens that came less than LATE_TOKEN_MS before the previous one expired although no token fault was injected. */
  lateTokensWithoutFault: number;
  failedOutsideMessages: string[];
  recovery: RecoveryReport[];
  lanesNotRecovered: string[];
  unhandledRejections: number;
  uncaughtExceptions: number;
  unhandledMessages: string[];
  clientErrors: number;
  /** BLMOVE calls of the consumer that were rejected (outages, and the final disconnect). */
  consumerFailures: number;
  clientErrorMessages: string[];
  amr: { accepted: number; authOk: number; authFailed: number };
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Event-loop stalls over STALL_MS. */
  stalls: { count: number; totalMs: number };
}

/** The figures that must be 0, by name, with their values. */
export function mustBeZero(report: SoakReport): Record<string, number> {
  return {
    ackedWritesLost: report.ackedWritesLost,
    expiryDisconnectsNotBlocked: report.expiry.avoidableNotBlocked,
    expiryDisconnectsBlocked: report.expiry.avoidableBlocked,
    unhandledRejections: report.unhandledRejections,
    uncaughtExceptions: report.uncaughtExceptions,
    lanesNotRecovered: report.lanesNotRecovered.length,
  };
}
