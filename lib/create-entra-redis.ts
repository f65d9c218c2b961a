import { Redis } from 'ioredis';
import { bindClient, connectUnlessLazy } from './binding/make-client.js';
import { splitRedisArguments, type EntraRedisOptions } from './binding/redis-arguments.js';
import { defaultCredentialsProvider } from './identity/default-provider.js';

export type { EntraRedisOptions } from './binding/redis-arguments.js';

/**
 * A drop-in for `new Redis(...)`: takes the same arguments plus `credentialsProvider`, and returns a real ioredis
 * `Redis` at once. It connects with an Entra ID token, reconnects with a fresh one, and re-authenticates the live
 * connection before each token expires. Commands issued before the first token arrives wait in the offline queue.
 * `duplicate()` of the returned client (and of its duplicates) is covered the same way.
 */
export function createEntraRedis(options?: EntraRedisOptions): Redis;
export function createEntraRedis(port: number, options?: EntraRedisOptions): Redis;
export function createEntraRedis(path: string, options?: EntraRedisOptions): Redis;
export function createEntraRedis(port: number, host: string, options?: EntraRedisOptions): Redis;
export function createEntraRedis(...args: unknown[]): Redis {
  const { redisArgs, extra, lazyConnect } = splitRedisArguments(args);
  const provider = extra.credentialsProvider ?? defaultCredentialsProvider();
  const redis = new (Redis as unknown as new (...a: unknown[]) => Redis)(...redisArgs);
  bindClient(redis, provider, extra.reauthJitter);
  return connectUnlessLazy(redis, lazyConnect);
}
