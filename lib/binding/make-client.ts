// The steps that make an ioredis client (a standalone client, a cluster node, a duplicate) one of the library's: check
// the ioredis contract, bind it to a provider (lib/binding/client-binding.ts), carry the binding to its duplicates, and
// connect it unless the caller asked for lazyConnect.
import type { Redis, RedisOptions } from 'ioredis';
import type { EntraCredentialsProvider } from '../identity/credentials-provider.js';
import { bindingOf, ClientBinding } from './client-binding.js';
import { assertIoredisContract } from './ioredis-contract.js';
import type { EntraRedisExtraOptions } from './redis-arguments.js';

/**
 * Ties a client to a provider (once), and makes its duplicates, and theirs, bound clients too. The client must not
 * have connected yet, or be about to connect lazily.
 */
export function bindClient(redis: Redis, provider: EntraCredentialsProvider, reauthJitter: number | undefined): void {
  if (bindingOf(redis)) return;
  assertIoredisContract(redis, 'Redis');
  new ClientBinding(redis, provider, { reauthJitter }); // it attaches itself to the client
  const client = redis as unknown as DuplicatingClient;
  // ioredis's own duplicate() is on the prototype; one the instance already has of its own is kept and called.
  if (Object.prototype.hasOwnProperty.call(client, 'duplicate') && client.duplicate !== duplicateBound)
    client[OWN_DUPLICATE] = client.duplicate;
  client.duplicate = duplicateBound;
}

type DuplicateOptions = Partial<RedisOptions & EntraRedisExtraOptions>;
const OWN_DUPLICATE = Symbol('ioredis-entraid.ownDuplicate');
type Duplicate = (this: Redis, override?: Partial<RedisOptions>) => Redis;
type DuplicatingClient = Omit<Redis, 'duplicate'> & { duplicate: Duplicate; [OWN_DUPLICATE]?: Duplicate };

/** `duplicate()` of every bound client: one function for the process, no closure per client. */
function duplicateBound(this: DuplicatingClient, override?: DuplicateOptions): Redis {
  const redis = this as unknown as Redis;
  const binding = bindingOf(redis) as ClientBinding;
  const duplicate = this[OWN_DUPLICATE] ?? (Object.getPrototypeOf(this) as DuplicatingClient).duplicate;
  const { credentialsProvider, reauthJitter: overrideJitter, ...rest } = override ?? {};
  // Created lazily so that it is bound before its first connect, then connected as the caller asked.
  const copy = duplicate.call(redis, { ...rest, lazyConnect: true });
  bindClient(copy, credentialsProvider ?? binding.provider, overrideJitter ?? binding.reauthJitter);
  return connectUnlessLazy(copy, rest.lazyConnect ?? this.options.lazyConnect ?? false);
}

/**
 * The last step of making a client (or cluster) of the library's, which is created with `lazyConnect` so that
 * nothing connects before it is bound: restores the caller's `lazyConnect` and connects unless it was asked for.
 */
export function connectUnlessLazy<T extends { options: { lazyConnect?: boolean }; connect(): Promise<unknown> }>(
  client: T,
  lazyConnect: boolean,
): T {
  client.options.lazyConnect = lazyConnect;
  if (!lazyConnect) {
    client.connect().catch(() => {
      // reported through the 'error' event, as ioredis does for its own first connect
    });
  }
  return client;
}
