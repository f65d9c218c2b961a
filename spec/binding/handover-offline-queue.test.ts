// ioredis majors: 5, 6
/**
 * (P)(UN)SUBSCRIBE sent by the application while a RESP2 subscriber handover reconnects the client. ioredis queues
 * such a command offline and, once the client is ready again, passes the same command object through `sendCommand`
 * a second time: the handover observes it twice. What the application sees must still be what a plain client shows:
 * the subscription counts of the replies, and each message of a new channel once.
 *
 * Both observations register the reply's transform, and both mirror the command on the shadow (the same command
 * twice, in order: the same set of channels). The count stays right because each transform decides as the reply is
 * read, on the connection that reads it, and a replayed command is answered on the new connection before the marker
 * is subscribed there: ioredis writes its resubscriptions, resends and offline queue in its ready handler, the
 * handover's fence (the marker's SUBSCRIBE) follows on the 'ready' event. A transform that counted the marker
 * regardless would subtract it twice here ([0, -1]).
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import type { Redis, RedisOptions } from 'ioredis';
import { isWriteClosed } from '../../lib/binding/ioredis-internals.js';
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

function client(provider: EntraCredentialsProvider, extra: RedisOptions = {}): Redis {
  return world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider, ...extra }));
}

/**
 * Runs `act` synchronously the moment a handover of `name` enters 'reconnecting' with the client's socket closed for
 * writes: what the client sends then is queued offline (ioredis's status may still read 'ready' then: the old socket
 * is ended, its close not yet read). A handover where the client is already on its new socket at that moment is
 * skipped and the next one waited for. Resolves with what `act` returned and how that handover ended.
 */
async function actWhileReconnecting<T>(
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
      if (!isWriteClosed(redis)) return;
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
  throw new Error('no handover entered its reconnecting phase with the client reconnecting');
}

