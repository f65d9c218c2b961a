// ioredis majors: 5, 6
/**
 * The connection status events ioredis emits (close, reconnecting, connect, ready, end, error) and what a client with
 * `enableOfflineQueue: false` sees: none of it while tokens are applied in place; exactly those of a dropped
 * connection when the library must reconnect (a blocking command or a transaction held past its deadline, a RESP2
 * handover whose shadow connection failed).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, nextEvent, waitUntil, World } from '../../harness/world.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const STATUS_EVENTS = ['close', 'reconnecting', 'connect', 'ready', 'end', 'error', 'wait'];

/** Every status event of `redis` from now on, in order (an error with its message). */
function recordStatus(redis: Redis): string[] {
  const seen: string[] = [];
  for (const event of STATUS_EVENTS) {
    redis.on(event, (arg: unknown) => seen.push(arg instanceof Error ? `${event} ${arg.message}` : event));
  }
  return seen;
}

/** What a command sent at this moment gives the application: its reply, or its error's message. */
function outcomeOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (reply) => reply,
    (error: unknown) => `error: ${(error as Error).message}`,
  );
}

/**
 * On each status event, a GET sent from the listener (the earliest an application can act on it): what each gave, by
 * event. Only the first occurrence of each event is sampled.
 */
function sampleCommands(redis: Redis, key: string): Map<string, Promise<unknown>> {
  const sampled = new Map<string, Promise<unknown>>();
  for (const event of ['close', 'reconnecting', 'connect', 'ready']) {
    redis.on(event, () => {
      if (!sampled.has(event)) sampled.set(event, outcomeOf(redis.get(key)));
    });
  }
  return sampled;
}

async function settled(sampled: Map<string, Promise<unknown>>): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  for (const [event, outcome] of sampled) result[event] = await outcome;
  return result;
}

const OFFLINE = "error: Stream isn't writeable and enableOfflineQueue options is false";

