import { EventEmitter } from 'node:events';
import type { TokenCredential } from '@azure/core-auth';
import type { EntraToken, UsernameResolver } from '../token/entra-token.js';
import type { TokenManagerOptions } from '../manager/options.js';
import { TokenManager, type GetTokenOptions } from '../manager/token-manager.js';
import { describeToken, type CredentialsProviderEvents } from './events.js';
import { TokenFanOut } from './token-fan-out.js';
import { emitIsolated } from '../listener-errors.js';
import { DEFAULT_REDIS_SCOPE, REDIS_APPLICATION_ID } from '../token/redis-audience.js';

const PROVIDER_BRAND = Symbol.for('ioredis-entraid.EntraCredentialsProvider');

export { DEFAULT_REDIS_SCOPE };

/**
 * Audiences a token requested for `scopes` may carry: the resource of each `<resource>/.default` scope (with and
 * without a trailing slash) and, for Redis, its application id. Undefined (no check) when a scope is not of that form.
 */
export function expectedAudiences(scopes: readonly string[]): string[] | undefined {
  const audiences: string[] = [];
  for (const scope of scopes) {
    if (!scope.endsWith('/.default')) return undefined;
    const resource = scope.slice(0, -'/.default'.length);
    audiences.push(resource, `${resource}/`);
    if (/^https:\/\/redis\.azure\.[a-z.]+$/.test(resource)) audiences.push(REDIS_APPLICATION_ID);
  }
  return audiences;
}

/** Options every credentials provider takes. */
export interface CommonCredentialsProviderOptions {
  /** Token scopes. Default `https://redis.azure.com/.default`; override for sovereign clouds. */
  scopes?: string | string[];
  /** Picks the Redis username from the token. Default: the `oid` claim. */
  username?: UsernameResolver;
  /** Refresh schedule and retries. */
  tokenManagerOptions?: TokenManagerOptions;
}

/** Options of {@link createCredentialsProvider}. */
export interface CredentialsProviderOptions extends CommonCredentialsProviderOptions {
  /** Any @azure/identity credential (workload identity, Azure CLI, a chain, ...). */
  credential: TokenCredential;
}

/**
 * Receives every new token of a provider, for as long as it is subscribed: how the library's bindings attach to a
 * provider. Not for applications (they listen to `tokenRefreshed`).
 * @internal
 */
export interface TokenSubscriber {
  onToken(token: EntraToken): void;
}

/**
 * The source of tokens for any number of Redis clients. All clients, duplicates and cluster nodes that share one
 * provider share one token and one refresh schedule. The schedule runs while at least one subscriber is attached.
 */
export class EntraCredentialsProvider extends EventEmitter<CredentialsProviderEvents> {
  /**
   * Recognises providers made by any copy of this library (its ES module and CommonJS builds can both be loaded in
   * one process), so that `instanceof` works across them.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' && value !== null && (value as { [PROVIDER_BRAND]?: unknown })[PROVIDER_BRAND] === true
    );
  }

  readonly [PROVIDER_BRAND] = true;
  /** The scopes tokens are requested for. */
  readonly scopes: readonly string[];
  readonly #manager: TokenManager;
  readonly #subscribers = new Set<TokenSubscriber>();
  readonly #fanOut = new TokenFanOut(this.#subscribers);

