/**
 * Verification of the writes at the end of a run, straight against the servers (admin user, not through the
 * emulators): every acknowledged ZADD/HSET member is stored, the INCR counter is at least the number of acknowledged
 * INCRs, every acknowledged RPUSH reached the consumer, the taken list or is still queued; and each failed command
 * fell inside an outage window or is reported.
 */
import type { Lane } from './lane.js';
import type { LaneReport, PubsubReport, QueueReport } from './report.js';
import type { Servers } from './servers.js';
import { overlaps, tally, type Window } from './util.js';
import { clusterKey, type Sent } from './workload.js';

const lostBy = (acked: readonly number[], stored: Set<number>) => acked.filter((i) => !stored.has(i)).length;

/** Members of a standalone key, read with `command key ...args`. */
async function standaloneMembers(
  servers: Servers,
  key: string,
  command: string,
  ...args: string[]
): Promise<Set<number>> {
  return new Set(((await servers.redis.command(command, key, ...args)) as string[]).map(Number));
}

/** Members of cluster lane `laneNo`'s 6 sorted sets, each read from the node that owns its slot. */
async function clusterMembers(servers: Servers, laneNo: number): Promise<Set<number>> {
  const { cluster } = servers;
  const stored = new Set<number>();
  for (let k = 0; k < 6; k++) {
    const key = clusterKey(laneNo, k);
    const slot = Number(await cluster.nodes[0]?.command('CLUSTER', 'KEYSLOT', key));
    const node = cluster.nodes.find((n) => slot >= n.slots[0] && slot <= n.slots[1]);
    if (!node) throw new Error(`no node owns slot ${slot}`);
    for (const member of (await node.command('ZRANGE', key, '0', '-1')) as string[]) stored.add(Number(member));
  }
  return stored;
}

/** What a lane stored, for the lanes whose every acknowledged write leaves a member behind (undefined for the others). */
async function storedBy(servers: Servers, lane: Lane): Promise<Set<number> | undefined> {
  switch (lane.name) {
    case 'a zadd':
      return standaloneMembers(servers, 'soak:a', 'ZRANGE', '0', '-1');
    case 'b hset':
      return standaloneMembers(servers, 'soak:b', 'HKEYS');
    case 'duplicate zadd':
      return standaloneMembers(servers, 'soak:dup1', 'ZRANGE', '0', '-1');
    case 'duplicate of duplicate zadd':
      return standaloneMembers(servers, 'soak:dup2', 'ZRANGE', '0', '-1');
    default:
      return lane.name.startsWith('cluster zadd') ? clusterMembers(servers, Number(lane.name.slice(-1))) : undefined;
  }
}

/** Per lane: acknowledged writes lost, failures inside and outside the outage windows of its side. */
export async function checkLanes(
  servers: Servers,
  lanes: readonly Lane[],
  outages: Record<Lane['target'], readonly Window[]>,
): Promise<{
  lanes: LaneReport[];
  lost: number;
  failedOutsideMessages: Map<string, number>;
}> {
  const reports: LaneReport[] = [];
  const failedOutsideMessages = new Map<string, number>();
  let lostInAll = 0;
  for (const lane of lanes) {
    const stored = await storedBy(servers, lane);
    const lost = stored ? lostBy(lane.acked, stored) : 0;
    lostInAll += lost;
    let failedInOutage = 0;
    let failedOutside = 0;
    for (const failure of lane.failures) {
      if (overlaps(outages[lane.target], failure.start, failure.end)) failedInOutage++;
      else {
        failedOutside++;
        tally(failedOutsideMessages, `${lane.name}: ${failure.message}`);
      }
    }
    reports.push({
      name: lane.name,
      target: lane.target,
      acked: lane.acked.length,
      failedInOutage,
      failedOutside,
      lost,
    });
  }
  return { lanes: reports, lost: lostInAll, failedOutsideMessages };
}

/** The INCR counter against the acknowledged INCRs: a command resent after a reconnect may count twice, never less. */
export async function checkIncr(
  servers: Servers,
  incrLane: Lane,
): Promise<{ acked: number; value: number; lost: number }> {
  const value = Number(await servers.redis.command('GET', 'soak:incr'));
  const acked = incrLane.acked.length;
  return { acked, value, lost: value < acked ? acked - value : 0 };
}

/**
 * Queue: every acknowledged push was delivered, or taken by the server (its reply lost with a broken connection), or
 * is still queued. Anything else is an acknowledged write lost, whatever happened around it.
 */
export async function checkQueue(
  servers: Servers,
  pushed: readonly Sent[],
  delivered: readonly Sent[],
  chaosStart: number,
): Promise<QueueReport> {
  const remaining = new Set(((await servers.redis.command('LRANGE', 'soak:queue', '0', '-1')) as string[]).map(Number));
  const taken = new Set(((await servers.redis.command('LRANGE', 'soak:taken', '0', '-1')) as string[]).map(Number));
  const deliveredCount = new Map<number, number>();
  for (const { i } of delivered) deliveredCount.set(i, (deliveredCount.get(i) ?? 0) + 1);
  const details: string[] = [];
  let takenReplyLost = 0;
  let lost = 0;
  for (const { i, at } of pushed) {
    if (deliveredCount.has(i) || remaining.has(i)) continue;
    if (taken.has(i)) {
      takenReplyLost++;
      continue;
    }
    lost++;
    details.push(`item ${i} pushed at ${((at - chaosStart) / 1000).toFixed(1)} s`);
  }
  return {
    pushed: pushed.length,
    delivered: delivered.length,
    remaining: remaining.size,
    duplicates: [...deliveredCount.values()].filter((n) => n > 1).length,
    takenReplyLost,
    lost,
    details: details.slice(0, 10),
  };
}

/** Pub/sub: at-most-once by nature; a message is expected when PUBLISH said a subscriber got it. */
export function checkPubsub(
  published: readonly Sent[],
  received: readonly number[],
  outages: readonly Window[],
): PubsubReport {
  const receivedCount = new Map<number, number>();
  for (const i of received) receivedCount.set(i, (receivedCount.get(i) ?? 0) + 1);
  let outOfOrder = 0;
  for (let k = 1; k < received.length; k++) if ((received[k] as number) < (received[k - 1] as number)) outOfOrder++;
  let lostInOutage = 0;
  let lostOutside = 0;
  for (const { i, at } of published) {
    if (receivedCount.has(i)) continue;
    if (overlaps(outages, at, at)) lostInOutage++;
    else lostOutside++;
  }
  return {
    publishedToSubscribers: published.length,
    received: received.length,
    duplicates: [...receivedCount.values()].filter((n) => n > 1).length,
    outOfOrder,
    lostInOutage,
    lostOutside,
  };
}
