// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ManagedIdentityCredential } from '@azure/identity';
import { reauthDeadline } from '../../lib/binding/client-binding.js';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { createCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { setFanOutBatchSize } from '../../lib/identity/token-fan-out.js';
import {
  REAUTH_CHANNEL,
  REAUTH_RECONNECT_CHANNEL,
  type ReauthReconnectMessage,
  type ReauthTraceContext,
} from '../../lib/tracing.js';
import { countEvents, nextEvent, waitUntil, World } from '../../harness/world.js';
import { connectionOf, localPortOf } from '../support/amr-connections.js';
import { must } from '../support/must.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

/** Published when an AUTH of the library has been written (the synchronous end of its trace). */
const AUTH_WRITTEN_CHANNEL = `tracing:${REAUTH_CHANNEL}:end`;

describe('re-authentication of live connections', () => {
  it('a connection blocked in BLPOP 0 is reconnected with the fresh token before expiry; the command is resent', async () => {
    const provider = world.provider();
    const blocked = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    const pusher = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await Promise.all([blocked.ping(), pusher.ping()]);
    const expiryDisconnects = world.amr.counters.expiryDisconnects;
    const reply = blocked.blpop('entra:queue', 0);
    const [event] = await nextEvent(provider, 'reauthenticated', (e) => e.method === 'reconnect');
    assert.equal(event.token.oid, world.identity.oid);
    await waitUntil(() => blocked.status === 'ready', { description: 'blocked client ready again' });
    // the resent BLPOP is waiting on the new connection: a push reaches it
    await waitUntil(
      async () =>
        (await pusher.call('CLIENT', 'LIST', 'TYPE', 'normal').then((l) => String(l).split('cmd=blpop').length - 1)) >=
        1,
      { description: 'BLPOP resent' },
    );
    await pusher.lpush('entra:queue', 'value');
    assert.deepEqual(await reply, ['entra:queue', 'value']);
    assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects, 'the server never closed it for expiry');
  });

  it('an AUTH in flight when an event-loop stall carries it past its deadline completes in place: no reconnect aborts a transaction', async () => {
    const provider = world.provider();
    // Named: other connections of this file share the address, and the stall moves their deadlines too.
    const connectionName = 'stalled-past-its-deadline';
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider, connectionName }));
    await redis.ping();
    const old = must(provider.currentToken(), 'a current token');
    const port = localPortOf(redis);
    assert.equal(typeof port, 'number', 'connected');
    const forcedReconnects: unknown[] = [];
    const onForcedReconnect = (message: unknown) => {
      if ((message as ReauthReconnectMessage).connection === connectionName) forcedReconnects.push(message);
    };
    diagnosticsChannel.subscribe(REAUTH_RECONNECT_CHANNEL, onForcedReconnect);
    let transaction: Promise<unknown> | undefined;
    // Right after the AUTH is written: a transaction goes out behind it, then the event loop stalls until past the
    // deadline, so the deadline timer runs before the AUTH reply can be read.
    const afterAuthWritten = (context: unknown) => {
      if (transaction || (context as ReauthTraceContext).connection !== connectionName) return;
      transaction = redis.multi().incr('stall:tx').get('stall:tx').exec();
      const until = reauthDeadline(old) + 50;
      while (Date.now() < until) {
        /* stall */
      }
    };
    diagnosticsChannel.subscribe(AUTH_WRITTEN_CHANNEL, afterAuthWritten);
    try {
      const [event] = await nextEvent(provider, 'reauthenticated', (e) => e.connection === connectionName);
      assert.equal(event.method, 'auth');
      assert.ok(transaction, 'a transaction was sent behind the AUTH');
      assert.deepEqual(await transaction, [
        [null, 1],
        [null, '1'],
      ]);
      assert.deepEqual(forcedReconnects, []);
      assert.equal(localPortOf(redis), port, 'still the same connection');
    } finally {
      diagnosticsChannel.unsubscribe(AUTH_WRITTEN_CHANNEL, afterAuthWritten);
      diagnosticsChannel.unsubscribe(REAUTH_RECONNECT_CHANNEL, onForcedReconnect);
    }
  });

  it('an AUTH of the library unanswered when its connection drops is not resent on the next connection', async () => {
    // ioredis resends a dropped connection's unanswered commands after the next handshake. An AUTH of the library
    // among them would follow the handshake that presented the token of the library's choice: it could move that
    // connection back to an older token (the server then closes it at that token's expiry), and a refusal of it would
    // reach the application's reconnectOnError. A plain client never sends AUTH on a live connection.
    const provider = world.provider();
    const connectionName = 'dropped-with-auth-in-flight';
    const seenByReconnectOnError: string[] = [];
    const reconnectOnError = (error: Error) => {
      seenByReconnectOnError.push(error.message);
      return false;
    };
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, connectionName, reconnectOnError }),
    );
    await redis.ping();
    const port = localPortOf(redis);
    let dropped = false;
    // Right after the AUTH is written, before its reply can be read: the connection drops.
    const afterAuthWritten = (context: unknown) => {
      if (dropped || (context as ReauthTraceContext).connection !== connectionName) return;
      dropped = true;
      redis.stream.destroy();
    };
    diagnosticsChannel.subscribe(AUTH_WRITTEN_CHANNEL, afterAuthWritten);
    try {
      await waitUntil(() => dropped, { description: 'an AUTH of the library written' });
      await new Promise((resolve) => redis.once('ready', resolve));
      assert.equal(await redis.set('auth-in-flight:k', 'v'), 'OK');
      assert.notEqual(localPortOf(redis), port, 'a new connection');
      const connection = must(connectionOf(world.amr, redis), "the emulator's view of the new connection");
      assert.equal(connection.authCount, 1, "the handshake's AUTH only: nothing resent after it");
      assert.deepEqual(seenByReconnectOnError, []);
    } finally {
      diagnosticsChannel.unsubscribe(AUTH_WRITTEN_CHANNEL, afterAuthWritten);
    }
  });

  it('re-AUTH goes in order with pipelined commands and leaves their replies intact', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.ping();
    const rotations = countEvents(provider, 'reauthenticated');
    const mismatches: string[] = [];
    let running = true as boolean; // cleared by the test while the loop runs
    const load = (async () => {
      for (let i = 0; running; i++) {
        const results = await redis.pipeline().set(`p:${i}`, String(i)).get(`p:${i}`).incr(`p:n`).exec();
        if (results?.[1]?.[1] !== String(i)) mismatches.push(`${i}: ${JSON.stringify(results?.[1])}`);
      }
    })();
    await waitUntil(() => rotations.count >= 3, { timeoutMs: 20_000, description: '3 re-authentications' });
    running = false;
    await load;
    assert.deepEqual(mismatches, []);
  });

  it('an unchanged token (a caching credential) causes no re-AUTH', async () => {
    // MSAL-like: hands back the cached token until the last 20 % of its life (MSAL: 5 minutes of 60)
    const inner = new ManagedIdentityCredential({ clientId: world.identity.clientId, retryOptions: { maxRetries: 0 } });
    let cached: AccessToken | null = null;
    let calls = 0;
    const credential: TokenCredential = {
      async getToken(scopes: string | string[], options?: GetTokenOptions) {
        calls++;
        if (!cached || cached.expiresOnTimestamp - Date.now() < 1_600) cached = await inner.getToken(scopes, options);
        return cached;
      },
    };
    world.entra.tokenLifetimeSeconds = 8;
    try {
      const provider = createCredentialsProvider({ credential, tokenManagerOptions: { refreshJitter: 0 } });
      const redis = createEntraRedis({ ...world.endpoint, credentialsProvider: provider });
      await redis.ping();
      const reauths = countEvents(provider, 'reauthenticated');
      const refreshed = countEvents(provider, 'tokenRefreshed');
      await waitUntil(() => calls >= 2, { description: 'a refresh that gets the same token' });
      assert.equal(refreshed.count, 0, 'unchanged token not announced');
      assert.equal(reauths.count, 0, 'no AUTH for an unchanged token');
      assert.equal(connectionOf(world.amr, redis)?.authCount, 1);
      await nextEvent(provider, 'reauthenticated');
      assert.equal(connectionOf(world.amr, redis)?.authCount, 2);
      await redis.quit();
      provider.dispose();
    } finally {
      world.entra.tokenLifetimeSeconds = 3;
    }
  });

  it('a duplicate made before a rotation is re-authenticated after it', async () => {
    const provider = world.provider();
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.ping();
    const copy = world.track(redis.duplicate());
    await copy.ping();
    const expiryDisconnects = world.amr.counters.expiryDisconnects;
    const reauths = countEvents(provider, 'reauthenticated');
    await waitUntil(() => reauths.count >= 4, { timeoutMs: 15_000, description: 'both re-authenticated twice' });
    assert.equal(await copy.ping(), 'PONG');
    assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects);
  });

  it('more connections than a fan-out batch: every one is re-authenticated, and tokenRefreshed comes before them', async () => {
    // Batches of 20 (the default is larger), so that 45 connections take three turns of the event loop.
    const previousBatchSize = setFanOutBatchSize(20);
    let provider: ReturnType<typeof world.provider>;
    try {
      provider = world.provider();
    } finally {
      setFanOutBatchSize(previousBatchSize);
    }
    const clients = Array.from({ length: 45 }, () =>
      world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider })),
    );
    await Promise.all(clients.map((client) => client.ping()));
    const announced = new Set<number>();
    const reauthenticated = new Map<number, number>();
    const early: string[] = [];
    provider.on('tokenRefreshed', (info) => announced.add(info.expiresOn));
    provider.on('reauthenticated', ({ connection, token }) => {
      if (!announced.has(token.expiresOn)) early.push(connection);
      reauthenticated.set(token.expiresOn, (reauthenticated.get(token.expiresOn) ?? 0) + 1);
    });
    const expiryDisconnects = world.amr.counters.expiryDisconnects;
    await waitUntil(() => [...reauthenticated.values()].some((count) => count >= clients.length), {
      timeoutMs: 15_000,
      description: 'a rotation that reached all 45 connections',
    });
    assert.deepEqual(early, [], "no 'reauthenticated' before the 'tokenRefreshed' of its token");
    assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects);
  });
});

