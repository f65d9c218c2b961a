// ioredis majors: 5, 6
/**
 * RESP2 subscribers of a cluster (ioredis 5; ioredis 6 with `protocol: 2`), plain and sharded, while 3-second tokens
 * rotate and the cluster's topology changes (a node killed and restarted, a shard channel's slot migrated step by
 * step), and while the server refuses new tokens; and clusters with `enableOfflineQueue: false` while tokens rotate.
 * Each time a plain `Cluster` on the same path, with a token that outlives the test, is the reference: the messages,
 * subscription counts, errors and events the application sees must be those it sees.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis, type ClusterOptions } from 'ioredis';
import { createEntraCluster } from '../../lib/create-entra-cluster.js';
import { ClusterWorld, countEvents, nextEvent, waitUntil } from '../../harness/world.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { serverExpiryOf } from '../support/amr-connections.js';
import { must } from '../support/must.js';
import { admin, ownerOf } from '../support/cluster-slots.js';
import { IOREDIS5_SUBSCRIBE_BEFORE_READY } from '../support/ioredis5-subscribe-before-ready.js';
import { HANDOVER_CHANNEL, type HandoverPhaseMessage } from '../../lib/tracing.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: ClusterWorld;
before(async () => {
  world = await ClusterWorld.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const major = process.env.IOREDIS_MAJOR ?? '5';

/** RESP2 on both majors (ioredis 5 ignores the option: it speaks nothing else). */
const RESP2 = { protocol: 2 } as object;

function plainCluster(options: ClusterOptions = {}): Cluster {
  const oid = randomUUID();
  const password = world.entra.mint({ oid, exp: Math.floor(Date.now() / 1000) + 600 });
  return world.track(
    new Cluster(world.amr.startupNodes(), {
      ...world.clusterOptions(),
      ...options,
      redisOptions: { ...RESP2, ...options.redisOptions, username: oid, password },
    }),
  );
}

function entraCluster(provider: EntraCredentialsProvider, options: ClusterOptions = {}): Cluster {
  return world.track(
    createEntraCluster(world.amr.startupNodes(), {
      ...world.clusterOptions(),
      ...options,
      redisOptions: { ...RESP2, ...options.redisOptions },
      credentialsProvider: provider,
    }),
  );
}

/** An admin connection straight to one node: publishes bypass the emulators and the clients under test. */
function nodePublisher(index: number): Redis {
  const node = must(world.cluster.nodes[index], 'a node');
  const redis = world.track(new Redis({ ...node.adminClientOptions(), retryStrategy: () => 100 }));
  redis.on('error', () => {});
  return redis;
}

/** Index of the cluster node a connection goes to (directly, or through its emulator). */
function nodeIndexOf(redis: Redis): number {
  const port = Number(redis.options.port);
  const index = world.cluster.nodes.findIndex((node, i) => node.port === port || world.amr.emulators[i]?.port === port);
  assert.ok(index >= 0, `a node of the cluster (port ${port})`);
  return index;
}

/** The connection of the cluster's (non-sharded) subscriber, once it has one. */
function subscriberOf(cluster: Cluster): Redis {
  const subscriber = (cluster as unknown as { subscriber: { getInstance(): Redis | null } }).subscriber;
  return must(subscriber.getInstance() ?? undefined, 'a subscriber connection');
}

/**
 * Calls `onChange()` each time ioredis gives the cluster's subscriber a new connection (ClusterSubscriber's
 * selectSubscriber: its node failed, or left the slot cache), where a plain Cluster, too, loses what is published
 * until the new connection has subscribed.
 */
function onSubscriberChange(cluster: Cluster, onChange: () => void): void {
  const holder = (cluster as unknown as { subscriber: object }).subscriber;
  const own = Object.getOwnPropertyDescriptor(holder, 'subscriber');
  let current: unknown = own?.get ? (own.get.call(holder) as unknown) : own?.value;
  Object.defineProperty(holder, 'subscriber', {
    configurable: true,
    enumerable: true,
    get: (): unknown => (own?.get ? (own.get.call(holder) as unknown) : current),
    set: (value: unknown) => {
      if (own?.set) own.set.call(holder, value);
      current = value;
      if (value) onChange();
    },
  });
}

