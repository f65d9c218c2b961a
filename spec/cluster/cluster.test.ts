import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster, type Redis } from 'ioredis';
import { createEntraCluster } from '../../lib/create-entra-cluster.js';
import { ClusterWorld, countEvents, waitUntil } from '../support/world.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: ClusterWorld;
before(async () => { world = await ClusterWorld.start({ tokenLifetimeSeconds: 3 }); });
after(async () => { await world.stop(); });

describe('createEntraCluster', () => {
  it('returns a real Cluster that reaches every master through natMap as the token oid', async () => {
    const provider = world.provider();
    const cluster = world.track(createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }));
    assert.ok(cluster instanceof Cluster);
    for (let i = 0; i < 30; i++) await cluster.set(`key:${i}`, String(i));
    const masters = cluster.nodes('master');
    assert.equal(masters.length, 3);
    for (const node of masters) assert.equal(await node.call('ACL', 'WHOAMI'), world.identity.oid);
    assert.equal(await cluster.get('key:29'), '29');
  });

  it('zero failed commands and zero expiry disconnects across rotations, slot refreshes included', async () => {
    const provider = world.provider();
    const cluster = world.track(createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }));
    await cluster.set('warm', '1');
    const expiryDisconnects = world.amr.total('expiryDisconnects');
    const authFailed = world.amr.total('authFailed');
    const rotations = countEvents(provider, 'tokenRefreshed');
    const failures: unknown[] = [];
    let running = true;
    let refreshes = 0;
    const load = (async () => {
      for (let i = 0; running; i++) {
        try {
          await cluster.set(`load:${i % 300}`, String(i));
          if (i % 200 === 0) {
            await (cluster as unknown as { refreshSlotsCache(cb?: (e?: Error) => void): void }).refreshSlotsCache();
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
    const cluster = world.track(createEntraCluster(world.amr.startupNodes(), {
      ...world.clusterOptions(), credentialsProvider: provider, clusterRetryStrategy: () => 100,
    }));
    await cluster.set('before', '1');
    await world.cluster.killNode(1);
    await world.cluster.restartNode(1);
    await waitUntil(async () => {
      try {
        for (let i = 0; i < 30; i++) await cluster.set(`after:${i}`, String(i));
        return true;
      } catch {
        return false;
      }
    }, { timeoutMs: 30_000, description: 'writes to every slot again' });
    const masters = cluster.nodes('master');
    for (const node of masters) assert.equal(await node.call('ACL', 'WHOAMI'), world.identity.oid);
  });

  it('pub/sub through the cluster subscriber survives rotations without losing messages', async () => {
    const provider = world.provider();
    const subscriber = world.track(createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }));
    const publisher = world.track(createEntraCluster(world.amr.startupNodes(), { ...world.clusterOptions(), credentialsProvider: provider }));
    const received: number[] = [];
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === 'news') received.push(Number(message));
    });
    await subscriber.subscribe('news');
    await publisher.set('warm', '1');
    // One node publishes everything: PUBLISH sent to different nodes reaches a subscriber by different paths
    // (locally or over the cluster bus), and Redis orders messages per path only.
    const publishingNode = publisher.nodes('master')[0]!;
    const rotations = countEvents(provider, 'tokenRefreshed');
    let sent = 0;
    let running = true;
    const publishing = (async () => {
      while (running) {
        await publishingNode.publish('news', String(sent++));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 30_000, description: '3 rotations' });
    running = false;
    await publishing;
    await waitUntil(() => received.length >= sent || received.at(-1) === sent - 1, { timeoutMs: 5_000, description: 'last message' });
    const missing = sent - new Set(received).size;
    const duplicates = received.length - new Set(received).size;
    assert.equal(missing, 0, `lost ${missing} of ${sent}`);
    assert.equal(duplicates, 0, `${duplicates} duplicates`);
    assert.deepEqual(received, [...received].sort((a, b) => a - b), 'in order');
  });
});
