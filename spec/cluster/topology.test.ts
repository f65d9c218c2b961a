// ioredis majors: 5, 6
/**
 * A cluster's topology changes while tokens rotate (3-second tokens): a slot migrated between nodes (ASK while it
 * migrates, TRYAGAIN for a multi-key command across both sides, MOVED once it moved), a node killed and restarted,
 * slot-cache refreshes that make new connections. The application must see what a plain `new Cluster()` sees doing
 * the same: the same replies, the same errors, the same events of the cluster and of its nodes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster, type Redis } from 'ioredis';
import { createEntraCluster } from '../../lib/create-entra-cluster.js';
import { ClusterWorld, countEvents, nextEvent, waitUntil } from '../../harness/world.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { connectionOf, serverExpiryOf } from '../support/amr-connections.js';
import { must } from '../support/must.js';
import { admin, ownerOf } from '../support/cluster-slots.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: ClusterWorld;
before(async () => {
  world = await ClusterWorld.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

/**
 * A plain Cluster on the same path (the emulators, natMap) with one token that outlives the test, as its static
 * password: a server whose credentials never expire.
 */
function plainCluster(options: { clusterRetryStrategy?: () => number } = {}): Cluster {
  const oid = randomUUID();
  const password = world.entra.mint({ oid, exp: Math.floor(Date.now() / 1000) + 600 });
  return world.track(
    new Cluster(world.amr.startupNodes(), {
      ...world.clusterOptions(),
      ...options,
      redisOptions: { username: oid, password },
    }),
  );
}

function entraCluster(provider: EntraCredentialsProvider, options: { clusterRetryStrategy?: () => number } = {}) {
  return world.track(
    createEntraCluster(world.amr.startupNodes(), {
      ...world.clusterOptions(),
      ...options,
      credentialsProvider: provider,
    }),
  );
}

/** Every node's emulator refuses the tokens `predicate` picks (none when `undefined`). */
function refuseTokens(predicate: ((claims: Record<string, unknown>) => boolean) | undefined): void {
  for (const emulator of world.amr.emulators) emulator.refuseTokens(predicate);
}

/** Index of the cluster node a connection goes to (directly, or through its emulator). */
function nodeIndexOf(redis: Redis): number {
  const port = Number(redis.options.port);
  const index = world.cluster.nodes.findIndex((node, i) => node.port === port || world.amr.emulators[i]?.port === port);
  assert.ok(index >= 0, `a node of the cluster (port ${port})`);
  return index;
}

const CLUSTER_EVENTS = ['connect', 'ready', 'error', 'close', 'reconnecting', 'end', '+node', '-node', 'node error'];
const NODE_EVENTS = ['connect', 'ready', 'error', 'close', 'reconnecting', 'end'];

/**
 * Every event the application can listen to on the cluster and on its node connections, as `cluster <event>` and
 * `node <index> <event>`. ('refresh', a slot-cache refresh, is left out: how many there are depends on timing.)
 */
function recordEvents(cluster: Cluster): string[] {
  const seen: string[] = [];
  for (const event of CLUSTER_EVENTS) {
    cluster.on(event, (arg: unknown) => {
      const detail = arg instanceof Error ? ` ${arg.message}` : '';
      seen.push(`cluster ${event}${detail}`);
    });
  }
  cluster.on('+node', (redis: Redis) => {
    const index = nodeIndexOf(redis);
    for (const event of NODE_EVENTS) {
      redis.on(event, (arg: unknown) => {
        const detail = arg instanceof Error ? ` ${arg.message}` : '';
        seen.push(`node ${index} ${event}${detail}`);
      });
    }
  });
  return seen;
}

/** A promise rejected after `ms`: a bound on a wait that only a failing test reaches. */
function rejectAfter(ms: number): Promise<never> {
  return new Promise((_resolve, reject) => {
    setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms).unref();
  });
}

/** Errors inside replies (a pipeline's) as their messages, for comparison. */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? `error: ${value.message}` : value;
}

/** What an operation gave the application: its reply, or its error's message. */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return await run();
  } catch (error) {
    // ioredis retries a TRYAGAIN on a random node: the last error it quotes is TRYAGAIN or a MOVED, at random.
    return `error: ${(error as Error).message.replace(/(Too many Cluster redirections\.).*/, '$1')}`;
  }
}

/**
 * Moves `slot` from its owner to the next node step by step, as `redis-cli --cluster reshard` does, with the
 * application's operations on the slot's keys between the steps; `between()` runs between the phases (the test of the
 * library's cluster waits for a re-authentication there). Returns what the application saw, in order.
 */
