// ioredis majors: 5, 6
/**
 * Inputs where an application could tell a client of createEntraRedis() from a plain ioredis client on a server whose
 * tokens never expire. Each test states what the plain client observes and asserts that.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import type { Redis, RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { HANDOVER_CHANNEL, type HandoverPhaseMessage } from '../../lib/tracing.js';
import { nextEvent, waitUntil, World } from '../../harness/world.js';
import { must } from '../support/must.js';
import { handoverEnded } from '../support/handover-ended.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const major = process.env.IOREDIS_MAJOR ?? '5';
/**
 * Every test here states what a plain client observes and fails today: marked todo (reported, not counted as a
 * failure) until the library is changed; remove the mark from a test once it passes.
 */
const NOT_YET_FIXED = { todo: 'the library differs from a plain client here' };
/** RESP2 on both majors (ioredis 6 speaks RESP3 unless told). */
const resp2 = (major === '6' ? { protocol: 2 } : {}) as RedisOptions;

function client(provider: EntraCredentialsProvider, extra: RedisOptions = {}): Redis {
  return world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider, ...extra }));
}

/** Calls `onPhase` synchronously for every handover phase of connections named `name`. */
function watchPhases(name: string, onPhase: (phase: HandoverPhaseMessage['phase']) => void) {
  const listener = (message: unknown) => {
    const m = message as HandoverPhaseMessage;
    if (m.connection === name) onPhase(m.phase);
  };
  diagnosticsChannel.subscribe(HANDOVER_CHANNEL, listener);
  return () => diagnosticsChannel.unsubscribe(HANDOVER_CHANNEL, listener);
}

describe(`adversarial: RESP2 subscriber handover (ioredis ${major})`, () => {
  // A plain client's disconnect() ends its socket (FIN) and still reads what the server sent until the server closes
  // the connection: messages in flight may arrive after disconnect(), none published after the server closed it.
  it('disconnect() while the handover reconnects the client: a gap-free run of messages, none published after its connection closed', async () => {
    const provider = world.provider();
    const name = 'adv-disconnect-in-handover';
    const redis = client(provider, { connectionName: name, ...resp2 });
    const publisher = client(provider);
    let disconnected = false as boolean; // set by the phase watcher while the loop runs
    const received: number[] = [];
    redis.on('message', (_channel: string, message: string) => received.push(Number(message)));
    await redis.subscribe('adv:q');
    /** The first message published once the client had ended (its connection closed at the server before). */
    let firstAfterEnd: number | undefined;
    let n = 0;
    const ended = new Promise<void>((resolve) =>
      redis.once('end', () => {
        firstAfterEnd = n;
        resolve();
      }),
    );
    const stop = watchPhases(name, (phase) => {
      if (phase === 'reconnecting' && !disconnected) {
        disconnected = true;
        queueMicrotask(() => redis.disconnect());
      }
    });
    try {
      while (!disconnected) {
        await publisher.publish('adv:q', String(n++));
        await new Promise((r) => setTimeout(r, 5));
      }
      await ended;
      // Keep publishing while a connection of its handover lives.
      await waitUntil(
        async () => {
          await publisher.publish('adv:q', String(n++));
          return !world.amr.connections().some((c) => c.name === `${name}:shadow`);
        },
        { timeoutMs: 20_000, intervalMs: 5, description: 'the shadow connection gone' },
      );
      const after = must(firstAfterEnd, "the client's end");
      assert.deepEqual(
        received.filter((m) => m >= after),
        [],
        'messages published after the client ended were delivered',
      );
      // As on a plain client: from the first message on, each one once, in order, none skipped.
      assert.deepEqual(
        received,
        received.map((_, i) => i),
        'not a gap-free run of the messages published',
      );
    } finally {
      stop();
      publisher.disconnect();
    }
  });

  // With a keyPrefix the handover's marker is a plain channel (see docs/guarantees.md), without one a sharded channel.
  for (const keyPrefix of [undefined, 'app:']) {
    it(`the subscription count in the replies of SUBSCRIBE and UNSUBSCRIBE sent while a handover runs${keyPrefix ? ' (keyPrefix)' : ''}`, async () => {
      const provider = world.provider();
      const name = `adv-count-in-handover${keyPrefix ? '-prefix' : ''}`;
      const redis = client(provider, { connectionName: name, keyPrefix, ...resp2 });
      assert.equal(await redis.subscribe('adv:a'), 1);
      const replies: Promise<unknown>[] = [];
      const stop = watchPhases(name, (phase) => {
        // The application subscribes and leaves one more channel the moment the handover has begun.
        if (phase === 'shadowing' && replies.length === 0)
          replies.push(redis.subscribe('adv:b'), redis.unsubscribe('adv:b'));
      });
      try {
        await handoverEnded(provider, name);
        // A plain client subscribed to adv:a alone is answered 2, then 1.
        assert.deepEqual(await Promise.all(replies), [2, 1]);
      } finally {
        stop();
        redis.disconnect();
      }
    });
  }

  it(
    'keyPrefix with sharded subscriptions: the application still receives its channel after a rotation',
    NOT_YET_FIXED,
    async () => {
      const provider = world.provider();
      const name = 'adv-prefix-sharded';
      const redis = client(provider, { connectionName: name, keyPrefix: 'app:', ...resp2 });
      const publisher = client(provider, { keyPrefix: 'app:' });
      const received: string[] = [];
      redis.on('smessage', (_channel: string, message: string) => received.push(message));
      await redis.ssubscribe('news');
      await handoverEnded(provider, name);
      await waitUntil(() => redis.status === 'ready', { description: 'the client ready' });
      // A plain client (no rotation) is still subscribed to app:news and nothing else.
      const admin = world.admin();
      assert.deepEqual(await admin.call('PUBSUB', 'SHARDCHANNELS'), ['app:news']);
      await waitUntil(
        async () => {
          await publisher.spublish('news', 'after');
          return received.includes('after');
        },
        { timeoutMs: 5_000, description: "a message on the application's sharded channel" },
      );
      publisher.disconnect();
      redis.disconnect();
    },
  );
});

