// ioredis majors: 5, 6
/**
 * The ioredis internals the library relies on (lib/binding/ioredis-contract.ts lists them; lib/binding/ioredis-
 * internals.ts uses them), checked on the ioredis major this run loads. A release that changes one fails here, naming
 * it, and at createEntraRedis()/createEntraCluster() with an IoredisContractError.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { IoredisContractError } from '../../lib/errors.js';
import {
  assertIoredisContract,
  CLIENT_RELIANCES,
  CLUSTER_RELIANCES,
  installedIoredisVersion,
  missingReliances,
} from '../../lib/binding/ioredis-contract.js';
import { World } from '../../harness/world.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 30 });
});
after(async () => {
  await world.stop();
});

/** An internal, read the way lib/binding/ioredis-internals.ts reads it. */
const internal = (target: object, path: string): unknown =>
  path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown> | undefined)?.[key], target);

describe(`ioredis ${process.env.IOREDIS_MAJOR ?? '5'}: the internals the library relies on`, () => {
  it('every reliance checkable before connecting holds on a new Redis and a new Cluster', () => {
    const redis = new Redis({ lazyConnect: true });
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    assert.deepEqual(missingReliances(redis, CLIENT_RELIANCES), []);
    assert.deepEqual(missingReliances(cluster, CLUSTER_RELIANCES), []);
    redis.disconnect();
    cluster.disconnect();
  });

  it('the reliances that need a live connection hold: the handshake, the command queue, subscribe mode', async () => {
    const redis = world.track(
      createEntraRedis({ ...world.endpoint, credentialsProvider: world.provider(), lazyConnect: true }),
    );
    let authAtConnect: unknown;
    // Redis#connect() builds `condition` from options, then calls connector.connect(): what interceptConnect hooks.
    redis.once('connect', () => {
      authAtConnect = internal(redis, 'condition.auth');
    });
    await redis.connect();
    assert.ok(
      Array.isArray(authAtConnect) || typeof authAtConnect === 'string',
      'condition.auth set for the handshake',
    );
    assert.equal(typeof internal(redis, 'connector.connecting'), 'boolean', 'connector.connecting');
    // A command in flight sits in commandQueue as { command: { name, args, promise } }.
    const reply = redis.blpop('contract:list', 1);
    const entry = (
      internal(redis, 'commandQueue') as {
        peekBack(): { command?: { name?: unknown; args?: unknown; promise?: unknown } };
      }
    ).peekBack();
    assert.equal(entry.command?.name, 'blpop');
    assert.ok(Array.isArray(entry.command.args), 'command.args');
    assert.ok(entry.command.promise instanceof Promise, 'command.promise');
    await reply;
    await redis.subscribe('contract:channel');
    const subscriber = internal(redis, 'condition.subscriber') as { channels?(type: string): string[] } | undefined;
    assert.equal(typeof subscriber?.channels, 'function', 'condition.subscriber.channels()');
    assert.deepEqual(subscriber?.channels?.('subscribe'), ['contract:channel']);
    // During a reconnect's handshake (status 'connect'), what ioredis will restore is in `prevCondition.subscriber`.
    const inHandshake = new Promise<unknown>((resolve) =>
      redis.once('connect', () => {
        const previous = internal(redis, 'prevCondition.subscriber') as
          { channels?(type: string): string[] } | undefined;
        resolve([redis.status, previous?.channels?.('subscribe')]);
      }),
    );
    (redis as unknown as { stream: { destroy(): void } }).stream.destroy();
    assert.deepEqual(await inHandshake, ['connect', ['contract:channel']], 'prevCondition.subscriber.channels()');
    await new Promise((resolve) => redis.once('ready', resolve));
    redis.disconnect();
  });

  it('a missing internal is an IoredisContractError at creation, naming the ioredis version and what is missing', () => {
    // An object with ioredis's real methods but none of an instance's own fields (connector, queues, options), of a
    // class not checked yet (the check runs once per class).
    class Unchecked extends Redis {}
    const hollow = Object.create(Unchecked.prototype) as Redis;
    assert.throws(
      () => assertIoredisContract(hollow, 'Redis'),
      (error: unknown) => {
        assert.ok(error instanceof IoredisContractError);
        const version = installedIoredisVersion();
        assert.ok(version !== undefined);
        assert.match(error.message, /^ioredis \d+\.\d+\.\d+ lacks what ioredis-entraid relies on/);
        for (const name of ['Redis#connector.connect()', 'Redis#commandQueue (a Denque with peekAt, peekBack)']) {
          assert.ok(error.message.includes(name), `names ${name}`);
        }
        return true;
      },
    );
  });
});
