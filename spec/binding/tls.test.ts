// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';
import { must } from '../support/must.js';

let world: World;
before(async () => {
  world = await World.start({ tls: true, tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

it('connects and re-authenticates through TLS termination, as on port 10000', async () => {
  const provider = world.provider();
  const redis = world.track(createEntraRedis({ ...world.redisOptions(), credentialsProvider: provider }));
  assert.equal(await redis.call('ACL', 'WHOAMI'), world.identity.oid);
  const reauths = countEvents(provider, 'reauthenticated');
  await waitUntil(() => reauths.count >= 2, { timeoutMs: 15_000, description: 'two re-authentications over TLS' });
  assert.equal(await redis.ping(), 'PONG');
  assert.equal(world.amr.counters.expiryDisconnects, 0);
});

it('refuses a server whose certificate is not trusted, as ioredis does', async () => {
  const redis = world.track(
    createEntraRedis({ ...world.endpoint, tls: {}, credentialsProvider: world.provider(), maxRetriesPerRequest: 0 }),
  );
  const errors: Error[] = [];
  redis.on('error', (error: Error) => errors.push(error));
  await waitUntil(() => errors.length > 0, { description: 'a TLS error' });
  assert.match(must(errors[0], 'an error event').message, /self[- ]signed|certificate/i);
  redis.disconnect();
});
