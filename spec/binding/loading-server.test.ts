// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { nextEvent, waitUntil, World } from '../../harness/world.js';

// A restarted redis-server that takes several token lifetimes to load its dataset: each key costs 2 ms to load, and
// the server answers its clients every 1 KiB loaded (as a large dataset does on a real server).
const KEYS = 3_000;
let world: World;
before(async () => {
  world = await World.start({
    tokenLifetimeSeconds: 3,
    redisConfig: ['key-load-delay 2000', 'loading-process-events-interval-bytes 1024'],
  });
});
after(async () => {
  await world.stop();
});

it('a connection waiting for a restarted server to load its dataset is re-authenticated in place, not closed at expiry', async () => {
  await world.redis.command(
    'EVAL',
    `for i = 1, ${KEYS} do redis.call('SET', 'load:' .. i, string.rep('x', 100)) end`,
    0,
  );
  await world.redis.command('SAVE');
  const provider = world.provider();
  const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
  await redis.ping();
  const expiryDisconnects = world.amr.counters.expiryDisconnects;
  const restarted = world.redis.restart();
  await waitUntil(() => redis.status === 'connect', {
    description: 'the client connected to the restarted server, waiting for it to load',
  });
  const [event] = await nextEvent(provider, 'reauthenticated', () => redis.status === 'connect');
  assert.equal(event.method, 'auth');
  await restarted;
  await waitUntil(() => redis.status === 'ready', {
    timeoutMs: 20_000,
    description: 'client ready once the dataset is loaded',
  });
  assert.equal(await redis.dbsize(), KEYS);
  assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects, 'no connection closed at its token expiry');
});
