// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { createEntraCluster } from '../../lib/create-entra-cluster.js';
import { ClusterWorld, countEvents, nextEvent, waitUntil } from '../../harness/world.js';
import { must } from '../support/must.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: ClusterWorld;
before(async () => {
  world = await ClusterWorld.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

describe('createEntraCluster', () => {
  it('returns a real Cluster that reaches every master through natMap as the token oid', async () => {
    const provider = world.provider();
    const cluster = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    assert.ok(cluster instanceof Cluster);
    for (let i = 0; i < 30; i++) await cluster.set(`key:${i}`, String(i));
    const masters = cluster.nodes('master');
    assert.equal(masters.length, 3);
    for (const node of masters) assert.equal(await node.call('ACL', 'WHOAMI'), world.identity.oid);
    assert.equal(await cluster.get('key:29'), '29');
  });

  it('zero failed commands and zero expiry disconnects across rotations, slot refreshes included', async () => {
    const provider = world.provider();
    const cluster = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    await cluster.set('warm', '1');
    const expiryDisconnects = world.amr.total('expiryDisconnects');
    const authFailed = world.amr.total('authFailed');
    const rotations = countEvents(provider, 'tokenRefreshed');
    const failures: unknown[] = [];
    let running = true as boolean; // cleared by the test while the loop runs
    let refreshes = 0;
    const load = (async () => {
      for (let i = 0; running; i++) {
        try {
          await cluster.set(`load:${i % 300}`, String(i));
          if (i % 200 === 0) {
            (cluster as unknown as { refreshSlotsCache(cb?: (e?: Error) => void): void }).refreshSlotsCache();
            refreshes++;
          }
        } catch (error) {
          failures.push(error);
        }
      }
    })();
    await waitUntil(() => rotations.count >= 4, { timeoutMs: 30_000, description: '4 rotations' });
    running = false;
    await load;
    assert.deepEqual(failures, []);
    assert.ok(refreshes > 0);
    assert.equal(world.amr.total('expiryDisconnects'), expiryDisconnects);
    assert.equal(world.amr.total('authFailed'), authFailed);
  });

  it('a replaced node (killed and restarted) is reached again with the current token', async () => {
    const provider = world.provider();
    const cluster = world.track(
      createEntraCluster(world.amr.startupNodes(), {
        ...world.clusterOptions(),
        credentialsProvider: provider,
        clusterRetryStrategy: () => 100,
      }),
    );
    await cluster.set('before', '1');
    await world.cluster.killNode(1);
    await world.cluster.restartNode(1);
    await waitUntil(
      async () => {
        try {
          for (let i = 0; i < 30; i++) await cluster.set(`after:${i}`, String(i));
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 30_000, description: 'writes to every slot again' },
    );
    const masters = cluster.nodes('master');
    for (const node of masters) assert.equal(await node.call('ACL', 'WHOAMI'), world.identity.oid);
  });

  it('pub/sub through the cluster subscriber survives rotations without losing messages', async () => {
    const provider = world.provider();
    const subscriber = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    const publisher = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    const received: number[] = [];
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === 'news') received.push(Number(message));
    });
    await subscriber.subscribe('news');
    await publisher.set('warm', '1');
    // One node publishes everything: PUBLISH sent to different nodes reaches a subscriber by different paths
    // (locally or over the cluster bus), and Redis orders messages per path only.
    const publishingNode = must(publisher.nodes('master')[0], 'a master node');
    const rotations = countEvents(provider, 'tokenRefreshed');
    let sent = 0;
    let running = true as boolean; // cleared by the test while the loop runs
    const publishing = (async () => {
      while (running) {
        await publishingNode.publish('news', String(sent++));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 30_000, description: '3 rotations' });
    running = false;
    await publishing;
    await waitUntil(() => received.length >= sent || received.at(-1) === sent - 1, {
      timeoutMs: 5_000,
      description: 'last message',
    });
    const missing = sent - new Set(received).size;
    const duplicates = received.length - new Set(received).size;
    assert.equal(missing, 0, `lost ${missing} of ${sent}`);
    assert.equal(duplicates, 0, `${duplicates} duplicates`);
    assert.deepEqual(
      received,
      [...received].sort((a, b) => a - b),
      'in order',
    );
  });
});

describe('createEntraCluster: sharded pub/sub', () => {
  it('a sharded subscriber (SSUBSCRIBE) survives rotations without losing messages', async () => {
    const provider = world.provider();
    const subscriber = world.track(
      createEntraCluster(world.amr.startupNodes(), {
        ...world.clusterOptions(),
        credentialsProvider: provider,
        shardedSubscribers: true,
      }),
    );
    const publisher = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    const received: number[] = [];
    subscriber.on('smessage', (channel: string, message: string) => {
      if (channel === '{shard}news') received.push(Number(message));
    });
    await subscriber.ssubscribe('{shard}news');
    // The publisher's connection to the shard's node is up before the numbered messages: while a cluster client is
    // still discovering its nodes, commands queued during discovery can overtake one another.
    await publisher.spublish('{shard}warm-up', 'x');
    const rotations = countEvents(provider, 'tokenRefreshed');
    const expiryDisconnects = world.amr.total('expiryDisconnects');
    let sent = 0;
    const pending: Promise<unknown>[] = [];
    const timer = setInterval(() => {
      pending.push(publisher.spublish('{shard}news', String(sent++)));
    }, 5);
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 30_000, description: '3 rotations' });
    clearInterval(timer);
    await Promise.all(pending);
    await waitUntil(() => received.length >= sent, { timeoutMs: 5_000, description: 'last message' }).catch(() => {});
    const unique = new Set(received);
    assert.equal(sent - unique.size, 0, `lost ${sent - unique.size} of ${sent}`);
    assert.equal(received.length - unique.size, 0, 'duplicates');
    assert.deepEqual(
      received,
      [...received].sort((a, b) => a - b),
      'in order',
    );
    assert.equal(world.amr.total('expiryDisconnects'), expiryDisconnects);
  });
});

