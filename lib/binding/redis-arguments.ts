import type { RedisOptions } from 'ioredis';
import { EntraCredentialsProvider } from '../identity/credentials-provider.js';
import { invalidOption } from '../option-errors.js';
import { isPlainObject } from '../plain-object.js';
import { MAX_TIMER_MS, MAX_TIMER_RULE } from '../timer-range.js';

/** Options createEntraRedis adds to ioredis's. */
export interface EntraRedisExtraOptions {
  /** Where tokens come from. Default: one provider over DefaultAzureCredential, shared by all such clients. */
  credentialsProvider?: EntraCredentialsProvider;
  /** Spread re-AUTH of this client over a random delay up to this many ms after a new token. Default 0. */
  reauthJitter?: number;
}

export type EntraRedisOptions = RedisOptions & EntraRedisExtraOptions;

export interface SplitArguments {
  /** Arguments for `new Redis(...)`: the user's, with our options removed and `lazyConnect` forced. */
  redisArgs: unknown[];
  extra: EntraRedisExtraOptions;
  /** Whether the user asked for lazyConnect. */
  lazyConnect: boolean;
}

/**
 * Accepts every argument form of `new Redis()` ((options), (port, host, options), (url, options), (path, options),
 * ...) and takes our options out of the options object.
 */
export function splitRedisArguments(args: unknown[]): SplitArguments {
  const optionsIndex = args.findIndex(isPlainObject);
  const given = optionsIndex === -1 ? {} : (args[optionsIndex] as Record<string, unknown>);
  const { credentialsProvider, reauthJitter, ...redisOptions } = given;
  validateExtra(credentialsProvider, reauthJitter);
  const redisArgs = [...args];
  // The first connect must wait until the library has hooked the client, so the constructor may not connect.
  const forced = { ...redisOptions, lazyConnect: true };
  if (optionsIndex === -1) redisArgs.push(forced);
  else redisArgs[optionsIndex] = forced;
  return {
    redisArgs,
    extra: {
      credentialsProvider: credentialsProvider as EntraCredentialsProvider | undefined,
      reauthJitter: reauthJitter as number | undefined,
    },
    lazyConnect: redisOptions.lazyConnect === true,
  };
}

export function validateExtra(credentialsProvider: unknown, reauthJitter: unknown): void {
  if (credentialsProvider !== undefined && !(credentialsProvider instanceof EntraCredentialsProvider)) {
    throw new TypeError(
      'Invalid option "credentialsProvider": expected a provider made by createCredentialsProvider, ' +
        'createManagedIdentityCredentialsProvider, createConfidentialCredentialsProvider or createDefaultAzureCredentialsProvider',
    );
  }
  if (
    reauthJitter !== undefined &&
    (typeof reauthJitter !== 'number' || !Number.isFinite(reauthJitter) || reauthJitter < 0)
  ) {
    invalidOption('reauthJitter', 'expected a number of ms, at least 0', reauthJitter);
  }
  if (typeof reauthJitter === 'number' && reauthJitter > MAX_TIMER_MS) {
    invalidOption('reauthJitter', MAX_TIMER_RULE, reauthJitter);
  }
}
