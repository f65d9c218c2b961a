// ioredis majors: 5, 6
/**
 * The connection drops while an AUTH of the library is in flight (written, or queued because the socket no longer
 * writes), with application commands right behind it, under the options that change what ioredis does with unanswered
 * commands at a close. The application sees what a plain client sees when its connection drops right after those
 * commands are written: the same replies and errors, nothing left unsettled, no unhandled rejection; the library's
 * AUTH is never resent after the next handshake.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { REAUTH_CHANNEL, type ReauthTraceContext } from '../../lib/tracing.js';
import { waitUntil, World } from '../../harness/world.js';
import { connectionOf } from '../support/amr-connections.js';
import { must } from '../support/must.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const major = process.env.IOREDIS_MAJOR ?? '5';

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

type Outcome = { ok: unknown } | { error: string };
const outcome = (reply: Promise<unknown>): Promise<Outcome> =>
  reply.then(
    (ok) => ({ ok }),
    (error: unknown) => ({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
  );

/** What the application does the moment the connection is to drop: commands written (or queued) behind the AUTH. */
type Act = (redis: Redis) => Array<Promise<unknown>>;

/**
 * A plain client's outcomes (a static credential: nothing expires): its socket is destroyed right before (`start`) or
 * right after (`end`) `act` hands the commands to ioredis.
 */
async function plainOutcomes(options: RedisOptions, at: 'start' | 'end', act: Act): Promise<Outcome[]> {
  const redis = world.track(new Redis({ ...world.redis.adminClientOptions(), ...options }));
  redis.on('error', () => {});
  await waitUntil(() => redis.status === 'ready', { description: 'ready' });
  await redis.ping();
  if (at === 'start') redis.stream.destroy();
  const replies = act(redis).map(outcome);
  if (at === 'end') redis.stream.destroy();
  const outcomes = await Promise.all(replies);
  redis.disconnect();
  return outcomes;
}

/**
 * The same on a client of the library, at its next AUTH of a live connection: at the trace's `start` (before the AUTH
 * is handed to ioredis: the socket is destroyed first, so ioredis queues the AUTH offline) or `end` (right after it is
 * written). Resolves with the outcomes and the client.
 */
async function libraryOutcomes(
  provider: EntraCredentialsProvider,
  connectionName: string,
  options: RedisOptions,
  at: 'start' | 'end',
  act: Act,
): Promise<{ outcomes: Outcome[]; redis: Redis }> {
  const redis = world.track(
    createEntraRedis({ ...world.endpoint, credentialsProvider: provider, connectionName, ...options }),
  );
  redis.on('error', () => {});
  await waitUntil(() => redis.status === 'ready', { description: 'ready' });
  await redis.ping();
  let replies: Array<Promise<Outcome>> | undefined;
  const channel = `tracing:${REAUTH_CHANNEL}:${at}`;
  const hook = (context: unknown) => {
    if (replies || (context as ReauthTraceContext).connection !== connectionName) return;
    if (at === 'start') {
      redis.stream.destroy();
      replies = act(redis).map(outcome);
    } else {
      replies = act(redis).map(outcome);
      redis.stream.destroy();
    }
  };
  diagnosticsChannel.subscribe(channel, hook);
  try {
    await waitUntil(() => replies !== undefined, { description: 'an AUTH of the library', timeoutMs: 15_000 });
  } finally {
    diagnosticsChannel.unsubscribe(channel, hook);
  }
  return { outcomes: await Promise.all(must(replies, 'acted')), redis };
}

const setAndTransaction: Act = (redis) => [
  redis.set('drop:k', 'v'),
  redis.multi().set('drop:t', '1').get('drop:t').exec(),
  redis.get('drop:k'),
];

describe(`an AUTH of the library in flight when the connection drops (ioredis ${major})`, () => {
  for (const at of ['start', 'end'] as const) {
    it(`commands behind it are resent and answered as on a plain client; one AUTH on the new connection (drop at ${at})`, async () => {
      const expected = await plainOutcomes({}, at, setAndTransaction);
      const provider = world.provider();
      const { outcomes, redis } = await libraryOutcomes(provider, `drop-${at}`, {}, at, setAndTransaction);
      assert.deepEqual(outcomes, expected);
      assert.deepEqual(outcomes[1], {
        ok: [
          [null, 'OK'],
          [null, '1'],
        ],
      });
      await waitUntil(() => redis.status === 'ready', { description: 'ready' });
      assert.equal(await redis.ping(), 'PONG');
      const connection = must(connectionOf(world.amr, redis), 'the new connection');
      assert.equal(connection.authCount, 1, "the handshake's AUTH only");
      assert.deepEqual(unhandled, []);
      redis.disconnect();
    });
  }

  for (const { label, options } of [
    { label: 'maxRetriesPerRequest: 0', options: { maxRetriesPerRequest: 0 } },
    { label: 'enableOfflineQueue: false', options: { enableOfflineQueue: false } },
    { label: 'no reconnect (retryStrategy returns null)', options: { retryStrategy: () => null } },
  ] as const) {
    for (const at of ['start', 'end'] as const) {
      it(`${label}: the application's commands behind it settle as on a plain client (drop at ${at})`, async () => {
        const expected = await plainOutcomes(options, at, setAndTransaction);
        const provider = world.provider();
        const { outcomes, redis } = await libraryOutcomes(
          provider,
          `drop-${at}-${label.split(' ')[0]}`,
          options,
          at,
          setAndTransaction,
        );
        assert.deepEqual(outcomes, expected);
        if (label.startsWith('no reconnect')) {
          await waitUntil(() => redis.status === 'end', { description: 'ended' });
        } else {
          await waitUntil(() => redis.status === 'ready', { description: 'ready' });
          assert.equal(await redis.get('drop:k'), 'v');
          const connection = must(connectionOf(world.amr, redis), 'the new connection');
          assert.equal(connection.authCount, 1, "the handshake's AUTH only");
        }
        assert.deepEqual(unhandled, []);
        redis.disconnect();
      });
    }
  }
});
