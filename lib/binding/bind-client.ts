import type { Redis } from 'ioredis';
import type { EntraCredentialsProvider } from '../identity/credentials-provider.js';
import { ClientBinding } from './client-binding.js';
import { assertIoredisContract } from './ioredis-contract.js';
import type { EntraRedisExtraOptions } from './redis-arguments.js';

const BOUND = Symbol('ioredis-entraid.binding');
type Bound = Redis & { [BOUND]?: ClientBinding };

/**
 * Ties a client to a provider (once), and makes its duplicates, and theirs, bound clients too. The client must not
 * have connected yet, or be about to connect lazily.
 */
export function bindClient(redis: Redis, provider: EntraCredentialsProvider, reauthJitter: number | undefined): void {
  if ((redis as Bound)[BOUND]) return;
  assertIoredisContract(redis, 'Redis');
  const binding = new ClientBinding(redis, provider, { reauthJitter });
  (redis as Bound)[BOUND] = binding;
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override?: Partial<import('ioredis').RedisOptions & EntraRedisExtraOptions>) => {
    const { credentialsProvider, reauthJitter: overrideJitter, ...rest } = override ?? {};
    // Created lazily so that it is bound before its first connect, then connected as the caller asked.
    const copy = duplicate({ ...rest, lazyConnect: true });
    bindClient(copy, credentialsProvider ?? provider, overrideJitter ?? reauthJitter);
    return connectUnlessLazy(copy, rest.lazyConnect ?? redis.options.lazyConnect ?? false);
  };
}

/**
 * The last step of making a client (or cluster) of the library's, which is created with `lazyConnect` so that
 * nothing connects before it is bound: restores the caller's `lazyConnect` and connects unless it was asked for.
 */
export function connectUnlessLazy<T extends { options: { lazyConnect?: boolean }; connect(): Promise<unknown> }>(client: T, lazyConnect: boolean): T {
  client.options.lazyConnect = lazyConnect;
  if (!lazyConnect) {
    client.connect().catch(() => {
      // reported through the 'error' event, as ioredis does for its own first connect
    });
  }
  return client;
}