describe('createEntraCluster: duplicates, blocking commands, transactions, BullMQ', () => {
  it('cluster.duplicate() is a covered cluster sharing the provider', async () => {
    const provider = world.provider();
    const cluster = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    const copy = world.track(cluster.duplicate());
    await copy.set('dup', '1');
    const reauths = countEvents(provider, 'reauthenticated');
    await waitUntil(() => reauths.count >= 3, { timeoutMs: 15_000, description: 're-authentications' });
    assert.equal(await copy.get('dup'), '1');
    for (const node of copy.nodes('master')) assert.equal(await node.call('ACL', 'WHOAMI'), world.identity.oid);
  });

  it('BLPOP 0 on a cluster node, blocked across a token expiry, is reconnected in time and answered', async () => {
    const provider = world.provider();
    const cluster = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    const producer = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    await Promise.all([cluster.set('warm', '1'), producer.set('warm', '1')]);
    const expiryDisconnects = world.amr.total('expiryDisconnects');
    const reply = cluster.blpop('c:queue', 0);
    const [event] = await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
    assert.equal(event.token.oid, world.identity.oid);
    await waitUntil(
      async () =>
        (await producer
          .nodes('master')
          .reduce(
            async (n, node) =>
              (await n) + (String(await node.call('CLIENT', 'LIST')).match(/ cmd=blpop /g)?.length ?? 0),
            Promise.resolve(0),
          )) >= 1,
      { description: 'BLPOP resent' },
    );
    await producer.rpush('c:queue', 'v');
    assert.deepEqual(await reply, ['c:queue', 'v']);
    assert.equal(world.amr.total('expiryDisconnects'), expiryDisconnects);
  });

  it('multi() on one slot commits across rotations', async () => {
    const provider = world.provider();
    const cluster = world.track(
      createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }),
    );
    await cluster.del('{tx}counter');
    const rotations = countEvents(provider, 'tokenRefreshed');
    let committed = 0;
    let running = true as boolean; // cleared by the test while the loop runs
    const failures: unknown[] = [];
    const load = (async () => {
      while (running) {
        const result = await cluster
          .multi()
          .incr('{tx}counter')
          .get('{tx}counter')
          .exec()
          .catch((e: unknown) => e);
        const rows = Array.isArray(result) ? (result as [Error | null, unknown][]) : undefined;
        const [incr, get] = rows ?? [];
        if (!incr || !get || incr[0] || String(incr[1]) !== get[1]) failures.push(result);
        else committed++;
      }
    })();
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 20_000, description: '3 rotations' });
    running = false;
    await load;
    assert.deepEqual(failures, []);
    assert.equal(Number(await cluster.get('{tx}counter')), committed);
  });

  it('BullMQ on the cluster runs across rotations with no failed or stalled job', async () => {
    const { Queue, QueueEvents, Worker } = await import('bullmq');
    const provider = world.provider();
    const connection = () =>
      world.track(
        createEntraCluster(world.amr.startupNodes(), {
          ...world.clusterOptions(),
          credentialsProvider: provider,
          redisOptions: { ...world.clusterOptions().redisOptions, maxRetriesPerRequest: null },
        }),
      );
    const prefix = '{bull}';
    const queue = new Queue('cluster-jobs', { connection: connection(), prefix });
    const events = new QueueEvents('cluster-jobs', { connection: connection(), prefix });
    const worker = new Worker('cluster-jobs', async (job) => (job.data as { n: number }).n + 1, {
      connection: connection(),
      prefix,
      concurrency: 5,
    });
    const completed = new Set<string>();
    const problems: string[] = [];
    worker.on('completed', (job) => completed.add(String(job.id)));
    worker.on('failed', (job, error) => problems.push(`failed ${job?.id}: ${error.message}`));
    worker.on('stalled', (id) => problems.push(`stalled ${id}`));
    events.on('stalled', ({ jobId }) => problems.push(`stalled ${jobId}`));
    await Promise.all([worker.waitUntilReady(), events.waitUntilReady(), queue.waitUntilReady()]);
    try {
      const rotations = countEvents(provider, 'tokenRefreshed');
      const added: string[] = [];
      let running = true as boolean; // cleared by the test while the loop runs
      const producing = (async () => {
        for (let n = 0; running; n++) {
          added.push(String((await queue.add('inc', { n })).id));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      await waitUntil(() => rotations.count >= 4, { timeoutMs: 40_000, description: '4 rotations' });
      running = false;
      await producing;
      await waitUntil(() => added.every((id) => completed.has(id)), {
        timeoutMs: 20_000,
        description: 'every job completed',
      });
      assert.deepEqual(problems, []);
    } finally {
      await worker.close();
      await events.close();
      await queue.close();
    }
  });
});