/**
 * A reconnect only the library causes: BLPOP 0 still blocked at the re-AUTH deadline. The element is then pushed in
 * each of `databases`, wherever the resent BLPOP waits.
 */
async function reconnectBehindBlpop(
  provider: EntraCredentialsProvider,
  redis: Redis,
  key: string,
  databases = [0],
): Promise<void> {
  const pusher = client(provider);
  const reply = redis.blpop(key, 0);
  await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
  await waitUntil(() => redis.status === 'ready', { description: 'ready again' });
  for (const db of databases) {
    await pusher.select(db);
    await pusher.rpush(key, 'x');
  }
  assert.deepEqual(await reply, [key, 'x']);
  pusher.disconnect();
}

describe(`adversarial: the name of a connection across a reconnect the library causes (ioredis ${major})`, () => {
  it('CLIENT SETNAME inside a discarded MULTI does not rename the connection', async () => {
    const provider = world.provider();
    const redis = client(provider);
    await redis.call('CLIENT', 'SETNAME', 'kept');
    await redis.multi({ pipeline: false });
    await redis.call('CLIENT', 'SETNAME', 'discarded');
    assert.equal(await redis.discard(), 'OK');
    assert.equal(await redis.call('CLIENT', 'GETNAME'), 'kept');
    await reconnectBehindBlpop(provider, redis, 'adv:name:discard');
    assert.equal(await redis.call('CLIENT', 'GETNAME'), 'kept', 'a plain client is still named "kept"');
    redis.disconnect();
  });

  it('a CLIENT SETNAME the server refused does not replace the name', async () => {
    const provider = world.provider();
    const redis = client(provider);
    await redis.call('CLIENT', 'SETNAME', 'kept');
    await assert.rejects(redis.call('CLIENT', 'SETNAME', 'has space'), /spaces/);
    await reconnectBehindBlpop(provider, redis, 'adv:name:refused');
    assert.equal(await redis.call('CLIENT', 'GETNAME'), 'kept', 'a plain client is still named "kept"');
    redis.disconnect();
  });

  it('a name set with HELLO ... SETNAME is kept', async () => {
    const provider = world.provider();
    const redis = client(provider);
    await redis.call('HELLO', major === '6' ? '3' : '2', 'SETNAME', 'hello-named');
    assert.equal(await redis.call('CLIENT', 'GETNAME'), 'hello-named');
    await reconnectBehindBlpop(provider, redis, 'adv:name:hello');
    assert.equal(await redis.call('CLIENT', 'GETNAME'), 'hello-named', 'a plain client is still named "hello-named"');
    redis.disconnect();
  });
});