/** Errors and events an application can listen to on a cluster, messages left out. */
function recordClusterEvents(cluster: Cluster): string[] {
  const seen: string[] = [];
  for (const event of ['error', 'node error', 'end']) {
    cluster.on(event, (arg: unknown) => seen.push(`${event}${arg instanceof Error ? ` ${arg.message}` : ''}`));
  }
  return seen;
}

/** Numbered messages per channel, as received. */
function recordMessages(cluster: Cluster, event: 'message' | 'smessage'): Map<string, number[]> {
  const received = new Map<string, number[]>();
  cluster.on(event, (channel: string, message: string) => {
    let list = received.get(channel);
    if (!list) received.set(channel, (list = []));
    list.push(Number(message));
  });
  return received;
}

/**
 * Numbered messages per channel, as received, each with the subscriber connection that delivered it (1 for the
 * cluster's first, then one more each time ioredis gives it a new one). Found by a listener put first on each
 * connection: the cluster re-emits each connection's messages from its own listener, in the same emit.
 */
function recordMessagesByConnection(cluster: Cluster): Map<string, Array<{ n: number; via: number }>> {
  const received = new Map<string, Array<{ n: number; via: number }>>();
  let via = 0;
  let connections = 0;
  const watch = (redis: Redis) => {
    const id = ++connections;
    redis.prependListener('message', () => {
      via = id;
    });
  };
  watch(subscriberOf(cluster));
  onSubscriberChange(cluster, () => watch(subscriberOf(cluster)));
  cluster.on('message', (channel: string, message: string) => {
    let list = received.get(channel);
    if (!list) received.set(channel, (list = []));
    list.push({ n: Number(message), via });
  });
  return received;
}

/**
 * Throws unless each connection delivered its messages once each and in order, and no connection delivered after a
 * newer one. At the start of a new connection (ioredis moved the subscriber to another node) the numbers may step
 * back: each node receives what another node's client publishes over its own cluster-bus link, and the new node's copy
 * of the stream may lag behind the old node's, so that a plain Cluster too receives again, on the new connection,
 * messages the old one delivered. Returns the numbers, in the order received.
 */
function inOrderPerConnection(received: Array<{ n: number; via: number }>, label: string): number[] {
  for (let i = 1; i < received.length; i++) {
    const [previous, current] = [received[i - 1], received[i]] as [
      { n: number; via: number },
      { n: number; via: number },
    ];
    assert.ok(current.via >= previous.via, `${label}: connection ${current.via} delivered after ${previous.via}`);
    assert.ok(
      current.via > previous.via || current.n > previous.n,
      `${label}: ${current.n} after ${previous.n} on connection ${current.via}`,
    );
  }
  return received.map(({ n }) => n);
}

/**
 * The numbers of 0..sent-1 missing from `received`, as runs `[first, last]`; throws when a message came twice or out
 * of order.
 */
function gaps(received: number[], sent: number, label: string): Array<[number, number]> {
  for (let i = 1; i < received.length; i++) {
    assert.ok(
      (received[i] as number) > (received[i - 1] as number),
      `${label}: ${received[i]} after ${received[i - 1]}`,
    );
  }
  return missing(received, sent);
}

/** The numbers of 0..sent-1 missing from `received`, as runs `[first, last]`. */
function missing(received: number[], sent: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  const got = new Set(received);
  for (let n = 0; n < sent; n++) {
    if (got.has(n)) continue;
    const last = runs.at(-1);
    if (last && last[1] === n - 1) last[1] = n;
    else runs.push([n, n]);
  }
  return runs;
}

