// ioredis majors: 5, 6
// rate-limiter-flexible's RateLimiterRedis over an Entra ID client, across token rotations. It counts with a Lua
// script (a limiter with a duration) or with MULTI/INCRBY/PTTL/EXEC (duration 0), and reads with MULTI/GET/PTTL/EXEC:
// an AUTH landing inside a transaction would shift EXEC's replies, and a connection closed at token expiry would
// fail or resend an increment. Every count must come out exact.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const ROTATIONS = 3;
const WORKERS = 4;

it('RateLimiterRedis counts exactly across rotations, by Lua script and by MULTI', async () => {
  const provider = world.provider();
  const storeClient = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
  const admin = world.admin();
  const limiters = {
    // duration > 0: the Lua script (SET NX EX, INCRBY, PTTL)
    lua: new RateLimiterRedis({ storeClient, keyPrefix: 'rl-lua', points: 1_000_000, duration: 3600 }),
    // duration 0 (never expires): MULTI INCRBY PTTL EXEC
    multi: new RateLimiterRedis({ storeClient, keyPrefix: 'rl-multi', points: 1_000_000, duration: 0 }),
  };
  // A small budget spent across the rotations: exactly `points` allowed, the rest rejected.
  const strict = new RateLimiterRedis({ storeClient, keyPrefix: 'rl-strict', points: 40, duration: 3600 });
  const seen: Record<keyof typeof limiters, number[]> = { lua: [], multi: [] };
  const reads: Array<{ path: keyof typeof limiters; at: number; got: number }> = [];
  const strictResults = { allowed: 0, rejected: 0, lastAllowed: [] as number[] };
  const errors: string[] = [];

  const rotations = countEvents(provider, 'tokenRefreshed');
  const reauths = countEvents(provider, 'reauthenticated');
  const expiryDisconnects = world.amr.counters.expiryDisconnects;
  let running = true;
  const worker = async (id: number) => {
    for (let i = 0; running; i++) {
      try {
        for (const path of ['lua', 'multi'] as const) {
          const res = await limiters[path].consume('user');
          seen[path].push(res.consumedPoints);
          // a read right after our own increment sees at least it (MULTI GET PTTL)
          if (i % 5 === id)
            reads.push({ path, at: res.consumedPoints, got: (await limiters[path].get('user'))?.consumedPoints ?? -1 });
        }
        if (i % 10 === 0) {
          const res = await strict.consume('user').catch((rejection: unknown) => rejection);
          if (res instanceof RateLimiterRes && res.remainingPoints >= 0 && res.consumedPoints <= 40) {
            strictResults.allowed++;
            strictResults.lastAllowed.push(res.consumedPoints);
          } else if (res instanceof RateLimiterRes) {
            strictResults.rejected++;
          } else {
            throw res;
          }
        }
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, id) => worker(id));
  await waitUntil(() => rotations.count >= ROTATIONS && reauths.count >= ROTATIONS, {
    timeoutMs: 30_000,
    description: `${ROTATIONS} rotations`,
  });
  running = false;
  await Promise.all(workers);

  assert.deepEqual(errors, []);
  for (const path of ['lua', 'multi'] as const) {
    const counts = seen[path];
    assert.ok(counts.length > 200, `${path}: ${counts.length} consumptions`);
    // Every consume() got its own count: 1..n, no count twice, none skipped.
    assert.deepEqual(
      [...counts].sort((a, b) => a - b),
      Array.from({ length: counts.length }, (_, i) => i + 1),
      `${path}: counts 1..n`,
    );
    assert.equal(Number(await admin.get(`rl-${path}:user`)), counts.length, `${path}: the stored count`);
    assert.equal((await limiters[path].get('user'))?.consumedPoints, counts.length, `${path}: get()`);
  }
  for (const read of reads)
    assert.ok(
      read.got >= read.at && read.got <= seen[read.path].length,
      `${read.path} get(): ${read.got} after ${read.at}`,
    );
  assert.ok(reads.length > 20, `reads: ${reads.length}`);
  const strictTotal = strictResults.allowed + strictResults.rejected;
  assert.ok(strictTotal > 40, `strict limiter consumed ${strictTotal} times`);
  assert.equal(strictResults.allowed, 40, 'exactly the budget allowed');
  assert.equal(Number(await admin.get('rl-strict:user')), strictTotal, 'every attempt counted once');
  assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects, 'no connection closed at token expiry');
});
