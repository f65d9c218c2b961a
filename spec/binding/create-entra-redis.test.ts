// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { TokenUnavailableError } from '../../lib/errors.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: World;
before(async () => {
  world = await World.start();
});
after(async () => {
  await world.stop();
});

describe('createEntraRedis: drop-in for new Redis()', () => {
  before(() => {
    world.entra.tokenLifetimeSeconds = 30;
  });

  it('returns a real Redis synchronously; commands issued before the first token wait in the offline queue', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    assert.ok(redis instanceof Redis);
    assert.equal(provider.currentToken(), undefined, 'no token yet when the command is issued');
    assert.equal(await redis.set('k', 'v'), 'OK');
    assert.equal(await redis.call('ACL', 'WHOAMI'), world.identity.oid, 'authenticated as the token oid');
  });

  it('accepts (port, host, options) and (url, options)', async () => {
    const provider = world.provider();
    const { host, port } = world.endpoint;
    const byPort = world.track(createEntraRedis(port, host, { credentialsProvider: provider }));
    const byUrl = world.track(createEntraRedis(`redis://${host}:${port}/2`, { credentialsProvider: provider }));
    assert.equal(await byPort.ping(), 'PONG');
    await byUrl.set('in-db-2', '1');
    assert.equal(await byUrl.call('ACL', 'WHOAMI'), world.identity.oid);
    const admin = world.admin();
    await admin.select(2);
    assert.equal(await admin.get('in-db-2'), '1', 'db from the URL is kept');
  });

  it('keeps lazyConnect, keyPrefix, connectionName and enableOfflineQueue meanings', async () => {
    const provider = world.provider();
    const redis = world.track(
      createEntraRedis({
        ...world.endpoint,
        credentialsProvider: provider,
        lazyConnect: true,
        keyPrefix: 'app:',
        connectionName: 'entra-test',
      }),
    );
    assert.equal(redis.status, 'wait');
    assert.equal(world.amr.counters.open >= 0, true);
    await redis.set('prefixed', '1');
    assert.equal(await world.admin().get('app:prefixed'), '1');
    assert.equal(await redis.client('GETNAME'), 'entra-test');
    const noQueue = world.track(
      createEntraRedis({
        ...world.endpoint,
        credentialsProvider: world.provider(),
        enableOfflineQueue: false,
        lazyConnect: true,
      }),
    );
    await assert.rejects(noQueue.get('x'), /enableOfflineQueue/);
  });

  it('duplicate() and duplicates of duplicates authenticate with the provider', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.ping();
    const copy = world.track(redis.duplicate());
    const copyOfCopy = world.track(copy.duplicate({ connectionName: 'grandchild' }));
    assert.equal(await copy.call('ACL', 'WHOAMI'), world.identity.oid);
    assert.equal(await copyOfCopy.client('GETNAME'), 'grandchild');
    assert.equal(provider.subscriberCount, 3);
  });

  it('rejects a credentialsProvider that is not one', () => {
    assert.throws(() => createEntraRedis({ credentialsProvider: {} as never }), /Invalid option "credentialsProvider"/);
    assert.throws(
      () => createEntraRedis({ credentialsProvider: world.provider(), reauthJitter: -1 }),
      /Invalid option "reauthJitter"/,
    );
    assert.throws(
      () => createEntraRedis({ credentialsProvider: world.provider(), reauthJitter: 2 ** 31 }),
      /Invalid option "reauthJitter": must be at most 2147483647 ms/,
    );
  });

  it('quit() ends everything: the provider has no subscriber left and stops refreshing', async () => {
    const provider = world.provider();
    const redis = createEntraRedis({ ...world.endpoint, credentialsProvider: provider });
    await redis.ping();
    const copy = redis.duplicate();
    await copy.ping();
    assert.equal(provider.subscriberCount, 2);
    await redis.quit();
    copy.disconnect();
    await waitUntil(() => copy.status === 'end', { description: 'duplicate to end' });
    assert.equal(provider.subscriberCount, 0);
    assert.equal(provider.scheduleRunning, false);
  });

  it('a client disconnected while it waits for a token stays disconnected', async () => {
    const provider = world.provider();
    await world.entra.setFault({ kind: 'hang', endpoint: 'managed-identity' });
    try {
      const accepted = world.amr.counters.accepted;
      const redis = createEntraRedis({ ...world.endpoint, credentialsProvider: provider });
      await waitUntil(() => world.entra.requests.managedIdentity > 0, { description: 'token request' });
      redis.disconnect();
      await waitUntil(() => redis.status === 'end', { description: 'client to end' });
      await world.entra.clearFault();
      await provider.getToken({ timeout: 10_000 });
      assert.equal(redis.status, 'end');
      assert.equal(world.amr.counters.accepted, accepted, 'never connected');
    } finally {
      await world.entra.clearFault();
    }
  });

  it('disconnect() while a reconnect is scheduled ends the client and detaches it from the provider', async () => {
    // Plain ioredis stays 'reconnecting' for ever here (no 'end'); the library reconnects clients on purpose, so it
    // ends them the way ioredis ends a manually closed client.
    const provider = world.provider();
    const redis = createEntraRedis({ ...world.endpoint, credentialsProvider: provider, retryStrategy: () => 60_000 });
    redis.on('error', () => {});
    await redis.ping();
    assert.equal(provider.subscriberCount, 1);
    const reconnecting = new Promise((resolve) => redis.once('reconnecting', resolve));
    world.amr.closeAllConnections();
    await reconnecting;
    const queued = redis.get('queued-while-reconnecting').then(
      () => undefined,
      (error: unknown) => error,
    );
    let ended = false;
    redis.once('end', () => {
      ended = true;
    });
    redis.disconnect();
    await waitUntil(() => ended, { description: "the 'end' event" });
    assert.equal(redis.status, 'end');
    assert.match(String(await queued), /Connection is closed/, 'the offline queue is flushed');
    assert.equal(provider.subscriberCount, 0);
    assert.equal(provider.scheduleRunning, false);
  });

  it('a subscriber closed right after a reconnect, before its subscriptions are restored, leaves no unhandled rejection', async () => {
    // ioredis's ready handler resends SELECT and SUBSCRIBE/PSUBSCRIBE without handling their promises; the library
    // reconnects subscribers on purpose, so it handles them.
    const provider = world.provider();
    const subscriber = createEntraRedis({ ...world.endpoint, credentialsProvider: provider, db: 1 });
    const errors: unknown[] = [];
    subscriber.on('error', (error) => errors.push(error));
    await subscriber.subscribe('restore:channel');
    await subscriber.psubscribe('restore:*');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const ended = new Promise((resolve) => subscriber.once('end', resolve));
      // The 'ready' event comes right after ioredis has written the restoring commands, before their replies.
      subscriber.once('ready', () => subscriber.disconnect());
      subscriber.disconnect(true);
      await ended;
      await new Promise((resolve) => setImmediate(resolve)); // rejections not handled by now are reported as unhandled
      assert.deepEqual(unhandled.map(String), []);
      assert.deepEqual(errors.map(String), [], 'a client closed on purpose reports nothing');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('createEntraRedis: rotation under load (3 s tokens)', () => {
  before(() => {
    world.entra.tokenLifetimeSeconds = 3;
  });

  it('zero failed commands and zero expiry disconnects across many rotations', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    const rotations = countEvents(provider, 'tokenRefreshed');
    const reauths = countEvents(provider, 'reauthenticated');
    let ok = 0;
    const failures: unknown[] = [];
    let running = true as boolean; // cleared by the test while the loop runs
    const load = (async () => {
      for (let i = 0; running; i++) {
        try {
          await redis.set(`load:${i % 100}`, String(i));
          await redis.get(`load:${i % 100}`);
          ok++;
        } catch (error) {
          failures.push(error);
        }
      }
    })();
    // the first token is the connect's; each later one is re-sent on the live connection (awaited, not raced)
    await waitUntil(() => rotations.count >= 6 && reauths.count >= 5, {
      timeoutMs: 30_000,
      description: '6 token rotations, 5 re-authentications',
    });
    running = false;
    await load;
    assert.deepEqual(failures, []);
    assert.ok(ok > 0);
    assert.equal(world.amr.counters.expiryDisconnects, 0);
    assert.ok(reauths.count >= 5, `re-authentications: ${reauths.count}`);
    assert.equal(world.amr.counters.authFailed, 0);
  });

  it('20 clients sharing one provider make one token request per rotation', async () => {
    // an identity of its own, so that the emulator's per-identity counter sees only this provider
    const identity = world.entra.addManagedIdentity({ kind: 'user' });
    const provider = world.provider({ identity });
    const clients = Array.from({ length: 20 }, () =>
      world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider })),
    );
    await Promise.all(clients.map((c) => c.ping()));
    const before = world.entra.requests.byOid[identity.oid] ?? 0;
    const rotations = countEvents(provider, 'tokenRefreshed');
    const reauths = countEvents(provider, 'reauthenticated');
    await waitUntil(() => rotations.count >= 3 && reauths.count >= 60, {
      timeoutMs: 30_000,
      description: '3 rotations',
    });
    rotations.stop();
    const requests = (world.entra.requests.byOid[identity.oid] ?? 0) - before;
    assert.ok(requests <= rotations.count + 1, `${requests} token requests for ${rotations.count} rotations`);
    assert.equal(world.amr.counters.expiryDisconnects, 0);
  });

  it('an unauthenticated or expired token is never presented: reconnect after the token expired while disconnected', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.ping();
    const failedBefore = world.amr.counters.authFailed;
    await world.entra.setFault({ kind: 'down', endpoint: 'managed-identity' });
    await world.redis.kill();
    await waitUntil(() => provider.currentToken() === undefined, {
      timeoutMs: 10_000,
      description: 'the cached token to expire',
    });
    await world.redis.start();
    await world.entra.clearFault();
    assert.equal(await redis.ping(), 'PONG');
    assert.equal(world.amr.counters.authFailed, failedBefore, 'no WRONGPASS: the expired token was never presented');
  });

  it('reconnect after redis-server restarts uses a fresh token', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.ping();
    await world.redis.restart();
    await waitUntil(async () => (await redis.ping().catch(() => '')) === 'PONG', { description: 'ping after restart' });
    assert.equal(await redis.call('ACL', 'WHOAMI'), world.identity.oid);
  });

  it('token service down longer than a token life: commands fail clearly, then the client recovers by itself', async () => {
    const provider = world.provider();
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, maxRetriesPerRequest: null }),
    );
    redis.on('error', () => {});
    await redis.ping();
    await world.entra.setFault({ kind: 'down', endpoint: 'managed-identity' });
    try {
      await waitUntil(() => provider.currentToken() === undefined && redis.status !== 'ready', {
        timeoutMs: 10_000,
        description: 'token expiry and the server closing the connection',
      });
      const error = await redis.get('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof TokenUnavailableError, `got ${String(error)}`);
      assert.match(error.message, /No valid Entra ID token could be obtained/);
      assert.ok(error.cause !== undefined, 'carries the last cause');
    } finally {
      await world.entra.clearFault();
    }
    await waitUntil(async () => (await redis.ping().catch(() => '')) === 'PONG', {
      timeoutMs: 15_000,
      description: 'recovery',
    });
  });
});