async function migrationScenario(cluster: Cluster, tag: string, between: () => Promise<void>): Promise<unknown[]> {
  const key = (i: number) => `{${tag}}k${i}`;
  const slot = Number(await admin(must(world.cluster.nodes[0], 'a node'), 'CLUSTER', 'KEYSLOT', key(0)));
  const from = await ownerOf(world.cluster.nodes, slot);
  const source = must(world.cluster.nodes[from], 'the source');
  const target = must(world.cluster.nodes[(from + 1) % world.cluster.nodes.length], 'the target');
  const sourceId = String(await admin(source, 'CLUSTER', 'MYID'));
  const targetId = String(await admin(target, 'CLUSTER', 'MYID'));
  const { username, password } = world.cluster.admin;
  const migrate = (...keys: string[]) =>
    admin(source, 'MIGRATE', target.host, target.port, '', 0, 5_000, 'AUTH2', username, password, 'KEYS', ...keys);
  const seen: unknown[] = [];
  // Redirections name the nodes' addresses: said as the roles they play in this migration.
  const roles = (text: string) =>
    text.replaceAll(`${source.host}:${source.port}`, 'source').replaceAll(`${target.host}:${target.port}`, 'target');
  const op = async (name: string, run: () => Promise<unknown>) => {
    seen.push([name, JSON.parse(roles(JSON.stringify(await outcome(run), replacer))) as unknown]);
  };

  for (let i = 0; i < 5; i++) await op(`set ${i}`, () => cluster.set(key(i), String(i)));
  await between();
  await admin(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
  await admin(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
  await op('get while migrating, nothing moved', () => cluster.get(key(0)));
  await between();
  await migrate(key(0), key(1));
  await op('get a moved key (ASK)', () => cluster.get(key(0)));
  await op('get a key not moved', () => cluster.get(key(3)));
  await op('set a new key (ASK)', () => cluster.set(key(5), '5'));
  await op('incr a moved key (ASK)', () => cluster.incr(key(1)));
  await op('pipeline across both sides', () => cluster.pipeline().get(key(0)).get(key(3)).exists(key(5)).exec());
  await between();
  await op('multi on a key not moved', () => cluster.multi().get(key(2)).set(key(2), 'w2').exec());
  await op('mget across both sides (TRYAGAIN)', () => cluster.mget(key(0), key(3)));
  await between();
  await migrate(key(2), key(3), key(4));
  for (const node of world.cluster.nodes) await admin(node, 'CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
  await op('get after the move (MOVED)', () => cluster.get(key(3)));
  await op('mget after the move', () => cluster.mget(key(0), key(1), key(2), key(3), key(4), key(5)));
  await between();
  await op('multi after the move', () => cluster.multi().incr(key(4)).get(key(4)).exec());
  await op(
    'the slot moved',
    async () => (await ownerOf(world.cluster.nodes, slot)) === (from + 1) % world.cluster.nodes.length,
  );
  return seen;
}

describe('a slot migrated while tokens rotate', () => {
  it('ASK, TRYAGAIN and MOVED give the application what a plain Cluster gets: replies, errors, events', async () => {
    const plain = plainCluster();
    const plainEvents = recordEvents(plain);
    await plain.set('{warm}plain', '1');
    const plainSeen = await migrationScenario(plain, 'migrating', () => Promise.resolve());
    await plain.del(...Array.from({ length: 6 }, (_, i) => `{migrating}k${i}`));

    const provider = world.provider();
    const entra = entraCluster(provider);
    const entraEvents = recordEvents(entra);
    await entra.set('{warm}entra', '1');
    const reauthenticated = countEvents(provider, 'reauthenticated');
    const rotations = countEvents(provider, 'tokenRefreshed');
    const expiryDisconnects = world.amr.total('expiryDisconnects');
    // Each phase of the migration sees at least one connection re-authenticated in place.
    const between = async () => {
      await nextEvent(provider, 'reauthenticated', (e) => e.method === 'auth');
    };
    const entraSeen = await migrationScenario(entra, 'migrating', between);

    assert.deepEqual(entraSeen, plainSeen);
    assert.deepEqual([...entraEvents].sort(), [...plainEvents].sort());
    assert.ok(rotations.count >= 3, `${rotations.count} rotations`);
    assert.ok(reauthenticated.count >= 5);
    assert.equal(world.amr.total('expiryDisconnects'), expiryDisconnects);
    for (const node of entra.nodes('master')) assert.equal(await node.call('ACL', 'WHOAMI'), world.identity.oid);
  });
});

describe('a node killed and restarted while tokens rotate', () => {
  it('the application sees the events and errors a plain Cluster sees beside it, and every slot again after', async () => {
    const provider = world.provider();
    const retry = { clusterRetryStrategy: () => 100 };
    const plain = plainCluster(retry);
    const entra = entraCluster(provider, retry);
    const events = { plain: recordEvents(plain), entra: recordEvents(entra) };
    await Promise.all([plain.set('{warm}k', '1'), entra.set('{warm}k', '1')]);
    const failures = { plain: new Set<string>(), entra: new Set<string>() };
    let running = true as boolean; // cleared by the test while the loops run
    const load = (name: 'plain' | 'entra', cluster: Cluster) =>
      (async () => {
        for (let i = 0; running; i++) {
          try {
            await cluster.set(`restart:${name}:${i % 50}`, String(i));
          } catch (error) {
            failures[name].add(String(await outcome(() => Promise.reject(error))));
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      })();
    const loads = [load('plain', plain), load('entra', entra)];
    const rotations = countEvents(provider, 'tokenRefreshed');
    await world.cluster.killNode(1);
    await nextEvent(provider, 'tokenRefreshed');
    await world.cluster.restartNode(1);
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 30_000, description: '3 rotations' });
    running = false;
    await Promise.all(loads);
    for (const cluster of [plain, entra]) {
      for (let i = 0; i < 50; i++) assert.equal(await cluster.set(`after:${i}`, String(i)), 'OK');
    }
    // How often ioredis reconnects to the dead node, and which of those events each client happens to see, depends on
    // timing: both show only the events of a dropped node there, and the other nodes see nothing, on both.
    const deadNode =
      /^(cluster [+-]node|cluster node error Connection is closed\.|node 1 (connect|ready|close|end|reconnecting))$/;
    for (const name of ['plain', 'entra'] as const) {
      const others = events[name].filter((event) => !deadNode.test(event));
      assert.deepEqual(
        others.sort(),
        ['cluster connect', 'cluster ready', 'node 0 connect', 'node 0 ready', 'node 2 connect', 'node 2 ready'].sort(),
        name,
      );
    }
    assert.ok(events.entra.includes('cluster -node') && events.plain.includes('cluster -node'), 'the node was dropped');
    assert.deepEqual(failures.entra, failures.plain);
  });
});

describe('a new token the server refuses, and new node connections', () => {
  it('node connections made while the refusal stands present the held token', async () => {
    world.entra.tokenLifetimeSeconds = 12;
    try {
      const identity = world.entra.addManagedIdentity({ kind: 'user' });
      const provider = world.provider({ identity, tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
      const cluster = entraCluster(provider, { clusterRetryStrategy: () => 100 });
      const seen = recordEvents(cluster);
      for (let i = 0; i < 30; i++) await cluster.set(`refused:${i}`, String(i));
      const held = must(provider.currentToken(), 'a current token');
      refuseTokens((claims) => claims.oid === identity.oid && Number(claims.exp) * 1000 > serverExpiryOf(held));
      const [failure] = await nextEvent(provider, 'reauthenticationFailed');
      assert.equal(failure.refused, true);
      // New connections: every node's connection dropped (ioredis reconnects them), a slot-cache refresh, a
      // duplicate of the whole cluster.
      world.amr.closeAllConnections();
      (cluster as unknown as { refreshSlotsCache(): void }).refreshSlotsCache();
      const copy = world.track(cluster.duplicate());
      const copySeen = recordEvents(copy);
      for (const client of [cluster, copy]) {
        await waitUntil(
          async () => {
            try {
              // Bounded: a cluster whose nodes cannot authenticate holds commands in its offline queue for ever.
              const writes = Promise.all(Array.from({ length: 30 }, (_, i) => client.set(`refused:${i}`, String(i))));
              return await Promise.race([writes, rejectAfter(5_000)]);
            } catch {
              return false;
            }
          },
          { description: 'every slot reachable' },
        );
        for (const node of client.nodes('master')) {
          const emulator = must(world.amr.emulators[nodeIndexOf(node)], 'its emulator');
          assert.equal(connectionOf(emulator, node)?.expiresAt, serverExpiryOf(held), 'presented the held token');
        }
      }
      // Dropping the sockets can fail a write (EPIPE), as for any client; no handshake may be refused.
      assert.deepEqual(
        [...seen, ...copySeen].filter((event) => /WRONGPASS|NOAUTH/.test(event)),
        [],
        'no refused handshake',
      );
    } finally {
      refuseTokens(undefined);
      world.entra.tokenLifetimeSeconds = 3;
    }
  });
});