describe(`adversarial: the selected database across a reconnect the library causes (ioredis ${major})`, () => {
  it('SELECT inside a discarded MULTI does not change the database', async () => {
    const provider = world.provider();
    const redis = client(provider);
    redis.on('error', () => {});
    await redis.select(2);
    await redis.multi({ pipeline: false });
    await redis.select(3);
    assert.equal(await redis.discard(), 'OK');
    await redis.set('adv:db', 'two');
    await reconnectBehindBlpop(provider, redis, 'adv:db:discard', [0, 1, 2, 3]);
    assert.equal(await redis.get('adv:db'), 'two', 'a plain client is still on database 2');
    redis.disconnect();
  });

  it('a SELECT the server refused does not change the database', async () => {
    const provider = world.provider();
    const redis = client(provider);
    redis.on('error', () => {});
    await redis.select(2);
    await assert.rejects(redis.select(99), /out of range/);
    await redis.set('adv:db2', 'two');
    await reconnectBehindBlpop(provider, redis, 'adv:db:refused', [0, 1, 2, 3]);
    assert.equal(await redis.get('adv:db2'), 'two', 'a plain client is still on database 2');
    redis.disconnect();
  });
});

describe(`adversarial: MONITOR (ioredis ${major})`, () => {
  it(
    'a monitor connection lives across rotations, as it does on a server whose tokens never expire',
    NOT_YET_FIXED,
    async () => {
      const provider = world.provider();
      const redis = client(provider);
      await redis.ping();
      const monitor = world.track(await redis.monitor());
      let closes = 0;
      monitor.on('close', () => {
        closes++;
      });
      monitor.on('error', () => {});
      const seen: string[][] = [];
      monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));
      const expiries = world.amr.counters.expiryDisconnects;
      const start = must(provider.currentToken(), 'a current token');
      // Two new tokens: the one the monitor connected with has expired by then.
      await nextEvent(provider, 'tokenRefreshed', (e) => e.expiresOn > start.expiresOn);
      await waitUntil(() => Date.now() > start.expiresOn + 500, {
        timeoutMs: 10_000,
        description: 'the first token expired',
      });
      await redis.set('adv:monitored', '1');
      await waitUntil(() => seen.some((args) => args[0]?.toLowerCase() === 'set'), {
        description: 'the SET monitored',
      });
      assert.equal(closes, 0, 'the monitor connection was closed');
      assert.equal(world.amr.counters.expiryDisconnects, expiries, 'the server closed a connection at expiry');
      monitor.disconnect();
      redis.disconnect();
    },
  );
});

describe(`adversarial: a blocking command past the re-AUTH deadline, with the application's retry options (ioredis ${major})`, () => {
  for (const [label, options] of [
    ['maxRetriesPerRequest: 0', { maxRetriesPerRequest: 0 }],
    ['autoResendUnfulfilledCommands: false', { autoResendUnfulfilledCommands: false }],
  ] as const) {
    it(`${label}: BLPOP 0 held across a rotation returns the pushed element`, NOT_YET_FIXED, async () => {
      const provider = world.provider();
      const redis = client(provider, options);
      const pusher = client(provider);
      await redis.ping();
      const key = `adv:blpop:${label}`;
      let outcome: { value?: unknown; error?: unknown } | undefined;
      redis.blpop(key, 0).then(
        (value) => {
          outcome = { value };
        },
        (error: unknown) => {
          outcome = { error };
        },
      );
      await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
      await waitUntil(() => redis.status === 'ready', { description: 'ready again' });
      await pusher.rpush(key, 'x');
      // A plain client, still blocked, is answered at once.
      await waitUntil(() => outcome, { timeoutMs: 5_000, description: 'BLPOP settled' }).catch(() => {});
      assert.deepEqual(outcome, { value: [key, 'x'] });
      pusher.disconnect();
      redis.disconnect();
    });
  }
});
