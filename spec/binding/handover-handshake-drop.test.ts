// ioredis majors: 5, 6
/**
 * A RESP2 subscriber handover whose reconnect drops during its handshake, with the application changing its
 * subscriptions around the drop. A plain client sends (P|S)(UN)SUBSCRIBE in the order the application called them
 * (ioredis 6 queues both offline; ioredis 5 writes the first at once on the socket that drops): the application's last
 * word holds.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { HANDOVER_CHANNEL, type HandoverPhaseMessage } from '../../lib/tracing.js';
import { waitUntil, World } from '../../harness/world.js';
import { handoverEnded } from '../support/handover-ended.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const major = process.env.IOREDIS_MAJOR ?? '5';
/** RESP2 on both majors (ioredis 6 speaks RESP3 unless told). */
const resp2 = (major === '6' ? { protocol: 2 } : {}) as RedisOptions;

/**
 * At the client's next 'connect' (its new socket in the handshake, the ready check's INFO written): UNSUBSCRIBE x,
 * then the socket drops; at the 'close' that follows (status 'reconnecting'): SUBSCRIBE x. Resolves with both replies'
 * promises (the UNSUBSCRIBE's may never settle on a plain ioredis 5: it was written on the socket that dropped).
 */
function unsubscribeDropSubscribe(redis: Redis, channel: string): Promise<{ subscribed: Promise<unknown> }> {
  return new Promise((resolve) => {
    redis.once('connect', () => {
      assert.equal(redis.status, 'connect');
      redis.unsubscribe(channel).catch(() => {});
      redis.stream.destroy();
      redis.once('close', () => resolve({ subscribed: redis.subscribe(channel) }));
    });
  });
}

/** Whether a message published on `channel` reaches `redis`: a message on `control` published after it is awaited. */
async function receives(redis: Redis, channel: string, control: string): Promise<boolean> {
  const seen: string[] = [];
  const listener = (ch: string) => seen.push(ch);
  redis.on('message', listener);
  try {
    const publisher = world.admin();
    await publisher.publish(channel, 'probe');
    await publisher.publish(control, 'probe');
    await waitUntil(() => seen.includes(control), { description: `the message on ${control}` });
    publisher.disconnect();
    return seen.includes(channel);
  } finally {
    redis.off('message', listener);
  }
}

/**
 * Runs `act` the moment a handover of `name` enters 'reconnecting' with the client's new socket not yet in its
 * handshake (a handover whose client is already past it is skipped, the next one waited for). Resolves with what
 * `act` returned and how that handover ended.
 */
async function beforeHandoverHandshake<T>(
  provider: EntraCredentialsProvider,
  redis: Redis,
  name: string,
  act: () => T,
): Promise<{ value: T; outcome: string }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let acted: { value: T } | undefined;
    const listener = (message: unknown) => {
      const m = message as HandoverPhaseMessage;
      if (m.connection !== name || m.phase !== 'reconnecting' || acted) return;
      if (redis.status === 'connect' || (redis.status === 'ready' && redis.stream.writable)) return;
      acted = { value: act() };
    };
    const ended = handoverEnded(provider, name);
    diagnosticsChannel.subscribe(HANDOVER_CHANNEL, listener);
    let outcome: string;
    try {
      outcome = await ended;
    } finally {
      diagnosticsChannel.unsubscribe(HANDOVER_CHANNEL, listener);
    }
    if (acted) return { value: acted.value, outcome };
  }
  throw new Error('no handover reconnected with the client not yet in its handshake');
}

describe(`RESP2 subscriber handover: the reconnect drops in its handshake (ioredis ${major})`, () => {
  it('a plain client: UNSUBSCRIBE x in the handshake, drop, SUBSCRIBE x while reconnecting leaves it subscribed to x', async () => {
    const redis = world.track(new Redis({ ...world.redis.adminClientOptions(), ...resp2 }));
    assert.equal(await redis.subscribe('hd:a', 'hd:x'), 2);
    const acted = unsubscribeDropSubscribe(redis, 'hd:x');
    redis.disconnect(true);
    const { subscribed } = await acted;
    assert.equal(await subscribed, 2);
    assert.equal(await receives(redis, 'hd:x', 'hd:a'), true);
    redis.disconnect();
  });

  it("the same during a handover's reconnect: the application's last word (SUBSCRIBE x) holds", async () => {
    const provider = world.provider();
    const connectionName = 'hd-last-word';
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, connectionName, ...resp2 }),
    );
    assert.equal(await redis.subscribe('hd:a', 'hd:x'), 2);
    const { value: acted } = await beforeHandoverHandshake(provider, redis, connectionName, () =>
      unsubscribeDropSubscribe(redis, 'hd:x'),
    );
    const { subscribed } = await acted;
    assert.equal(await subscribed, 2);
    await waitUntil(() => redis.status === 'ready', { description: 'ready' });
    assert.equal(await receives(redis, 'hd:x', 'hd:a'), true, 'subscribed to hd:x, as the application asked last');
    redis.disconnect();
  });

  it('an UNSUBSCRIBE of one channel while the reconnect that dropped in its handshake is retried: the handover completes', async () => {
    // After a drop in the handshake, ioredis's live condition is the new socket's (no subscriber) and what it will
    // restore is in prevCondition: the handover must not take the UNSUBSCRIBE for the application leaving subscribe
    // mode (a fallback that closes the shadow while the client has not resubscribed yet).
    const provider = world.provider();
    const connectionName = 'hd-unsubscribe-one';
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: provider, connectionName, ...resp2 }),
    );
    assert.equal(await redis.subscribe('hd:a', 'hd:y'), 2);
    const { value: acted, outcome } = await beforeHandoverHandshake(
      provider,
      redis,
      connectionName,
      () =>
        new Promise<Promise<unknown>>((resolve) => {
          redis.once('connect', () => {
            redis.stream.destroy();
            redis.once('close', () => resolve(redis.unsubscribe('hd:y')));
          });
        }),
    );
    // A plain client subscribed to hd:a and hd:y is answered 1.
    assert.equal(await await acted, 1);
    assert.equal(outcome, 'done');
    await waitUntil(() => redis.status === 'ready', { description: 'ready' });
    assert.equal(await receives(redis, 'hd:y', 'hd:a'), false);
    redis.disconnect();
  });
});
