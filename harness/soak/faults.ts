/**
 * The faults the chaos injects. Token service: 500/502/503/504 to the next 1-4 requests, 429 with Retry-After 1-2 s to
 * the next 1-2, the next request never answered, the next 1-3 reset, or down for longer than any token lives. Servers:
 * redis-server restarted (SIGTERM) or killed (SIGKILL) and started again, or a cluster node killed and restarted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntraFault } from '../../lib/testing/entra-emulator.js';
import type { Dice } from './dice.js';
import type { Servers } from './servers.js';
import { LIFETIMES_S } from './settings.js';
import { persist } from './util.js';

export const TOKEN_FAULT_KINDS = ['5xx', '429', 'hang', 'reset', 'down'] as const;
export type TokenFaultKind = (typeof TOKEN_FAULT_KINDS)[number];

/** A token-service fault: what the emulator is told, how long it is held before clearing it (ms), and its description. */
export interface TokenFault {
  fault: EntraFault;
  holdMs: number;
  detail: string;
}

export function drawTokenFault(kind: TokenFaultKind, dice: Dice): TokenFault {
  switch (kind) {
    case '5xx': {
      const status = [500, 502, 503, 504][dice.int(0, 3)] as number;
      const times = dice.int(1, 4);
      return {
        fault: { kind: 'status', status, times },
        holdMs: 3_000,
        detail: `HTTP ${status} to the next ${times} requests`,
      };
    }
    case '429': {
      const retryAfterSeconds = dice.int(1, 2);
      const times = dice.int(1, 2);
      return {
        fault: { kind: 'status', status: 429, retryAfterSeconds, times },
        holdMs: 4_000,
        detail: `HTTP 429 Retry-After ${retryAfterSeconds} s to the next ${times} requests`,
      };
    }
    case 'hang':
      return {
        fault: { kind: 'hang', times: 1 },
        holdMs: 3_000,
        detail: 'the next request never answered (until reset 3 s later)',
      };
    case 'reset': {
      const times = dice.int(1, 3);
      return { fault: { kind: 'reset', times }, holdMs: 2_000, detail: `the next ${times} requests reset` };
    }
    case 'down': {
      // longer than the longest token in use: every connection's token expires during it
      const holdMs = (Math.max(...LIFETIMES_S) + dice.int(1, 4)) * 1_000;
      return { fault: { kind: 'down' }, holdMs, detail: `down ${holdMs / 1000} s` };
    }
  }
}

export const SERVER_FAULT_KINDS = ['restart', 'kill', 'node'] as const;
export type ServerFaultKind = (typeof SERVER_FAULT_KINDS)[number];

/** A server fault once the server is back: the side whose clients it hit, the report's name for it, its detail. */
export interface ServerFault {
  side: 'standalone' | 'cluster';
  why: string;
  kind: string;
  detail: string;
}

/** The side a server fault of `kind` hits. */
export const sideOf = (kind: ServerFaultKind): ServerFault['side'] => (kind === 'node' ? 'cluster' : 'standalone');

/** Injects a server fault and waits until the server is back. */
export async function injectServerFault(kind: ServerFaultKind, servers: Servers, dice: Dice): Promise<ServerFault> {
  const { redis, cluster } = servers;
  if (kind === 'restart') {
    await persist(() => (redis.running ? redis.restart() : redis.start()), 'redis-server to restart');
    return {
      side: 'standalone',
      why: 'redis-server restart',
      kind: 'redis-server restart (SIGTERM)',
      detail: 'standalone',
    };
  }
  if (kind === 'kill') {
    await redis.kill();
    await sleep(dice.between(500, 2_000));
    await persist(() => redis.start(), 'redis-server to start');
    return {
      side: 'standalone',
      why: 'redis-server kill',
      kind: 'redis-server kill (SIGKILL) + start',
      detail: 'standalone',
    };
  }
  const node = dice.int(0, cluster.nodes.length - 1);
  await cluster.killNode(node);
  await sleep(dice.between(1_000, 4_000));
  await persist(() => cluster.restartNode(node), `cluster node ${node} to restart`);
  return {
    side: 'cluster',
    why: `cluster node ${node} kill`,
    kind: 'cluster node kill (SIGKILL) + restart',
    detail: `node ${node}`,
  };
}
