import { ManagedIdentityCredential } from '@azure/identity';
import { Redis, type RedisOptions } from 'ioredis';
import { createCredentialsProvider, type EntraCredentialsProvider } from '../lib/identity/credentials-provider.js';
import type { CredentialsProviderEvents } from '../lib/identity/events.js';
import type { TokenManagerOptions } from '../lib/manager/options.js';
import { AmrEmulator, startAmrCluster, type AmrCluster } from '../lib/testing/amr-emulator.js';
import { selfSignedCertificate } from '../lib/testing/certs.js';
import { EntraEmulator, type EmulatedManagedIdentity } from '../lib/testing/entra-emulator.js';
import {
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisServerHandle,
} from '../lib/testing/redis-server.js';

export { waitUntil } from '../lib/testing/redis-server.js';

export interface WorldOptions {
  /** Lifetime of issued tokens, seconds. Default 3. */
  tokenLifetimeSeconds?: number;
  /** Terminate TLS at the AMR emulator, as AMR's port 10000 does. */
  tls?: boolean;
  /** Extra redis.conf lines for the standalone redis-server. */
  redisConfig?: string[];
}

/**
 * The Entra ID side of a test: the emulator serving a user-assigned managed identity to real
 * ManagedIdentityCredentials, the environment that points them at it, and the providers and clients to clean up.
 */
abstract class TokenSide {
  readonly #restoreEnv: () => void;
  readonly #providers: EntraCredentialsProvider[] = [];
  readonly #clients: Array<{ disconnect(): void }> = [];

  protected constructor(
    readonly entra: EntraEmulator,
    readonly identity: EmulatedManagedIdentity,
  ) {
    this.#restoreEnv = entra.applyManagedIdentityEnv();
  }

  /** A provider over a real ManagedIdentityCredential for the emulated identity; disposed by stop(). */
  provider(
    options: {
      tokenManagerOptions?: TokenManagerOptions;
      username?: () => string;
      identity?: EmulatedManagedIdentity;
    } = {},
  ): EntraCredentialsProvider {
    const identity = options.identity ?? this.identity;
    const credential = new ManagedIdentityCredential({ clientId: identity.clientId, retryOptions: { maxRetries: 0 } });
    const provider = createCredentialsProvider({
      credential,
      tokenManagerOptions: {
        tokenRequestTimeout: 2_000,
        ...options.tokenManagerOptions,
        retryOptions: { initialDelay: 100, maxDelay: 500, ...options.tokenManagerOptions?.retryOptions },
      },
      ...(options.username ? { username: options.username } : {}),
    });
    this.#providers.push(provider);
    return provider;
  }

  /** Registers a client (or cluster) to be disconnected by stop(). */
  track<T extends { disconnect(): void }>(client: T): T {
    this.#clients.push(client);
    return client;
  }

  protected async stopTokenSide(): Promise<void> {
    for (const client of this.#clients) client.disconnect();
    for (const provider of this.#providers) provider.dispose();
    this.#restoreEnv();
    await this.entra.stop();
  }
}

/**
 * Everything a client test needs, all real and on loopback: a redis-server, the Entra ID emulator serving a
 * user-assigned managed identity to a real ManagedIdentityCredential, and the AMR emulator in front of the server.
 */
export class World extends TokenSide {
  private constructor(
    readonly redis: RedisServerHandle,
    entra: EntraEmulator,
    readonly amr: AmrEmulator,
    identity: EmulatedManagedIdentity,
    readonly certificate: { key: string; cert: string } | undefined,
  ) {
    super(entra, identity);
  }

  static async start(options: WorldOptions = {}): Promise<World> {
    const redis = await startRedisServer({ extraConfig: options.redisConfig ?? [] });
    const entra = await EntraEmulator.start({ tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 3 });
    const certificate = options.tls ? selfSignedCertificate() : undefined;
    const amr = await AmrEmulator.start({
      backend: { host: redis.host, port: redis.port },
      publicKey: entra.publicKey,
      admin: redis.admin,
      ...(certificate ? { tls: certificate } : {}),
    });
    const identity = entra.addManagedIdentity({ kind: 'user' });
    return new World(redis, entra, amr, identity, certificate);
  }

  /** Where clients connect: the AMR emulator. */
  get endpoint(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.amr.port };
  }

  /** Options for a plain ioredis client through the emulator (TLS when the world has it). */
  redisOptions(extra: RedisOptions = {}): RedisOptions {
    return {
      ...this.endpoint,
      ...(this.certificate ? { tls: { ca: this.certificate.cert, servername: 'localhost' } } : {}),
      ...extra,
    };
  }

  /** An admin client straight to redis-server, for setup and assertions. */
  admin(): Redis {
    return this.track(new Redis(this.redis.adminClientOptions()));
  }

  async stop(): Promise<void> {
    await this.stopTokenSide();
    await this.amr.stop();
    await this.redis.stop();
  }
}

/** The same with a real 3-master Redis Cluster, one AMR emulator per node, reached through natMap. */
export class ClusterWorld extends TokenSide {
  private constructor(
    readonly cluster: RedisClusterHandle,
    entra: EntraEmulator,
    readonly amr: AmrCluster,
    identity: EmulatedManagedIdentity,
    readonly certificate: { key: string; cert: string } | undefined,
  ) {
    super(entra, identity);
  }

  static async start(options: WorldOptions = {}): Promise<ClusterWorld> {
    const cluster = await startRedisCluster({ masters: 3 });
    const entra = await EntraEmulator.start({ tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 3 });
    const certificate = options.tls ? selfSignedCertificate() : undefined;
    const amr = await startAmrCluster(cluster, {
      publicKey: entra.publicKey,
      ...(certificate ? { tls: certificate } : {}),
    });
    const identity = entra.addManagedIdentity({ kind: 'user' });
    return new ClusterWorld(cluster, entra, amr, identity, certificate);
  }

  /** Options for createEntraCluster / new Cluster: natMap to the emulators, TLS when the world has it. */
  clusterOptions(): { natMap: AmrCluster['natMap']; redisOptions: RedisOptions } {
    return {
      natMap: this.amr.natMap,
      redisOptions: this.certificate ? { tls: { ca: this.certificate.cert, servername: 'localhost' } } : {},
    };
  }

  async stop(): Promise<void> {
    await this.stopTokenSide();
    await this.amr.stop();
    await this.cluster.stop();
  }
}

/** Resolves with the next `event` of `provider` that satisfies `predicate`. */
export function nextEvent<E extends keyof CredentialsProviderEvents>(
  provider: EntraCredentialsProvider,
  event: E,
  predicate: (...args: CredentialsProviderEvents[E]) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<CredentialsProviderEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      provider.off(event, listener as never);
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (...args: CredentialsProviderEvents[E]) => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      provider.off(event, listener as never);
      resolve(args);
    };
    provider.on(event, listener as never);
  });
}

/** Counts events of a provider from now on. */
export function countEvents(
  provider: EntraCredentialsProvider,
  event: keyof CredentialsProviderEvents,
): { count: number; stop(): void } {
  const counter = { count: 0, stop: () => provider.off(event, listener) };
  const listener = () => {
    counter.count++;
  };
  provider.on(event, listener);
  return counter;
}
