// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis, RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import type { ReauthenticatedEvent } from '../../lib/identity/events.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';

// One world per file: MSAL remembers the managed-identity endpoint for the life of the process.
let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const major = process.env.IOREDIS_MAJOR ?? '5';
const protocols: Array<2 | 3> = major === '6' ? [2, 3] : [2];

interface Stream {
  received: string[];
  patternReceived: string[];
}

/** Publishes numbered messages at `rate` per second (in order, over one connection) until stopped. */
function publishAt(publisher: Redis, channel: string, rate: number) {
  let sent = 0;
  const pending: Promise<unknown>[] = [];
  const timer = setInterval(() => {
    pending.push(publisher.publish(channel, String(sent++)));
  }, 1000 / rate);
  timer.unref(); // a test that fails before stop() must not keep its file running until the timeout
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(pending);
      return sent;
    },
  };
}

function assertExactlyOnceInOrder(received: string[], sent: number, what: string) {
  const numbers = received.map(Number);
  const unique = new Set(numbers);
  assert.equal(sent - unique.size, 0, `${what}: lost ${sent - unique.size} of ${sent}`);
  assert.equal(numbers.length - unique.size, 0, `${what}: ${numbers.length - unique.size} duplicates`);
  assert.deepEqual(
    numbers,
    [...numbers].sort((a, b) => a - b),
    `${what}: out of order`,
  );
}

for (const protocol of protocols) {
  describe(`pub/sub across rotations, RESP${protocol}`, () => {
    it('a subscriber with channels and patterns loses and duplicates nothing at 200 msg/s', async () => {
      const provider = world.provider();
      const options = {
        ...world.endpoint,
        credentialsProvider: provider,
        ...(major === '6' ? { protocol } : {}),
      } as RedisOptions;
      const subscriber = world.track(createEntraRedis(options));
      const publisher = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
      const stream: Stream = { received: [], patternReceived: [] };
      subscriber.on('message', (channel: string, message: string) => {
        if (channel === 'events') stream.received.push(message);
      });
      subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
        if (channel === 'events') stream.patternReceived.push(message);
      });
      await subscriber.subscribe('events', 'other');
      await subscriber.psubscribe('ev*');
      const methods: ReauthenticatedEvent['method'][] = [];
      provider.on('reauthenticated', (event) => {
        if (event.connection.endsWith(`:${world.amr.port}`)) methods.push(event.method);
      });
      const rotations = countEvents(provider, 'tokenRefreshed');
      const expiryDisconnects = world.amr.counters.expiryDisconnects;
      const publishing = publishAt(publisher, 'events', 200);
      await waitUntil(() => rotations.count >= 4, { timeoutMs: 30_000, description: '4 rotations' });
      const sent = await publishing.stop();
      await waitUntil(() => stream.received.length >= sent && stream.patternReceived.length >= sent, {
        timeoutMs: 5_000,
        description: 'the last messages',
      }).catch(() => {});
      assertExactlyOnceInOrder(stream.received, sent, 'channel');
      assertExactlyOnceInOrder(stream.patternReceived, sent, 'pattern');
      assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects, 'no expiry disconnect');
      const expected = protocol === 3 ? 'auth' : 'handover';
      assert.ok(methods.includes(expected), `re-authenticated by ${expected}: ${methods.join(',')}`);
      // the handover's private channel is released once a handover is over
      await waitUntil(
        async () => ((await publisher.call('PUBSUB', 'CHANNELS', '__ioredis-entraid:*')) as string[]).length === 0,
        { description: 'no handover channel left' },
      );
    });
  });
}
