import assert from 'node:assert/strict';
import type { RedisClusterNode } from '../../lib/testing/redis-server.js';
import { must } from './must.js';

/** Sends a command straight to one cluster node, as its admin. */
export async function admin(node: RedisClusterNode, ...args: (string | number)[]): Promise<unknown> {
  const [name, ...rest] = args;
  return node.command(String(name), ...rest);
}

/** The index in `nodes` of the node that owns `slot`, by CLUSTER SLOTS. */
export async function ownerOf(nodes: readonly RedisClusterNode[], slot: number): Promise<number> {
  const slots = (await admin(must(nodes[0], 'a node'), 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  const range = must(
    slots.find(([from, to]) => slot >= from && slot <= to),
    `an owner of slot ${slot}`,
  );
  const index = nodes.findIndex((node) => node.port === range[2][1]);
  assert.ok(index >= 0);
  return index;
}