describe('status events and enableOfflineQueue: false across rotations', () => {
  it('in-place re-AUTH: no status event, no failed command', async () => {
    const provider = world.provider();
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, enableOfflineQueue: false }),
    );
    await waitUntil(() => redis.status === 'ready', { description: 'ready' });
    const seen = recordStatus(redis);
    const reauthenticated = countEvents(provider, 'reauthenticated');
    const methods = new Set<string>();
    provider.on('reauthenticated', (event) => methods.add(event.method));
    const failures: string[] = [];
    let running = true as boolean; // cleared by the test while the loop runs
    const load = (async () => {
      for (let i = 0; running; i++) {
        await redis.set('inplace:k', String(i)).catch((error: unknown) => failures.push((error as Error).message));
        await redis.get('inplace:k').catch((error: unknown) => failures.push((error as Error).message));
      }
    })();
    await waitUntil(() => reauthenticated.count >= 3, { timeoutMs: 20_000, description: '3 re-authentications' });
    running = false;
    await load;
    assert.deepEqual([...methods], ['auth']);
    assert.deepEqual(seen, [], 'no status event');
    assert.deepEqual(failures, []);
  });

  it('a reconnect at the deadline (BLPOP 0 blocked past it) shows close, reconnecting, connect, ready, as a dropped connection does', async () => {
    const key = 'deadline:queue';
    const sawPlain = await (async () => {
      // A plain client whose connection drops while it blocks: the reference.
      const plain = world.track(new Redis({ ...world.redis.adminClientOptions(), enableOfflineQueue: false }));
      await waitUntil(() => plain.status === 'ready', { description: 'plain ready' });
      const seen = recordStatus(plain);
      const sampled = sampleCommands(plain, 'deadline:other');
      const reply = plain.blpop(`${key}:plain`, 0);
      await waitUntil(async () => /cmd=blpop/.test(String(await world.redis.command('CLIENT', 'LIST'))), {
        description: 'BLPOP blocked',
      });
      plain.stream.destroy();
      await waitUntil(() => seen.includes('ready'), { description: 'plain reconnected' });
      await world.redis.command('RPUSH', `${key}:plain`, 'v');
      const result = { events: [...seen], reply: await reply, sampled: await settled(sampled) };
      plain.disconnect();
      return result;
    })();

    const provider = world.provider();
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, enableOfflineQueue: false }),
    );
    await waitUntil(() => redis.status === 'ready', { description: 'ready' });
    const seen = recordStatus(redis);
    const sampled = sampleCommands(redis, 'deadline:other');
    const reply = redis.blpop(key, 0);
    const [event] = await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
    assert.equal(event.method, 'reconnect');
    await waitUntil(async () => /cmd=blpop/.test(String(await world.redis.command('CLIENT', 'LIST'))), {
      description: 'BLPOP resent',
    });
    await world.redis.command('RPUSH', key, 'v');
    assert.deepEqual(await reply, [key, 'v']);
    assert.deepEqual(seen, ['close', 'reconnecting', 'connect', 'ready']);
    assert.deepEqual(await settled(sampled), {
      close: OFFLINE,
      reconnecting: OFFLINE,
      connect: OFFLINE,
      ready: null,
    });
    assert.deepEqual(sawPlain, { events: seen, reply: [`${key}:plain`, 'v'], sampled: await settled(sampled) });
  });

  it('a reconnect at the deadline (a MULTI left open past it) shows close, reconnecting, connect, ready, and EXEC fails, as after a dropped connection', async () => {
    const key = 'deadline:multi';
    /** Opens a transaction, queues a SET and leaves it open; `drop` ends the connection; then EXEC. */
    const run = async (redis: Redis, drop: () => Promise<void>) => {
      await waitUntil(() => redis.status === 'ready', { description: 'ready' });
      const seen = recordStatus(redis);
      const sampled = sampleCommands(redis, `${key}:other`);
      assert.equal(await redis.multi({ pipeline: false }), 'OK');
      assert.equal(await redis.set(key, 'queued'), 'QUEUED');
      await drop();
      await waitUntil(() => seen.includes('ready'), { description: 'reconnected' });
      const exec = await outcomeOf(redis.exec());
      const after = await outcomeOf(redis.set(`${key}:after`, 'v'));
      return {
        events: [...seen],
        exec,
        after,
        sampled: await settled(sampled),
        committed: await world.redis.command('GET', key),
      };
    };
    // A plain client whose connection drops while its transaction is open: the reference.
    const plain = world.track(new Redis({ ...world.redis.adminClientOptions(), enableOfflineQueue: false }));
    const sawPlain = await run(plain, async () => {
      plain.stream.destroy();
    });
    plain.disconnect();

    const provider = world.provider();
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, enableOfflineQueue: false }),
    );
    const seen = await run(redis, async () => {
      const [event] = await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
      assert.equal(event.method, 'reconnect');
    });
    assert.deepEqual(seen.events, ['close', 'reconnecting', 'connect', 'ready']);
    assert.equal(seen.committed, null, 'nothing of the transaction was committed');
    assert.deepEqual(seen, sawPlain);
  });

  it('a RESP2 handover whose shadow connection fails: the fallback reconnect shows close, reconnecting, connect, ready', async () => {
    const resp2 = ((process.env.IOREDIS_MAJOR ?? '5') === '6' ? { protocol: 2 } : {}) as RedisOptions;
    const provider = world.provider();
    const name = 'failing-handover';
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, connectionName: name, ...resp2 }),
    );
    const received: string[] = [];
    redis.on('message', (_channel: string, message: string) => received.push(message));
    await redis.subscribe('fallback:ch');
    const seen = recordStatus(redis);
    // Every shadow connection of this client is dropped as soon as the emulator sees it named.
    let dropped = 0;
    const dropShadow = () => {
      for (const connection of world.amr.connections()) {
        if (connection.name === `${name}:shadow` && world.amr.drop(connection.id)) dropped++;
      }
    };
    world.amr.on('change', dropShadow);
    try {
      const [failure] = await nextEvent(provider, 'reauthenticationFailed', (e) => e.connection === name);
      assert.equal(failure.refused, false);
      await waitUntil(() => seen.includes('ready'), { description: 'the fallback reconnect' });
    } finally {
      world.amr.off('change', dropShadow);
    }
    assert.ok(dropped > 0);
    assert.deepEqual(seen, ['close', 'reconnecting', 'connect', 'ready']);
    const publisher = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await publisher.publish('fallback:ch', 'after');
    await waitUntil(() => received.includes('after'), { description: 'subscribed again' });
    assert.deepEqual(seen, ['close', 'reconnecting', 'connect', 'ready']);
  });
});