describe(`RESP2 subscriber handover: subscriptions changed while the client reconnects (ioredis ${major})`, () => {
  // The handover subtracts its marker from the counts the server replies with, wherever the server counts it: among
  // channels and patterns when the marker is a plain channel (with a keyPrefix), among sharded channels otherwise.
  for (const { label, first, join, leave, name, keyPrefix } of [
    { label: 'SUBSCRIBE and UNSUBSCRIBE', first: 'subscribe', join: 'subscribe', leave: 'unsubscribe', name: 'oq:b' },
    {
      label: 'PSUBSCRIBE and PUNSUBSCRIBE',
      first: 'subscribe',
      join: 'psubscribe',
      leave: 'punsubscribe',
      name: 'oq:p:*',
    },
    {
      label: 'SSUBSCRIBE and SUNSUBSCRIBE',
      first: 'ssubscribe',
      join: 'ssubscribe',
      leave: 'sunsubscribe',
      name: 'oq:s',
    },
    ...(['subscribe', 'psubscribe'] as const).map((kind) => ({
      label: `${kind.toUpperCase()} and ${kind.replace('sub', 'unsub').toUpperCase()} (keyPrefix)`,
      first: 'subscribe' as const,
      join: kind,
      leave: kind === 'subscribe' ? ('unsubscribe' as const) : ('punsubscribe' as const),
      name: kind === 'subscribe' ? 'oq:b' : 'oq:p:*',
      keyPrefix: 'app:',
    })),
  ] as const) {
    it(`the subscription counts in the replies of ${label} sent while the client reconnects`, async () => {
      const provider = world.provider();
      const connectionName = `oq-count-${join}${keyPrefix ? '-prefix' : ''}`;
      const redis = client(provider, { connectionName, keyPrefix, ...resp2 });
      assert.equal(await redis[first]('oq:a'), 1);
      const { value: replies, outcome } = await actWhileReconnecting(provider, redis, connectionName, () => [
        redis[join](name),
        redis[leave](name),
      ]);
      // A plain client subscribed to oq:a alone is answered 2, then 1.
      assert.deepEqual(await Promise.all(replies), [2, 1]);
      assert.equal(outcome, 'done');
      redis.disconnect();
    });
  }

  it("the counts of a SUBSCRIBE and an UNSUBSCRIBE sent at the reconnect's 'connect' event, before its ready check", async () => {
    // ioredis 5 writes a pub/sub command sent while the new socket is in its handshake ('connect', the ready check's
    // INFO already written) straight away, ahead of the resubscriptions it writes when ready: the server would answer
    // the SUBSCRIBE with 2 (oq:a not yet restored) and leave INFO refused or the counts short. The handover holds such
    // a command until the client is ready, as ioredis 6 does and as a plain client on a connection that stays up.
    const provider = world.provider();
    const connectionName = 'oq-connect';
    const redis = client(provider, { connectionName, ...resp2 });
    assert.equal(await redis.subscribe('oq:a', 'oq:z'), 2);
    const errors: string[] = [];
    redis.on('error', (error: Error) => errors.push(error.message));
    const { value: replies, outcome } = await actWhileReconnecting(provider, redis, connectionName, () =>
      new Promise<Array<Promise<unknown>>>((resolve) => {
        redis.once('connect', () => resolve([redis.subscribe('oq:b'), redis.unsubscribe('oq:z')]));
      }).then((sent) => Promise.all(sent)),
    );
    // A plain client subscribed to oq:a and oq:z is answered 3, then 2.
    assert.deepEqual(await replies, [3, 2]);
    assert.equal(outcome, 'done');
    assert.deepEqual(errors, []);
    assert.equal(await redis.unsubscribe('oq:b'), 1);
    redis.disconnect();
  });

  it('a channel subscribed while the client reconnects: each message once, none published after the reply lost', async () => {
    const provider = world.provider();
    const connectionName = 'oq-messages';
    const redis = client(provider, { connectionName, ...resp2 });
    const publisher = client(provider);
    const received: number[] = [];
    redis.on('message', (channel: string, message: string) => {
      if (channel === 'oq:c') received.push(Number(message));
    });
    assert.equal(await redis.subscribe('oq:a'), 1);
    let n = 0;
    let publishing = true as boolean; // cleared once the handover has ended
    // Published every 5 ms from before the handover until it has ended and the SUBSCRIBE is answered.
    const published = (async () => {
      while (publishing) {
        await publisher.publish('oq:c', String(n++));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    /** The first message published once the application had the reply of its SUBSCRIBE. */
    let firstAfterReply: number | undefined;
    // The phases of this connection's handovers from the act on, for the failure message.
    const phases: string[] = [];
    let last = -1;
    const onPhase = (message: unknown) => {
      const m = message as HandoverPhaseMessage;
      if (m.connection === connectionName && phases.length > 0) phases.push(m.phase);
    };
    diagnosticsChannel.subscribe(HANDOVER_CHANNEL, onPhase);
    try {
      const { value: reply, outcome } = await actWhileReconnecting(provider, redis, connectionName, () => {
        phases.push('(act)');
        // The next token lives a minute: the handover it brings, while this test waits for its messages, has a
        // minute's bounds, and no other follows. With 3-second tokens it would have to finish within 1.5 s, and on a
        // busy machine it may not: then it falls back to a plain reconnect, losing what is published meanwhile (the
        // documented loss, not what is tested here).
        world.entra.tokenLifetimeSeconds = 60;
        return redis.subscribe('oq:c').then((count) => {
          firstAfterReply = n;
          return count;
        });
      });
      assert.equal(await reply, 2);
      publishing = false;
      await published;
      // The loop may not have published after the reply (its timer starved on a busy machine): its last message may
      // then predate both subscriptions on the server, delivered to nobody, as on a plain client. One more, published
      // after the reply, is the one waited for.
      await publisher.publish('oq:c', String(n++));
      last = n - 1;
      // A handover that fell back reconnected the client plainly, losing what was published meanwhile: say so first.
      assert.equal(outcome, 'done');
      await waitUntil(() => received.includes(last), {
        timeoutMs: 5_000,
        description: 'the last message received',
      }).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; handover phases from the act on: ${phases.join(', ')}`);
      });
    } finally {
      diagnosticsChannel.unsubscribe(HANDOVER_CHANNEL, onPhase);
      world.entra.tokenLifetimeSeconds = 3;
    }
    const from = firstAfterReply as number;
    // Each message once, in order; every one published after the reply.
    assert.deepEqual(
      received,
      [...received].sort((x, y) => x - y).filter((m, i, all) => all.indexOf(m) === i),
      'a message twice or out of order',
    );
    assert.deepEqual(
      received.filter((m) => m >= from),
      Array.from({ length: last - from + 1 }, (_, i) => from + i),
      'a message published after the reply was lost',
    );
    // Subscribed to oq:a and oq:c, as a plain client is.
    assert.equal(await redis.unsubscribe('oq:c'), 1);
    publisher.disconnect();
    redis.disconnect();
  });
});
