// ioredis majors: 5, 6
/**
 * A rotation meets the application's own connection state: an open transaction, a blocking command, listeners that
 * throw, a token the server refuses. In each, the application must see what a plain ioredis client would see.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis, RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import type { ReauthenticatedEvent } from '../../lib/index.js';
import { countEvents, nextEvent, waitUntil, World } from '../../harness/world.js';
import { connectionOf, isExpiryOf, localPortOf, serverExpiryOf } from '../support/amr-connections.js';
import { must } from '../support/must.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

async function connectedClient(provider: EntraCredentialsProvider): Promise<Redis> {
  const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
  await redis.ping();
  return redis;
}

interface TransactionForm {
  name: string;
  /** Opens the transaction and queues one SET. */
  open(redis: Redis, key: string): Promise<unknown>;
  /** Queues a GET and ends the transaction; resolves with the application's reply. */
  close(redis: Redis, key: string): Promise<unknown>;
  expected: unknown;
}

const transactionForms: TransactionForm[] = [
  {
    name: 'multi({ pipeline: false }) ... exec()',
    open: async (r, k) => {
      await r.multi({ pipeline: false });
      await r.set(k, 'v');
    },
    close: async (r, k) => {
      await r.get(k);
      return r.exec();
    },
    expected: [
      [null, 'OK'],
      [null, 'v'],
    ],
  },
  {
    name: 'multi({ pipeline: false }) ... discard()',
    open: async (r, k) => {
      await r.multi({ pipeline: false });
      await r.set(k, 'v');
    },
    close: async (r, k) => {
      await r.get(k);
      return [await r.discard(), await r.exists(k)];
    },
    expected: ['OK', 0],
  },
  {
    name: "call('MULTI') ... call('EXEC')",
    open: async (r, k) => {
      await r.call('MULTI');
      await r.call('SET', k, 'v');
    },
    close: async (r, k) => {
      await r.call('GET', k);
      return r.call('EXEC');
    },
    expected: ['OK', 'v'],
  },
  {
    name: "call('multi') ... call('discard') in lower case",
    open: async (r, k) => {
      await r.call('multi');
      await r.call('set', k, 'v');
    },
    close: async (r, k) => {
      await r.call('get', k);
      return [await r.call('discard'), await r.exists(k)];
    },
    expected: ['OK', 0],
  },
];

describe('a new token meets an open transaction', () => {
  for (const form of transactionForms) {
    it(`${form.name}: no AUTH joins the transaction; it is sent right after, on the same connection`, async () => {
      const provider = world.provider();
      const redis = await connectedClient(provider);
      const key = `tx:${form.name}`;
      const port = localPortOf(redis);
      const expiryDisconnects = world.amr.counters.expiryDisconnects;
      const failures = countEvents(provider, 'reauthenticationFailed');
      await form.open(redis, key);
      // A new token arrives while the transaction is open: the library must hold its AUTH back.
      await nextEvent(provider, 'tokenRefreshed');
      const reauthenticated = nextEvent(provider, 'reauthenticated');
      const reply = await form.close(redis, key);
      const normalised = Array.isArray(reply)
        ? (reply as unknown[]).map((r) => (r instanceof Error ? r.message : r))
        : reply;
      assert.deepEqual(normalised, form.expected);
      const [event] = await reauthenticated;
      assert.equal(event.method, 'auth');
      assert.equal(failures.count, 0, 'no AUTH was answered QUEUED');
      assert.equal(localPortOf(redis), port, 'the same connection');
      assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects);
      failures.stop();
      redis.disconnect();
    });
  }

  it('a transaction open across several new tokens gets none of their AUTHs', async () => {
    world.entra.tokenLifetimeSeconds = 6;
    try {
      const provider = world.provider({ tokenManagerOptions: { expirationRefreshRatio: 0.2 } });
      const redis = await connectedClient(provider);
      const key = 'tx:several';
      await redis.multi({ pipeline: false });
      await redis.set(key, '1');
      // two tokens come while it is open (each refresh at 20 % of a 6 s token: well before the deadline)
      await nextEvent(provider, 'tokenRefreshed');
      await redis.incr(key);
      await nextEvent(provider, 'tokenRefreshed');
      await redis.get(key);
      assert.deepEqual(await redis.exec(), [
        [null, 'OK'],
        [null, 2],
        [null, '2'],
      ]);
      await nextEvent(provider, 'reauthenticated', (e) => e.method === 'auth');
      assert.equal(await redis.get(key), '2');
      redis.disconnect();
    } finally {
      world.entra.tokenLifetimeSeconds = 3;
    }
  });

  it('WATCH ... pipelined multi() across a new token commits, and a conflicting write still aborts it', async () => {
    const provider = world.provider();
    const redis = await connectedClient(provider);
    const other = await connectedClient(provider);
    await redis.watch('tx:watched');
    await nextEvent(provider, 'tokenRefreshed');
    await nextEvent(provider, 'reauthenticated');
    assert.deepEqual(await redis.multi().set('tx:watched', 'a').exec(), [[null, 'OK']]);
    await redis.watch('tx:watched');
    await other.set('tx:watched', 'b');
    await nextEvent(provider, 'tokenRefreshed');
    assert.equal(await redis.multi().set('tx:watched', 'c').exec(), null, 'aborted by the conflicting write');
    assert.equal(await redis.get('tx:watched'), 'b');
    redis.disconnect();
    other.disconnect();
  });
});