describe('a RESP2 subscriber of a cluster while tokens rotate and its node is killed and restarted', () => {
  it('SUBSCRIBE: each message once, in order, and no gap but the one a plain Cluster also has across the failure', async (t) => {
    const provider = world.provider();
    const retry = { clusterRetryStrategy: () => 100 };
    const channels = ['{s1}news', '{s2}news'];
    const plain = plainCluster(retry);
    const entra = entraCluster(provider, retry);
    const events = { plain: recordClusterEvents(plain), entra: recordClusterEvents(entra) };
    const counts = { plain: await plain.subscribe(...channels), entra: await entra.subscribe(...channels) };
    const delivered = { plain: recordMessagesByConnection(plain), entra: recordMessagesByConnection(entra) };
    const received = {
      plain: { get: (channel: string) => delivered.plain.get(channel)?.map(({ n }) => n) },
      entra: { get: (channel: string) => delivered.entra.get(channel)?.map(({ n }) => n) },
    };
    let sent = 0;
    const moves = { plain: [] as number[], entra: [] as number[] };
    onSubscriberChange(plain, () => moves.plain.push(sent));
    onSubscriberChange(entra, () => moves.entra.push(sent));
    // A handover that cannot complete before the old token expires (a process stalled for most of a 3-second
    // token's last second) falls back to a reconnect, which loses what is published meanwhile (docs/guarantees.md):
    // from what the subscriber had received then to what is published until it is ready again.
    const fallbacks: Array<{ after: Record<string, number>; until: number }> = [];
    const onPhase = (message: unknown) => {
      const { phase } = message as HandoverPhaseMessage;
      if (phase !== 'fallback') return;
      const subscriber = subscriberOf(entra);
      const fallback = {
        after: Object.fromEntries(channels.map((c) => [c, received.entra.get(c)?.at(-1) ?? -1])),
        until: Infinity,
      };
      fallbacks.push(fallback);
      const ended = () => {
        subscriber.off('ready', ended).off('end', ended);
        fallback.until = sent;
      };
      subscriber.on('ready', ended).on('end', ended);
    };
    diagnosticsChannel.subscribe(HANDOVER_CHANNEL, onPhase);
    t.after(() => diagnosticsChannel.unsubscribe(HANDOVER_CHANNEL, onPhase));
    assert.equal(counts.entra, counts.plain);
    // The node the library's subscriber is on fails; the publisher is on another node, which keeps running.
    const failing = nodeIndexOf(subscriberOf(entra));
    const publisher = nodePublisher((failing + 1) % world.cluster.nodes.length);
    const handovers = countEvents(provider, 'reauthenticated');
    let running = true as boolean; // cleared by the test while the loop runs
    const publishing = (async () => {
      while (running) {
        const n = sent++;
        await Promise.all(channels.map((channel) => publisher.publish(channel, String(n))));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await waitUntil(() => handovers.count >= 2, { timeoutMs: 20_000, description: 're-authentications' });
    const sentAtKill = sent;
    // What each had received when the node was killed: messages after that may be lost with the node.
    const lastAtKill = (name: 'plain' | 'entra', channel: string) => received[name].get(channel)?.at(-1) ?? -1;
    const atKill = Object.fromEntries(
      (['plain', 'entra'] as const).flatMap((name) => channels.map((c) => [`${name} ${c}`, lastAtKill(name, c)])),
    );
    await world.cluster.killNode(failing);
    await nextEvent(provider, 'tokenRefreshed');
    await world.cluster.restartNode(failing);
    // Both clients receive what is published after the restart: the failure is over (until then, ioredis may still
    // move a plain Cluster's subscriber as its slot cache catches up, and lose messages on the way).
    const restartedAt = sent;
    await waitUntil(
      () =>
        [received.plain, received.entra].every((map) =>
          channels.every((channel) => (map.get(channel)?.at(-1) ?? -1) >= restartedAt),
        ),
      { timeoutMs: 30_000, description: 'both subscribers receive again' },
    );
    const resumedAt = sent;
    const rotations = countEvents(provider, 'tokenRefreshed');
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 30_000, description: '3 rotations' });
    running = false;
    await publishing;
    await waitUntil(
      () =>
        [received.plain, received.entra].every((map) =>
          channels.every((channel) => map.get(channel)?.at(-1) === sent - 1),
        ),
      { timeoutMs: 10_000, description: 'the last message' },
    );
    t.diagnostic(`handover fallbacks: ${fallbacks.length}; moves: ${JSON.stringify(moves)}`);
    for (const name of ['plain', 'entra'] as const) {
      for (const channel of channels) {
        // Each message once and in order on each connection, never across a handover; a step back only where
        // ioredis moved the subscriber to a connection on another node.
        const numbers = inOrderPerConnection(delivered[name].get(channel) ?? [], `${name} ${channel}`);
        // A gap only where ioredis moved the subscriber to a new connection (the failed node's, or one it dropped
        // as its slot cache caught up), or across a handover that fell back to a reconnect (entra only): never
        // across a handover.
        for (const [first, last] of missing(numbers, sent)) {
          const inFailure = first > (atKill[`${name} ${channel}`] as number) && last < resumedAt;
          const atMove = moves[name].some((at) => at >= first && at <= last + 1);
          const inFallback =
            name === 'entra' &&
            fallbacks.some((fallback) => first > (fallback.after[channel] as number) && last < fallback.until);
          assert.ok(
            inFailure || atMove || inFallback,
            `${name} ${channel}: gap ${first}..${last}; killed at ${sentAtKill} (received ${atKill[`${name} ${channel}`]}), resumed at ${resumedAt}, moves ${JSON.stringify(moves[name])}, fallbacks ${JSON.stringify(fallbacks)}`,
          );
        }
      }
    }
    // What a new subscription is answered: the count of the application's channels, on both.
    counts.plain = await plain.subscribe('{s3}news');
    counts.entra = await entra.subscribe('{s3}news');
    assert.equal(counts.entra, counts.plain);
    assert.equal(await entra.unsubscribe(...channels), await plain.unsubscribe(...channels));
    assert.deepEqual(events.entra, events.plain);
  });
});

describe('a RESP2 sharded subscriber of a cluster while tokens rotate and its slot migrates', () => {
  /**
   * Subscribes `cluster` to `channel` (SSUBSCRIBE), publishes numbered messages to it through the slot's owner while
   * the slot migrates to the next node step by step (IMPORTING/MIGRATING, then SETSLOT NODE everywhere), and returns
   * what the application saw. `between()` runs between the steps.
   */
  async function scenario(cluster: Cluster, channel: string, between: () => Promise<void>) {
    const received = recordMessages(cluster, 'smessage');
    const events = recordClusterEvents(cluster);
    const counts: unknown[] = [await cluster.ssubscribe(channel)];
    const slot = Number(await admin(must(world.cluster.nodes[0], 'a node'), 'CLUSTER', 'KEYSLOT', channel));
    const from = await ownerOf(world.cluster.nodes, slot);
    const to = (from + 1) % world.cluster.nodes.length;
    const source = must(world.cluster.nodes[from], 'the source');
    const target = must(world.cluster.nodes[to], 'the target');
    const sourceId = String(await admin(source, 'CLUSTER', 'MYID'));
    const targetId = String(await admin(target, 'CLUSTER', 'MYID'));
    const publishers = [nodePublisher(from), nodePublisher(to)];
    let sent = 0;
    let owner = 0; // which publisher reaches the owner
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const n = sent++;
        // (not checked: the server counts two subscribers for a moment while a RESP2 subscriber is handed over)
        await must(publishers[owner], 'a publisher').spublish(channel, String(n));
      }
    };
    await publish(20);
    await between();
    await admin(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
    await admin(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
    await publish(20);
    await between();
    await publish(20);
    for (const node of world.cluster.nodes) await admin(node, 'CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
    owner = 1;
    // ioredis 6 follows the source's unsolicited SUNSUBSCRIBE with a slot-cache refresh; ioredis 5 needs one.
    (cluster as unknown as { refreshSlotsCache(): void }).refreshSlotsCache();
    // The source drops its subscribers of the slot; ioredis follows the channel to the target.
    const resumedAt = sent;
    await waitUntil(
      async () => {
        const n = sent++;
        const reached = Number(await must(publishers[1], 'a publisher').spublish(channel, String(n)));
        return reached >= 1 && (received.get(channel)?.at(-1) ?? -1) >= resumedAt;
      },
      { timeoutMs: 20_000, intervalMs: 20, description: 'the channel followed to the target' },
    );
    await between();
    await publish(20);
    await between();
    await publish(20);
    await waitUntil(() => received.get(channel)?.at(-1) === sent - 1, { description: 'the last message' });
    counts.push(await cluster.ssubscribe(`{${channel}}other`));
    counts.push(await cluster.sunsubscribe(channel));
    counts.push(await cluster.sunsubscribe(`{${channel}}other`));
    const runs = gaps(received.get(channel) ?? [], sent, channel);
    return { runs, resumedAt, sent, counts, events: [...events], received: [...received.keys()] };
  }

  it('SSUBSCRIBE: what a plain Cluster sees (messages, counts, events), no message lost outside the move', async () => {
    const sharded = { shardedSubscribers: true } as ClusterOptions;
    const plain = plainCluster(sharded);
    const plainSeen = await scenario(plain, 'migrating-news', () => Promise.resolve());
    plain.disconnect();
    const provider = world.provider();
    const entra = entraCluster(provider, sharded);
    const between = async () => {
      await nextEvent(provider, 'reauthenticated', (e) => e.method === 'handover');
    };
    const entraSeen = await scenario(entra, 'migrating-news', between);
    // The messages published while ioredis follows the channel to the new owner: a loss there is ioredis's own
    // (the plain Cluster's too); anywhere else, none.
    for (const [name, seen] of [
      ['plain', plainSeen],
      ['entra', entraSeen],
    ] as const) {
      for (const [first] of seen.runs) assert.ok(first >= seen.resumedAt - 1, `${name}: gap from ${first}`);
    }
    assert.deepEqual(entraSeen.counts, plainSeen.counts);
    assert.deepEqual(entraSeen.events, plainSeen.events);
    assert.deepEqual(entraSeen.received, plainSeen.received);
  });
});

describe('a RESP2 cluster subscriber while the server refuses new tokens', () => {
  it('stays on its connection: no message lost or twice, no error, no reconnect, then moves to the next token', async () => {
    world.entra.tokenLifetimeSeconds = 12;
    const refuse = (predicate: ((claims: Record<string, unknown>) => boolean) | undefined) => {
      for (const emulator of world.amr.emulators) emulator.refuseTokens(predicate);
    };
    try {
      const identity = world.entra.addManagedIdentity({ kind: 'user' });
      const provider = world.provider({ identity, tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
      const channel = '{refused}news';
      const entra = entraCluster(provider);
      const plain = plainCluster();
      const events = { plain: recordClusterEvents(plain), entra: recordClusterEvents(entra) };
      const received = { plain: recordMessages(plain, 'message'), entra: recordMessages(entra, 'message') };
      assert.equal(await entra.subscribe(channel), await plain.subscribe(channel));
      const subscriber = subscriberOf(entra);
      const publisher = nodePublisher(0);
      let sent = 0;
      let running = true as boolean; // cleared by the test while the loop runs
      const publishing = (async () => {
        while (running) {
          await publisher.publish(channel, String(sent++));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const held = must(provider.currentToken(), 'a current token');
      const port = subscriber.stream.localPort;
      refuse((claims) => claims.oid === identity.oid && Number(claims.exp) * 1000 > serverExpiryOf(held));
      const [failure] = await nextEvent(provider, 'reauthenticationFailed');
      assert.equal(failure.refused, true);
      const refusedAt = sent;
      await waitUntil(() => (received.entra.get(channel)?.at(-1) ?? -1) > refusedAt + 20, {
        description: 'messages while the refusal stands',
      });
      assert.equal(subscriber.stream.localPort, port, 'still on its connection');
      assert.equal(subscriberOf(entra), subscriber);
      refuse(undefined);
      await nextEvent(
        provider,
        'reauthenticated',
        (e) => e.method === 'handover' && e.token.expiresOn > held.expiresOn,
        30_000,
      );
      const movedAt = sent;
      await waitUntil(() => (received.entra.get(channel)?.at(-1) ?? -1) > movedAt + 20, {
        description: 'messages after the handover',
      });
      running = false;
      await publishing;
      await waitUntil(() => [received.plain, received.entra].every((map) => map.get(channel)?.at(-1) === sent - 1), {
        description: 'the last message',
      });
      assert.deepEqual(gaps(received.entra.get(channel) ?? [], sent, 'entra'), []);
      assert.deepEqual(gaps(received.plain.get(channel) ?? [], sent, 'plain'), []);
      assert.equal(subscriberOf(entra), subscriber, 'the same subscriber connection object');
      assert.deepEqual(events.entra, events.plain);
      assert.equal(await entra.unsubscribe(channel), await plain.unsubscribe(channel));
    } finally {
      refuse(undefined);
      world.entra.tokenLifetimeSeconds = 3;
    }
  });
});

describe('a cluster with enableOfflineQueue: false while tokens rotate', () => {
  const variants: Array<[string, ClusterOptions]> = [
    ['enableOfflineQueue: false', { enableOfflineQueue: false }],
    // (ioredis's types leave it out of redisOptions, and its node connections ignore it: passed as JavaScript would)
    ['redisOptions: { enableOfflineQueue: false }', { redisOptions: { enableOfflineQueue: false } as object }],
  ];
  for (const [name, options] of variants) {
    it(`${name}: commands and subscriptions succeed as on a plain Cluster whose token never expires`, async (t) => {
      const provider = world.provider();
      const clusters = { plain: plainCluster(options), entra: entraCluster(provider, options) };
      const events = { plain: recordClusterEvents(clusters.plain), entra: recordClusterEvents(clusters.entra) };
      // The offline queue is off: commands wait for the cluster to be ready before they are sent.
      for (const cluster of Object.values(clusters)) {
        if (cluster.status !== 'ready') await new Promise((resolve) => cluster.once('ready', resolve));
      }
      const failures = { plain: [] as string[], entra: [] as string[] };
      const rotations = countEvents(provider, 'tokenRefreshed');
      let running = true as boolean; // cleared by the test while the loops run
      const load = (key: 'plain' | 'entra') =>
        (async () => {
          const cluster = clusters[key];
          for (let i = 0; running; i++) {
            let step = 'set';
            try {
              await cluster.set(`offline:${key}:${i % 100}`, String(i));
              if (i % 50 === 0) {
                // a RESP2 subscriber handed over at every rotation, (un)subscribing meanwhile
                step = 'subscribe';
                await cluster.subscribe(`offline:${key}:${i}`);
                step = 'unsubscribe';
                await cluster.unsubscribe(`offline:${key}:${i - 50}`);
              }
            } catch (error) {
              failures[key].push(`${step}: ${(error as Error).message}`);
            }
          }
        })();
      const loads = [load('plain'), load('entra')];
      await waitUntil(() => rotations.count >= 4, { timeoutMs: 30_000, description: '4 rotations' });
      running = false;
      await Promise.all(loads);
      // The library reconnects its RESP2 subscriber at every rotation; the plain Cluster's never reconnects here. On
      // ioredis 5 any reconnect of a subscriber may reject an (un)subscribe sent during the new connection's handshake
      // (spec/cluster/subscriber-reconnect-race.test.ts shows it on a plain Cluster; docs/guarantees.md): those
      // rejections are ioredis's, and the only difference allowed.
      const ioredis5Race = (failure: string) =>
        major === '5' &&
        /^(subscribe|unsubscribe): /.test(failure) &&
        IOREDIS5_SUBSCRIBE_BEFORE_READY.test(failure.replace(/^\w+: /, ''));
      t.diagnostic(`ioredis 5 rejections: ${failures.entra.filter(ioredis5Race).length}`);
      assert.deepEqual(failures.plain, []);
      assert.deepEqual(
        failures.entra.filter((failure) => !ioredis5Race(failure)),
        [],
      );
      assert.deepEqual(events.entra, events.plain);
    });
  }
});

describe('a cluster with enableOfflineQueue: false and a node blocked past its deadline', () => {
  it(
    "a command sent to the node during the library's reconnect is answered, as on a plain Cluster",
    { todo: 'on ioredis 5, 1 run in 3: "Too many Cluster redirections" (MOVED); the cause is not known yet' },
    async () => {
      const provider = world.provider();
      const cluster = entraCluster(provider, { enableOfflineQueue: false });
      const producer = entraCluster(provider);
      await new Promise((resolve) => cluster.once('ready', resolve));
      await Promise.all([cluster.set('{q}warm', '1'), producer.set('{q}warm', '1')]);
      // Only the blocked node's connection is reconnected (the others are re-authenticated in place).
      const during: unknown[] = [];
      for (const node of cluster.nodes('master')) {
        node.once('reconnecting', () => {
          cluster.get('{q}warm').then(
            (reply) => during.push(reply),
            (error: unknown) => during.push(`error: ${(error as Error).message}`),
          );
        });
      }
      const reply = cluster.blpop('{q}queue', 0);
      await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
      await producer.rpush('{q}queue', 'v');
      assert.deepEqual(await reply, ['{q}queue', 'v']);
      await waitUntil(() => during.length > 0, { description: 'the command sent during the reconnect settled' });
      // (on a plain Cluster, whose node is never reconnected, it is answered once BLPOP returns)
      assert.deepEqual(during, ['1']);
    },
  );
});
