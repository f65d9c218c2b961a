/** What a leak run is asked to do and what it reports. */

export interface LeakOptions {
  rotations: number;
  /** Connections during the rotations. */
  connections: number;
  /** Rounds of `amr.closeAllConnections()`. */
  reconnects: number;
  /** createEntraRedis → ready → duplicate → ready → quit both. */
  cycles: number;
  /** Rotations over 10 connections of which one is blocked in BLPOP 0 (0: skip). Default 1,000. */
  blockedRotations?: number;
  /** Lifetime the credential reports for rotation tokens, ms. */
  tokenMs?: number;
  log?: (line: string) => void;
}

export interface PhaseReport {
  name: string;
  /** Operations done (rotations, reconnect rounds, cycles). */
  operations: number;
  /** Connections involved. */
  connections: number;
  seconds: number;
  /** Heap slope over checkpoints, bytes per operation. */
  heapPerOperation: number;
  heapStart: number;
  heapEnd: number;
  /** Listener counts that differ from a fresh client of the same shape, or from the start. Must be empty. */
  listenerDiffs: string[];
  /** provider.subscriberCount vs connections alive, at each checkpoint: mismatches. Must be empty. */
  subscriberMismatches: string[];
  /** Clients holding more commands in ioredis's queues (command + offline) than a fresh client of the same shape. */
  queueGrowth: string[];
  /** Extra figures of the phase. */
  notes: Record<string, number | string>;
}

export interface LeakReport {
  options: Required<Omit<LeakOptions, 'log'>>;
  startedAt: string;
  node: string;
  ioredis: string;
  phases: PhaseReport[];
  /** Library timers alive after everything was closed, with a frame of their creation stack. Must be empty. */
  libTimersLeft: string[];
  /** Ref'd timers (getActiveResourcesInfo) before the first client and after everything closed. */
  activeTimersBefore: number;
  activeTimersAfter: number;
  timersCreated: number;
  processListenerDiffs: string[];
  clientErrors: Record<string, number>;
  unhandledRejections: number;
}