  constructor(options: CredentialsProviderOptions) {
    super();
    const given: unknown = options; // checked: callers from JavaScript may pass anything
    if (typeof given !== 'object' || given === null) {
      throw new TypeError('Invalid options: expected an object with a "credential"');
    }
    const { credential } = options;
    const candidate: unknown = credential;
    if (
      typeof candidate !== 'object' ||
      candidate === null ||
      typeof (candidate as { getToken?: unknown }).getToken !== 'function'
    ) {
      throw new TypeError('Invalid option "credential": expected a TokenCredential (an object with a getToken method)');
    }
    this.scopes = Object.freeze(normalizeScopes(options.scopes));
    const scopes = [...this.scopes];
    this.#manager = new TokenManager((abortSignal) => credential.getToken(scopes, { abortSignal }), {
      tokenManagerOptions: options.tokenManagerOptions,
      username: options.username,
      audiences: expectedAudiences(this.scopes),
      hooks: {
        onToken: (token) => {
          // Connections first (a throwing listener cannot keep the token from them). Every 'reauthenticated' of this
          // token comes after 'tokenRefreshed': AUTH replies are read on later turns of the event loop.
          this.#fanOut.deliver(token);
          this.emit('tokenRefreshed', describeToken(token));
        },
        onRefreshFailed: (failure) => this.emit('refreshFailed', failure),
        onExpiryMismatch: (mismatch) => this.emit('expiryMismatch', mismatch),
      },
    });
  }

  /**
   * Delivers a provider event to every listener, each on its own: a listener that throws neither stops the library's
   * work nor keeps the event from the other listeners; its exception is rethrown on the next tick (an uncaught
   * exception of the listener, as Node.js's diagnostics_channel does). The same rule for every event.
   */
  override emit<K extends keyof CredentialsProviderEvents>(event: K, ...args: CredentialsProviderEvents[K]): boolean {
    return emitIsolated(this, event, args);
  }

  /**
   * The server refused `token` on a live connection (WRONGPASS): a replacement is requested now, once per token.
   * The connection keeps the token it holds meanwhile. Called by the library's bindings.
   * @internal
   */
  replaceRefusedToken(token: EntraToken): void {
    this.#manager.requestReplacement(token);
  }

  /** A valid token: the cached one while it lasts, else a fresh one (shared by concurrent callers). */
  getToken(options?: GetTokenOptions): Promise<EntraToken> {
    return this.#manager.getToken(options);
  }

  /** The cached token while it is valid, else undefined. Never waits. */
  currentToken(): EntraToken | undefined {
    return this.#manager.validToken();
  }

  /** The error of the last failed token request since the last success (never holds a token). */
  get lastError(): unknown {
    return this.#manager.lastError;
  }

  /** Number of attached subscribers (connections the library keeps authenticated). */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /** True while the refresh schedule runs: some client is attached, and tokens are fetched ahead of expiry. */
  get scheduleRunning(): boolean {
    return this.#manager.running;
  }

  /**
   * @deprecated Use {@link scheduleRunning}: this says whether the refresh schedule runs, not whether a token request
   * is in flight. Kept because earlier releases documented it.
   */
  get refreshing(): boolean {
    return this.scheduleRunning;
  }

  /** True once {@link dispose} ran. */
  get disposed(): boolean {
    return this.#manager.disposed;
  }

  /**
   * Attaches a subscriber: the refresh schedule runs while any is attached. Returns the function that detaches it;
   * when the last one leaves, the provider holds no timers.
   * Used by the library's bindings, not by applications.
   * @internal
   */
  subscribe(subscriber: TokenSubscriber): () => void {
    this.#subscribers.add(subscriber);
    this.#manager.start();
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      this.#subscribers.delete(subscriber);
      if (this.#subscribers.size === 0) this.#manager.stop();
    };
  }

  /**
   * Hands the current token to every subscriber again, as when it was new: after a refusal, at the held token's
   * deadline, the refused token is tried once more in place (lib/binding/refusals.ts). Nothing once disposed.
   * @internal
   */
  handOutCurrentToken(): void {
    const token = this.currentToken();
    if (token && this.#subscribers.size > 0) this.#fanOut.deliver(token);
  }

  /**
   * Detaches a subscriber (nothing if it is not attached); when the last one leaves, the provider holds no timers.
   * Used by the library's bindings, not by applications.
   * @internal
   */
  unsubscribe(subscriber: TokenSubscriber): void {
    if (this.#subscribers.delete(subscriber) && this.#subscribers.size === 0) this.#manager.stop();
  }

  /** Stops the schedule and any request in flight; callers waiting for a token are rejected. */
  dispose(): void {
    this.#fanOut.cancel();
    this.#subscribers.clear();
    this.#manager.dispose();
  }
}

function normalizeScopes(scopes: unknown): string[] {
  if (scopes === undefined) return [DEFAULT_REDIS_SCOPE];
  const list = typeof scopes === 'string' ? [scopes] : scopes;
  if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new TypeError(
      'Invalid option "scopes": expected a non-empty string or a non-empty array of non-empty strings',
    );
  }
  return list as string[];
}

/** A provider over any `TokenCredential` from @azure/identity (workload identity, Azure CLI, chains, your own). */
export function createCredentialsProvider(options: CredentialsProviderOptions): EntraCredentialsProvider {
  return new EntraCredentialsProvider(options);
}
