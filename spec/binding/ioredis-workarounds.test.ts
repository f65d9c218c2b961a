// ioredis majors: 5, 6
/**
 * Each test reproduces, on a plain ioredis client, a bug that lib/binding/ioredis-workarounds.ts works around. When an
 * ioredis release fixes one, its test here fails and says which workaround can go.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServerHandle } from '../../lib/testing/redis-server.js';

let server: RedisServerHandle;
before(async () => {
  server = await startRedisServer();
});
after(async () => {
  await server.stop();
});

describe(`ioredis ${process.env.IOREDIS_MAJOR ?? '5'}: bugs the library still works around`, () => {
  it('disconnect() while a reconnect is scheduled leaves a plain client reconnecting, never ended (endIfStrandedInReconnect)', async () => {
    const redis = new Redis({ ...server.adminClientOptions(), retryStrategy: () => 60_000 });
    redis.on('error', () => {});
    await redis.ping();
    const admin = new Redis(server.adminClientOptions());
    const reconnecting = new Promise((resolve) => redis.once('reconnecting', resolve));
    await admin.client('KILL', 'ID', String(await redis.client('ID')));
    await reconnecting;
    let ended = false as boolean; // set by the 'end' listener
    redis.once('end', () => {
      ended = true;
    });
    redis.disconnect();
    // What the workaround exists for: nothing more happens. (A fixed ioredis ends the client within this wait.)
    await new Promise((resolve) => setTimeout(resolve, 500));
    const fixed = ended || redis.status !== 'reconnecting';
    admin.disconnect();
    // Ends the stranded client so that the test process can exit.
    (redis as unknown as { setStatus(status: string): void }).setStatus('end');
    assert.equal(
      fixed,
      false,
      'ioredis now ends such a client: remove endIfStrandedInReconnect from lib/binding/ioredis-workarounds.ts',
    );
  });

  it("ioredis's ready handler still leaves the promises of its state-restore commands unhandled (handleStateRestoreRejections)", async () => {
    // A race (the connection must close before the replies are read) that a test cannot hit at will on loopback, so
    // the handler's own code is read: redis/ioredis#2187 adds a catch to each of these calls.
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const name = process.env.IOREDIS_MAJOR === '6' ? 'ioredis6' : 'ioredis';
    const { readyHandler } = require(`${name}/built/redis/event_handler.js`) as {
      readyHandler: (self: unknown) => unknown;
    };
    const source = String(readyHandler);
    const restoring = [
      'self.select(finalSelect)',
      'self.subscribe(subscribeChannels)',
      'self.psubscribe(psubscribeChannels)',
    ];
    const unhandled = restoring.filter((call) => new RegExp(`${call.replace(/[().]/g, '\\$&')};`).test(source));
    assert.deepEqual(
      unhandled,
      restoring,
      'ioredis now handles its state-restore promises (redis/ioredis#2187 released): remove handleStateRestoreRejections from lib/binding/ioredis-workarounds.ts',
    );
  });
});
