/**
 * Expiry disconnects, as the AMR emulators see them, and whether the library could have avoided each: it could when a
 * newer token reached it in time (see SoakOptions.lateTokenRule), this process's event loop ran for long enough of
 * the time left, and the connection's server had not just restarted.
 */
import type { Redis } from 'ioredis';
import { MAX_VALIDITY_MARGIN_MS, VALIDITY_MARGIN_FRACTION } from '../../lib/manager/schedule.js';
import type { AmrConnectionInfo } from '../../lib/testing/amr-emulator.js';
import type { ExpiryReport } from './report.js';
import type { Servers } from './servers.js';
import { LATE_TOKEN_MS, type SoakOptions } from './settings.js';
import type { TokenTimeline } from './token-timeline.js';
import { overlaps, type Window } from './util.js';

type Side = 'standalone' | 'cluster';

export interface Expiration {
  info: AmrConnectionInfo;
  target: Side;
  /** When the emulator closed the connection, epoch ms. */
  at: number;
  /** The state of the standalone client behind the connection then, for the report ('' for the cluster). */
  state: string;
}

/** Records every expiry close of the emulators, from now on. */
export function recordExpirations(servers: Servers, standaloneClients: readonly Redis[]): Expiration[] {
  const byName = new Map<string, { client: Redis; readyAt: number; closeAt: number }>();
  for (const client of standaloneClients) {
    const entry = { client, readyAt: 0, closeAt: 0 };
    byName.set(String(client.options.connectionName), entry);
    client.on('ready', () => {
      entry.readyAt = Date.now();
    });
    client.on('close', () => {
      entry.closeAt = Date.now();
    });
  }
  const clientState = (name: string | undefined) => {
    const entry = name === undefined ? undefined : byName.get(name);
    if (!entry) return '';
    const now = Date.now();
    return `, client ${entry.client.status}, last ready ${now - entry.readyAt} ms ago, last close ${now - entry.closeAt} ms ago`;
  };
  const expirations: Expiration[] = [];
  servers.amr.on('expired', (info: AmrConnectionInfo) =>
    expirations.push({ info, target: 'standalone', at: Date.now(), state: clientState(info.name) }),
  );
  for (const emulator of servers.amrCluster.emulators) {
    emulator.on('expired', (info: AmrConnectionInfo) =>
      expirations.push({ info, target: 'cluster', at: Date.now(), state: '' }),
    );
  }
  return expirations;
}

export interface ExpiryContext {
  timelines: Record<Side, TokenTimeline>;
  /** Restarts and kills of each side's servers. */
  serverWindows: Record<Side, readonly Window[]>;
  /** Every outage window of the standalone side (restarts and late tokens). */
  standaloneOutages: readonly Window[];
  /** Milliseconds of [start, end] in which this process's event loop ran. */
  responsiveMs(start: number, end: number): number;
  lateTokenRule: SoakOptions['lateTokenRule'];
  chaosStart: number;
}

/** How long before the old token's expiry a newer token must arrive to count as in time, ms. */
function lateMargin(context: ExpiryContext, timeline: TokenTimeline, expiresAt: number): number {
  if (context.lateTokenRule !== 'deadline') return LATE_TOKEN_MS;
  // The server knows the JWT's `exp` (whole seconds); the library's expiry can be up to a second earlier.
  const held = timeline.tokens.find((t) => t.expiresOn <= expiresAt && expiresAt - t.expiresOn < 1000);
  const life = held ? held.expiresOn - held.receivedAt : 0;
  return Math.max(LATE_TOKEN_MS, Math.min(MAX_VALIDITY_MARGIN_MS, life * VALIDITY_MARGIN_FRACTION));
}

/** Sorts every expiry close into the report's classes. */
export function classifyExpiries(expirations: readonly Expiration[], context: ExpiryContext): ExpiryReport {
  const report: ExpiryReport = {
    total: expirations.length,
    tokenLate: 0,
    duringStall: 0,
    avoidableDuringRestart: 0,
    avoidableNotBlocked: 0,
    avoidableBlocked: 0,
    details: [],
  };
  for (const { info, target, at, state } of expirations) {
    const timeline = context.timelines[target];
    const successor = info.expiresAt === undefined ? undefined : timeline.successorOf(info.expiresAt);
    const late =
      !successor || successor.receivedAt > (info.expiresAt ?? 0) - lateMargin(context, timeline, info.expiresAt ?? 0);
    if (late) {
      report.tokenLate++;
      continue;
    }
    const blocked = info.name === 'soak-consumer';
    const expiresAt = info.expiresAt ?? 0;
    // The process could not run for most of the time between the new token and the expiry.
    if (context.responsiveMs(successor.receivedAt, expiresAt) < LATE_TOKEN_MS) {
      report.duringStall++;
      continue;
    }
    // After a restart the server loads its AOF: ioredis holds the connection in 'connect' (ready check) for a
    // second or more, and the library sends a new token only to 'ready' connections.
    if (overlaps(context.serverWindows[target], at, at)) report.avoidableDuringRestart++;
    else if (blocked) report.avoidableBlocked++;
    else report.avoidableNotBlocked++;
    report.details.push(
      `${((at - context.chaosStart) / 1000).toFixed(1)} s: ${target} connection ${info.name ?? `port ${info.remotePort}`} ` +
        `expired although a newer token arrived ${(info.expiresAt ?? 0) - successor.receivedAt} ms before` +
        ` (${info.authCount} AUTHs on it${state}${overlaps(context.standaloneOutages, at, at) && target === 'standalone' ? '; in a redis-server restart window' : ''})`,
    );
  }
  report.details = report.details.slice(0, 30);
  return report;
}

/** Late tokens (per TokenTimeline.lateWindows) with no token-service fault within 3 s of them: normal refreshes delayed by load. */
export function lateTokensWithoutFault(
  timelines: Record<Side, TokenTimeline>,
  tokenFaultWindows: readonly Window[],
): number {
  let count = 0;
  for (const timeline of Object.values(timelines)) {
    for (const window of timeline.lateWindows())
      if (!overlaps(tokenFaultWindows, window.start, window.end, 3_000)) count++;
  }
  return count;
}
