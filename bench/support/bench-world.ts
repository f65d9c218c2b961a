/**
 * The one set of servers every scenario of a run shares: a redis-server, the Entra ID emulator (serving managed
 * identities to real ManagedIdentityCredentials) and the AMR emulator in front of the redis-server, all from
 * harness/world.ts. One per process: MSAL remembers the managed-identity endpoint for the life of the process.
 *
 * Two paths to the data:
 * - `direct`: straight to redis-server, as an ACL user named after the identity's oid that takes any password (the
 *   token). Nothing but ioredis and redis-server on the path, so client-side costs are not diluted by the proxy.
 * - `proxied`: through the AMR emulator, which verifies every token and closes a connection when its token expires.
 */
import { performance } from 'node:perf_hooks';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ManagedIdentityCredential } from '@azure/identity';
import { createCredentialsProvider, type EntraCredentialsProvider, type TokenManagerOptions } from '../../lib/index.js';
import type { EmulatedManagedIdentity } from '../../lib/testing/entra-emulator.js';
import { World } from '../../harness/world.js';

/**
 * Wraps a credential and notes when each token arrived (performance.now()). That instant is when a library holds a
 * new token: the start of a rotation, measured the same way for every library.
 */
export class TimedCredential implements TokenCredential {
  calls = 0;
  /** performance.now() when the last token arrived; NaN before the first. */
  lastTokenAt = Number.NaN;
  /** CPU usage of the process at that moment. */
  lastTokenCpu: NodeJS.CpuUsage | undefined;
  /** Called with each token as it arrives, before the library sees it. */
  readonly listeners = new Set<(token: AccessToken, at: number) => void>();

  constructor(readonly inner: TokenCredential) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.calls++;
    const token = await this.inner.getToken(scopes, options);
    if (token) {
      this.lastTokenAt = performance.now();
      this.lastTokenCpu = process.cpuUsage();
      for (const listener of this.listeners) listener(token, this.lastTokenAt);
    }
    return token;
  }
}

/** Token-manager settings of the test world: short request timeout and quick retries, as for short-lived tokens. */
export const BENCH_TOKEN_MANAGER_OPTIONS: TokenManagerOptions = {
  tokenRequestTimeout: 2_000,
  retryOptions: { initialDelay: 100, maxDelay: 500 },
};

export class BenchWorld {
  readonly #providers: EntraCredentialsProvider[] = [];

  private constructor(readonly world: World) {}

  static async start(): Promise<BenchWorld> {
    return new BenchWorld(await World.start({ tokenLifetimeSeconds: 3 }));
  }

  get entra() {
    return this.world.entra;
  }

  get amr() {
    return this.world.amr;
  }

  get redis() {
    return this.world.redis;
  }

  /** redis-server itself. */
  get direct(): { host: string; port: number } {
    return { host: this.world.redis.host, port: this.world.redis.port };
  }

  /** The AMR emulator in front of redis-server. */
  get proxied(): { host: string; port: number } {
    return this.world.endpoint;
  }

  /** A new managed identity for connections through the AMR emulator (which creates its ACL user on AUTH). */
  proxiedIdentity(): EmulatedManagedIdentity {
    return this.entra.addManagedIdentity({ kind: 'user' });
  }

  /** A new managed identity whose oid is a redis-server ACL user that accepts any password: for direct connections. */
  async directIdentity(): Promise<EmulatedManagedIdentity> {
    const identity = this.entra.addManagedIdentity({ kind: 'user' });
    await this.redis.command('ACL', 'SETUSER', identity.oid, 'on', 'nopass', '~*', '&*', '+@all');
    return identity;
  }

  /** A real ManagedIdentityCredential for `identity`, timed. */
  credential(identity: EmulatedManagedIdentity): TimedCredential {
    return new TimedCredential(
      new ManagedIdentityCredential({ clientId: identity.clientId, retryOptions: { maxRetries: 0 } }),
    );
  }

  /** A provider of this library over a timed credential for `identity`; disposed by stop(). */
  provider(
    identity: EmulatedManagedIdentity,
    tokenManagerOptions: TokenManagerOptions = {},
  ): {
    provider: EntraCredentialsProvider;
    credential: TimedCredential;
  } {
    const credential = this.credential(identity);
    const provider = createCredentialsProvider({
      credential,
      tokenManagerOptions: { ...BENCH_TOKEN_MANAGER_OPTIONS, ...tokenManagerOptions },
    });
    this.#providers.push(provider);
    return { provider, credential };
  }

  /** Requests the Entra emulator received for `oid` so far (failed ones included). */
  tokenRequests(oid: string): number {
    return this.entra.requests.byOid[oid] ?? 0;
  }

  async stop(): Promise<void> {
    for (const provider of this.#providers) provider.dispose();
    await this.world.stop();
  }
}
