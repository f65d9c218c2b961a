// ioredis majors: 5, 6
/**
 * ioredis's own behaviour, no library: a plain Cluster's subscriber connection reconnects (after a drop, ioredis
 * makes a new one) and the application subscribes while the new connection is in its handshake (status `connect`,
 * before the ready check). ioredis 5 writes the SUBSCRIBE at once (Redis marks it safe while loading), ahead of the
 * ready check's INFO: the connection is in subscribe mode when INFO comes, which is refused (by ioredis 5 itself,
 * "Connection in subscriber mode, only subscriber commands may be used", or by the server, "ERR Can't execute
 * 'info'"), the ready check fails, and ioredis rejects every command then queued on that connection with that error
 * and closes it. ioredis 6 holds the SUBSCRIBE until the ready check has passed. docs/guarantees.md documents it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, it } from 'node:test';
import { Cluster, type Redis } from 'ioredis';
import { ClusterWorld } from '../../harness/world.js';
import { IOREDIS5_SUBSCRIBE_BEFORE_READY } from '../support/ioredis5-subscribe-before-ready.js';

let world: ClusterWorld;
before(async () => {
  world = await ClusterWorld.start({ tokenLifetimeSeconds: 600 });
});
after(async () => {
  await world.stop();
});

const major = process.env.IOREDIS_MAJOR ?? '5';

function subscriberOf(cluster: Cluster): Redis | null {
  return (cluster as unknown as { subscriber: { getInstance(): Redis | null } }).subscriber.getInstance();
}

it(`ioredis ${major}: a SUBSCRIBE sent while a plain Cluster's new subscriber connection is in its handshake`, async () => {
  const oid = randomUUID();
  const password = world.entra.mint({ oid, exp: Math.floor(Date.now() / 1000) + 600 });
  const cluster = world.track(
    new Cluster(world.amr.startupNodes(), {
      ...world.clusterOptions(),
      redisOptions: { protocol: 2, username: oid, password } as object,
    }),
  );
  await cluster.subscribe('race:a');
  const old = subscriberOf(cluster) as Redis;
  // The connection drops; ioredis's ClusterSubscriber makes a new one and resubscribes 'race:a' on it.
  const replaced = new Promise<Redis>((resolve) => old.once('end', () => resolve(subscriberOf(cluster) as Redis)));
  (old as unknown as { stream: { destroy(): void } }).stream.destroy();
  const fresh = await replaced;
  assert.notEqual(fresh, old);
  const errors: string[] = [];
  fresh.on('error', (error: Error) => errors.push(error.message));
  // The application subscribes the moment the new connection is up, before its ready check.
  const { subscribed } = await new Promise<{ subscribed: Promise<unknown> }>((resolve) =>
    fresh.once('connect', () => resolve({ subscribed: cluster.subscribe('race:b') })),
  );
  const outcome = await Promise.race([
    new Promise((resolve) => fresh.once('ready', () => resolve('ready'))),
    new Promise((resolve) => fresh.once('end', () => resolve('closed'))),
  ]);
  await subscribed.catch(() => {});
  if (major === '5') {
    assert.equal(outcome, 'closed');
    assert.equal(errors.length, 1, String(errors));
    assert.match(errors[0] as string, IOREDIS5_SUBSCRIBE_BEFORE_READY);
  } else {
    assert.equal(outcome, 'ready');
    assert.deepEqual(errors, []);
  }
});