describe('application listeners that throw', () => {
  it('one rule for every provider event: the library goes on, other listeners still run, the exception is rethrown as uncaught', async () => {
    const captured: unknown[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    process.setUncaughtExceptionCaptureCallback((error) => {
      captured.push(error);
    });
    try {
      const provider = world.provider();
      const thrown = new Set<string>();
      for (const event of ['tokenRefreshed', 'reauthenticated', 'refreshFailed'] as const) {
        provider.on(event, () => {
          thrown.add(event);
          throw new Error(`listener of ${event}`);
        });
      }
      const reauthenticated = countEvents(provider, 'reauthenticated');
      const refreshed = countEvents(provider, 'tokenRefreshed');
      const clients = [await connectedClient(provider), await connectedClient(provider)];
      for (const client of clients)
        client.on('error', () => {
          /* the outage below fails reconnects */
        });
      // Every connection is re-authenticated for two rotations although each 'reauthenticated' listener call throws.
      await waitUntil(() => reauthenticated.count >= 4, { timeoutMs: 20_000, description: '4 re-authentications' });
      // A failing token service: the refresher goes on after a throwing 'refreshFailed' listener.
      await world.entra.setFault({ kind: 'status', status: 503, endpoint: 'managed-identity' });
      await nextEvent(provider, 'refreshFailed');
      await nextEvent(provider, 'refreshFailed');
      await world.entra.clearFault();
      const before = refreshed.count;
      await waitUntil(() => refreshed.count > before, { timeoutMs: 20_000, description: 'a token after the outage' });
      for (const client of clients) assert.equal(await client.ping(), 'PONG');
      for (const client of clients) client.disconnect();
      await waitUntil(() => captured.length >= reauthenticated.count, { description: 'every exception rethrown' });
      assert.deepEqual([...thrown].sort(), ['reauthenticated', 'refreshFailed', 'tokenRefreshed']);
      for (const error of captured) assert.match((error as Error).message, /^listener of /);
      assert.deepEqual(unhandled, [], 'no unhandled rejection');
    } finally {
      process.setUncaughtExceptionCaptureCallback(null);
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('a new token the server refuses', () => {
  it('the connection stays on its valid token, says so, reconnects with it, and takes the replacement in place', async () => {
    world.entra.tokenLifetimeSeconds = 12;
    const captured: unknown[] = [];
    try {
      // An identity of its own: only its tokens are refused.
      const identity = world.entra.addManagedIdentity({ kind: 'user' });
      const provider = world.provider({ identity, tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
      // A plain client never sends AUTH on a live connection: the application's reconnectOnError never sees one.
      const seenByReconnectOnError: string[] = [];
      const reconnectOnError = (error: Error) => {
        seenByReconnectOnError.push(error.message);
        return true;
      };
      const redis = world.track(
        createEntraRedis({ ...world.endpoint, credentialsProvider: provider, reconnectOnError }),
      );
      await redis.ping();
      redis.on('error', () => {
        /* reported through the provider's events */
      });
      const held = must(provider.currentToken(), 'a current token');
      const expiryDisconnects = world.amr.counters.expiryDisconnects;
      const requests = world.entra.requests.total;
      world.amr.refuseTokens(
        (claims) => claims.oid === identity.oid && Number(claims.exp) * 1000 > serverExpiryOf(held),
      );
      const [failure] = await nextEvent(provider, 'reauthenticationFailed');
      assert.equal(failure.refused, true);
      assert.equal(failure.willRetry, false);
      assert.equal(failure.authenticatedUntil, held.expiresOn);
      assert.match((failure.error as Error).message, /WRONGPASS/);
      assert.ok(!(failure.error as Error).message.includes(must(provider.currentToken(), 'a current token').password));
      // a replacement is requested at once, not at the next scheduled refresh
      await waitUntil(() => world.entra.requests.total > requests + 1, { description: 'a replacement requested' });
      // A network blip now: the reconnect presents the token the server accepts, not the refused one.
      const port = localPortOf(redis);
      const reconnected = new Promise((resolve) => redis.once('ready', resolve));
      redis.stream.destroy();
      await reconnected;
      assert.notEqual(localPortOf(redis), port);
      assert.equal(await redis.set('refused:k', 'v'), 'OK');
      assert.equal(connectionOf(world.amr, redis)?.expiresAt, serverExpiryOf(held), 'presented the token it held');
      // The server takes new tokens again: the next one is applied in place.
      const newPort = localPortOf(redis);
      world.amr.refuseTokens(undefined);
      const [event] = await nextEvent(provider, 'reauthenticated', (e) => e.token.expiresOn > held.expiresOn);
      assert.equal(event.method, 'auth');
      assert.equal(localPortOf(redis), newPort, 'no reconnect');
      assert.equal(await redis.get('refused:k'), 'v');
      assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects);
      assert.deepEqual(seenByReconnectOnError, []);
      redis.disconnect();
    } finally {
      world.amr.refuseTokens(undefined);
      world.entra.tokenLifetimeSeconds = 3;
    }
    assert.deepEqual(captured, []);
  });
});

describe('a new token the server refuses for a while, and no other token to come', () => {
  it('is tried again in place before the held token expires: no reconnect, no expiry disconnect', async () => {
    world.entra.tokenLifetimeSeconds = 20;
    try {
      const identity = world.entra.addManagedIdentity({ kind: 'user' });
      const provider = world.provider({
        identity,
        tokenManagerOptions: { expirationRefreshRatio: 0.3, retryOptions: { maxAttempts: 1 } },
      });
      const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
      await redis.ping();
      redis.on('error', () => {
        /* reported through the provider's events */
      });
      const statusEvents: string[] = [];
      for (const event of ['close', 'reconnecting', 'end']) redis.on(event, () => statusEvents.push(event));
      const port = localPortOf(redis);
      const held = must(provider.currentToken(), 'a current token');
      const expiryDisconnects = world.amr.counters.expiryDisconnects;
      // The server refuses the next token for a while (a clock behind its nbf, say) ...
      world.amr.refuseTokens(
        (claims) => claims.oid === identity.oid && Number(claims.exp) * 1000 > serverExpiryOf(held),
      );
      await nextEvent(provider, 'reauthenticationFailed');
      // ... and the token service hands out nothing else: the refused token is the only one there is.
      await world.entra.setFault({ kind: 'status', status: 503 });
      await nextEvent(provider, 'refreshFailed');
      const refused = must(provider.currentToken(), 'the refused token');
      assert.ok(refused.expiresOn > held.expiresOn);
      world.amr.refuseTokens(undefined);
      const reauthenticated: ReauthenticatedEvent[] = [];
      provider.on('reauthenticated', (event) => reauthenticated.push(event));
      await waitUntil(
        () =>
          reauthenticated.length > 0 ||
          statusEvents.length > 0 ||
          world.amr.counters.expiryDisconnects > expiryDisconnects,
        { timeoutMs: 60_000, description: 'the refused token tried again, or the connection closed' },
      );
      assert.deepEqual(statusEvents, [], 'the connection was not closed');
      assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects);
      const event = must(reauthenticated[0], 'a reauthenticated event');
      assert.equal(event.method, 'auth');
      // The refused token, or one the token service still managed to hand out after it (seen with older MSAL).
      assert.ok(event.token.expiresOn >= refused.expiresOn, 'moved to the refused token or a newer one');
      assert.equal(localPortOf(redis), port, 'no reconnect');
      assert.ok(isExpiryOf(connectionOf(world.amr, redis)?.expiresAt, event.token), 'authenticated with that token');
      redis.disconnect();
    } finally {
      await world.entra.clearFault();
      world.amr.refuseTokens(undefined);
      world.entra.tokenLifetimeSeconds = 3;
    }
  });
});

describe('a new token the server refuses, and a connection that is down', () => {
  it('a replacement that came while the connection was down is not presented while the held token is good', async () => {
    world.entra.tokenLifetimeSeconds = 12;
    try {
      const identity = world.entra.addManagedIdentity({ kind: 'user' });
      const provider = world.provider({ identity, tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
      const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
      // Another client keeps the provider's schedule running while `redis` is down.
      const keeper = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
      await Promise.all([redis.ping(), keeper.ping()]);
      for (const client of [redis, keeper]) {
        client.on('error', () => {
          /* reported through the provider's events */
        });
      }
      const held = must(provider.currentToken(), 'a current token');
      world.amr.refuseTokens(
        (claims) => claims.oid === identity.oid && Number(claims.exp) * 1000 > serverExpiryOf(held),
      );
      await nextEvent(provider, 'reauthenticationFailed');
      const refused = must(provider.currentToken(), 'the refused token');
      // The connection goes down; the replacement comes while it is down, so it cannot be tried in place first.
      // Down means ended: until its socket has closed, the client still reads 'ready' and connect() is refused.
      const ended = new Promise((resolve) => redis.once('end', resolve));
      redis.disconnect();
      await ended;
      await waitUntil(() => provider.currentToken()?.sameAs(refused) === false, { description: 'a replacement token' });
      redis.connect().catch(() => {
        /* a refused handshake is reported through 'error' */
      });
      await waitUntil(() => redis.status === 'ready', { description: 'connected again' });
      assert.equal(connectionOf(world.amr, redis)?.expiresAt, serverExpiryOf(held), 'presented the token it held');
      assert.equal(await redis.set('refused:down', 'v'), 'OK');
      redis.disconnect();
      keeper.disconnect();
    } finally {
      world.amr.refuseTokens(undefined);
      world.entra.tokenLifetimeSeconds = 3;
    }
  });
});

describe('a new token the server refuses, seen from other connections of the provider', () => {
  const resp2 = ((process.env.IOREDIS_MAJOR ?? '5') === '6' ? { protocol: 2 } : {}) as RedisOptions;

  it('a RESP2 subscriber stays on its connection and token: no reconnect, no error, no message lost; the next token is handed over', async () => {
    world.entra.tokenLifetimeSeconds = 12;
    try {
      const identity = world.entra.addManagedIdentity({ kind: 'user' });
      const provider = world.provider({ identity, tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
      const subscriber = world.track(
        createEntraRedis({ ...world.endpoint, credentialsProvider: provider, connectionName: 'refused-sub', ...resp2 }),
      );
      const seen: string[] = [];
      subscriber.on('error', (error: Error) => seen.push(`error ${error.message}`));
      for (const event of ['close', 'reconnecting', 'end']) subscriber.on(event, () => seen.push(event));
      const received: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => received.push(message));
      await subscriber.subscribe('refused:ch');
      const publisher = await connectedClient(provider);
      publisher.on('error', () => {
        /* its own refusal is reported through the provider's events */
      });
      const held = must(provider.currentToken(), 'a current token');
      const port = localPortOf(subscriber);
      world.amr.refuseTokens(
        (claims) => claims.oid === identity.oid && Number(claims.exp) * 1000 > serverExpiryOf(held),
      );
      const [failure] = await nextEvent(provider, 'reauthenticationFailed', (e) => e.connection === 'refused-sub');
      assert.equal(failure.refused, true);
      assert.equal(failure.authenticatedUntil, held.expiresOn);
      for (let i = 0; i < 5; i++) await publisher.publish('refused:ch', `m${i}`);
      await waitUntil(() => received.length >= 5, { description: 'the messages published during the refusal' });
      assert.deepEqual(received, ['m0', 'm1', 'm2', 'm3', 'm4']);
      assert.deepEqual(seen, [], 'a plain subscriber sees no error and no reconnect');
      assert.equal(localPortOf(subscriber), port, 'not reconnected');
      assert.equal(connectionOf(world.amr, subscriber)?.expiresAt, serverExpiryOf(held));
      // The server takes new tokens again: the next one is handed over.
      world.amr.refuseTokens(undefined);
      await nextEvent(
        provider,
        'reauthenticated',
        (e) => e.connection === 'refused-sub' && e.method === 'handover' && e.token.expiresOn > held.expiresOn,
      );
      await publisher.publish('refused:ch', 'after');
      await waitUntil(() => received.includes('after'), { description: 'a message after the handover' });
      subscriber.disconnect();
      publisher.disconnect();
    } finally {
      world.amr.refuseTokens(undefined);
      world.entra.tokenLifetimeSeconds = 3;
    }
  });

  it('a duplicate and a new client made while the refusal stands present the held token', async () => {
    world.entra.tokenLifetimeSeconds = 12;
    try {
      const identity = world.entra.addManagedIdentity({ kind: 'user' });
      const provider = world.provider({ identity, tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
      const redis = await connectedClient(provider);
      redis.on('error', () => {
        /* reported through the provider's events */
      });
      const held = must(provider.currentToken(), 'a current token');
      world.amr.refuseTokens(
        (claims) => claims.oid === identity.oid && Number(claims.exp) * 1000 > serverExpiryOf(held),
      );
      await nextEvent(provider, 'reauthenticationFailed');
      const made = [
        world.track(redis.duplicate()),
        world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider })),
      ];
      for (const client of made) {
        const errors: string[] = [];
        client.on('error', (error: Error) => errors.push(error.message));
        assert.equal(await client.set('refused:made', 'v'), 'OK');
        assert.deepEqual(errors, [], 'no refused handshake');
        assert.equal(connectionOf(world.amr, client)?.expiresAt, serverExpiryOf(held), 'presented the token held');
        client.disconnect();
      }
      redis.disconnect();
    } finally {
      world.amr.refuseTokens(undefined);
      world.entra.tokenLifetimeSeconds = 3;
    }
  });
});

describe('a new token meets a blocking command', () => {
  it('a blocked connection that is answered before the deadline is re-authenticated in place, not reconnected', async () => {
    // 8 s tokens refreshed at 30 %: the new token comes 4 s before the old one's re-AUTH deadline (min(5 s, 20 %)
    // before expiry), so the element is pushed before the deadline even on a busy machine.
    world.entra.tokenLifetimeSeconds = 8;
    try {
      const provider = world.provider({ tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
      const redis = await connectedClient(provider);
      const pusher = await connectedClient(provider);
      const port = localPortOf(redis);
      const reply = redis.blpop('blocked:in-place', 0);
      await nextEvent(provider, 'tokenRefreshed');
      const authCount = connectionOf(world.amr, redis)?.authCount ?? 0;
      await pusher.rpush('blocked:in-place', 'x');
      assert.deepEqual(await reply, ['blocked:in-place', 'x']);
      await waitUntil(() => (connectionOf(world.amr, redis)?.authCount ?? 0) > authCount, {
        description: 'the blocked connection re-authenticated',
      });
      assert.equal(localPortOf(redis), port, 'the same connection');
      redis.disconnect();
      pusher.disconnect();
    } finally {
      world.entra.tokenLifetimeSeconds = 3;
    }
  });

  it('a connection reconnected before expiry behind BLPOP 0 keeps the name the application set with CLIENT SETNAME', async () => {
    const provider = world.provider();
    const redis = await connectedClient(provider);
    const pusher = await connectedClient(provider);
    await redis.call('CLIENT', 'SETNAME', 'app-named');
    const reply = redis.blpop('blocked:named', 0);
    await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
    await waitUntil(() => connectionOf(world.amr, redis)?.name === 'app-named', { description: 'the name set again' });
    await pusher.rpush('blocked:named', 'y');
    assert.deepEqual(await reply, ['blocked:named', 'y']);
    assert.equal(await redis.call('CLIENT', 'GETNAME'), 'app-named');
    redis.disconnect();
    pusher.disconnect();
  });
});
