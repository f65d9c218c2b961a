// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, nextEvent, waitUntil, World } from '../../harness/world.js';
import { must } from '../support/must.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

interface BlockingCase {
  name: string;
  block(client: Redis): Promise<unknown>;
  produce(client: Redis): Promise<unknown>;
  expected: unknown;
}

const cases: BlockingCase[] = [
  {
    name: 'BLPOP',
    block: (c) => c.blpop('b:list1', 0),
    produce: (c) => c.rpush('b:list1', 'a'),
    expected: ['b:list1', 'a'],
  },
  {
    name: 'BRPOP',
    block: (c) => c.brpop('b:list2', 0),
    produce: (c) => c.rpush('b:list2', 'b'),
    expected: ['b:list2', 'b'],
  },
  {
    name: 'BLMOVE',
    block: (c) => c.blmove('b:list3', 'b:dest3', 'LEFT', 'RIGHT', 0),
    produce: (c) => c.rpush('b:list3', 'c'),
    expected: 'c',
  },
  {
    name: 'BZPOPMIN',
    block: (c) => c.bzpopmin('b:zset', 0),
    produce: (c) => c.zadd('b:zset', 1, 'm'),
    expected: ['b:zset', 'm', '1'],
  },
  {
    name: 'XREAD BLOCK',
    block: async (c) => {
      const reply = (await c.xread('BLOCK', 0, 'STREAMS', 'b:stream', '$')) as Array<
        [string, Array<[string, string[]]>]
      >;
      const [, entries] = must(reply[0], 'a stream in the XREAD reply');
      return must(entries[0], 'an entry of the stream')[1];
    },
    produce: (c) => c.xadd('b:stream', '*', 'field', 'value'),
    expected: ['field', 'value'],
  },
];

describe('blocking commands keep their semantics across re-authentication', () => {
  it('each blocking command, blocked across a token expiry, is reconnected in time, resent, and answered', async () => {
    const provider = world.provider();
    const producer = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await producer.ping();
    const clients = cases.map(() =>
      world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider })),
    );
    await Promise.all(clients.map((c) => c.ping()));
    const expiryDisconnects = world.amr.counters.expiryDisconnects;
    const reconnects = countEvents(provider, 'reauthenticated');
    const replies = cases.map((c, i) => c.block(must(clients[i], `the client of ${c.name}`)));
    const reconnected = new Set<string>();
    provider.on('reauthenticated', (e) => {
      if (e.method === 'reconnect') reconnected.add(e.connection);
    });
    await waitUntil(() => reconnects.count >= cases.length + 1 && clients.every((c) => c.status === 'ready'), {
      timeoutMs: 15_000,
      description: 'every blocked client moved to the fresh token',
    });
    // the resent commands block again on the new connections
    await waitUntil(
      async () =>
        String(await producer.call('CLIENT', 'LIST'))
          .split('\n')
          .filter((l) => / cmd=(blpop|brpop|blmove|bzpopmin|xread) /.test(l)).length >= cases.length,
      { description: 'all blocking commands resent' },
    );
    for (const c of cases) await c.produce(producer);
    for (const [i, c] of cases.entries()) assert.deepEqual(await replies[i], c.expected, c.name);
    assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects);
  });
});

describe('transactions keep their semantics across re-authentication', () => {
  it('pipelined multi() transactions all commit with correct results across rotations', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.del('tx:counter');
    const rotations = countEvents(provider, 'reauthenticated');
    let committed = 0;
    const wrong: unknown[] = [];
    let running = true as boolean; // cleared by the test while the loop runs
    const load = (async () => {
      while (running) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, () => redis.multi().incr('tx:counter').get('tx:counter').exec()),
        );
        for (const result of batch) {
          const [incr, get] = result ?? [];
          if (!incr || !get || incr[0] || String(incr[1]) !== get[1]) wrong.push(result);
          else committed++;
        }
      }
    })();
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 20_000, description: '3 re-authentications' });
    running = false;
    await load;
    assert.deepEqual(wrong, []);
    assert.equal(Number(await redis.get('tx:counter')), committed);
  });

  it('WATCH survives a re-AUTH: a watched key changed by another client still aborts EXEC', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    const other = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.set('w:key', '1');
    await redis.watch('w:key');
    await nextEvent(provider, 'reauthenticated', (e) => e.method === 'auth');
    await other.set('w:key', '2');
    assert.equal(await redis.multi().set('w:key', '3').exec(), null, 'EXEC aborted by the watched change');
    await redis.watch('w:key');
    await nextEvent(provider, 'reauthenticated', (e) => e.method === 'auth');
    const result = await redis.multi().set('w:key', '4').exec();
    assert.deepEqual(result, [[null, 'OK']], 'EXEC commits when nothing changed');
  });
});