describe('the ioredis traps', () => {
  it('lazyConnect with db: commands queued before the token arrive run in that db, over one connection and one token request', async () => {
    const identity = world.entra.addManagedIdentity({ kind: 'user' });
    const provider = world.provider({ identity });
    const accepted = world.amr.counters.accepted;
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, lazyConnect: true, db: 3 }),
    );
    const writes = Array.from({ length: 50 }, (_, i) => redis.set(`trap:${i}`, String(i)));
    const connects = [redis.connect().catch((e: unknown) => e), redis.connect().catch((e: unknown) => e)];
    await Promise.all(writes);
    await Promise.all(connects);
    assert.equal(world.amr.counters.accepted - accepted, 1, 'one connection');
    assert.equal(world.entra.requests.byOid[identity.oid], 1, 'one token request');
    const admin = world.admin();
    await admin.select(3);
    assert.equal(await admin.get('trap:49'), '49');
  });

  it('a failed handshake AUTH is an error event without the token, and the retry loop goes on', async () => {
    const provider = world.provider({ username: () => 'not-the-oid' });
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, maxRetriesPerRequest: 1 }),
    );
    const errors: Error[] = [];
    redis.on('error', (error: Error) => errors.push(error));
    await waitUntil(() => errors.length >= 2, { description: 'two failed handshakes' });
    const token = provider.currentToken();
    assert.ok(token);
    for (const error of errors) {
      assert.match(error.message, /WRONGPASS/);
      // The error's own fields (command and its args) as a plain object, with the message and stack beside them.
      // eslint-disable-next-line @typescript-eslint/no-misused-spread -- the prototype is meant to be left behind
      const serialized = JSON.stringify({ ...error, message: error.message, stack: error.stack });
      assert.ok(!serialized.includes(token.password), 'token in the error');
    }
    const args = (errors[0] as { command?: { args?: unknown[] } }).command?.args ?? [];
    assert.ok(args.includes('<redacted>'), `args: ${JSON.stringify(args).slice(0, 80)}`);
    redis.disconnect();
  });

  it('with no error listener, commands rejected after a failed handshake carry no token either', async () => {
    const provider = world.provider({ username: () => 'not-the-oid' });
    const token = await provider.getToken();
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, maxRetriesPerRequest: 0 }),
    );
    const error = await redis.ping().then(
      () => undefined,
      (e: unknown) => e as Error & { command?: { args?: unknown[] } },
    );
    assert.ok(error instanceof Error);
    const seen = JSON.stringify({ message: error.message, stack: error.stack, command: error.command });
    assert.ok(!seen.includes(token.password), 'token in a rejected command');
    redis.disconnect();
  });
});
