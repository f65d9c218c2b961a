/**
 * The soak's clients and what they write: every client shape the library binds (standalone clients, a duplicate and a
 * duplicate of it, a Cluster, a pub/sub subscriber, a queue consumer blocked in BLMOVE), the lanes that write through
 * them one command at a time, and the bookkeeping of the pub/sub messages and queue items.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagedIdentityCredential } from '@azure/identity';
import type { Cluster, Redis } from 'ioredis';
import {
  createCredentialsProvider,
  createEntraCluster,
  createEntraRedis,
  type EntraCredentialsProvider,
} from '../../lib/index.js';
import type { Dice } from './dice.js';
import { Lane } from './lane.js';
import type { Servers } from './servers.js';
import { TOKEN_MANAGER_OPTIONS } from './settings.js';
import { TokenTimeline } from './token-timeline.js';
import { describeError, tally } from './util.js';

/** The key a cluster lane writes its `i`th member to: 6 keys per lane, spread over the masters. */
export const clusterKey = (lane: number, i: number): string => `soak:{c${lane}-${i % 6}}`;

/** A message or queue item, by sequence number, and when it was sent (epoch ms). */
export interface Sent {
  i: number;
  at: number;
}

/** The two providers (one shared by the standalone clients, one by the cluster) and what they report. */
export class Providers {
  readonly standalone: EntraCredentialsProvider;
  readonly cluster: EntraCredentialsProvider;
  readonly timelines: { standalone: TokenTimeline; cluster: TokenTimeline };
  readonly reauthenticated = new Map<string, number>();
  reauthenticationFailed = 0;
  refreshFailed = 0;

  constructor(servers: Servers) {
    const identity = servers.entra.addManagedIdentity({ kind: 'user' });
    const make = () =>
      createCredentialsProvider({
        credential: new ManagedIdentityCredential({ clientId: identity.clientId, retryOptions: { maxRetries: 0 } }),
        tokenManagerOptions: TOKEN_MANAGER_OPTIONS,
      });
    this.standalone = make();
    this.cluster = make();
    this.timelines = { standalone: new TokenTimeline(this.standalone), cluster: new TokenTimeline(this.cluster) };
    for (const provider of this.all()) {
      provider.on('reauthenticated', (event) => tally(this.reauthenticated, event.method));
      provider.on('reauthenticationFailed', () => {
        this.reauthenticationFailed++;
      });
      provider.on('refreshFailed', () => {
        this.refreshFailed++;
      });
    }
  }

  all(): EntraCredentialsProvider[] {
    return [this.standalone, this.cluster];
  }
}

/** The clients, each watched for `error` events. */
export class Clients {
  readonly errors = new Map<string, number>();
  errorCount = 0;
  readonly a: Redis;
  readonly b: Redis;
  readonly dup1: Redis;
  readonly dup2: Redis;
  readonly consumer: Redis;
  readonly subscriber: Redis;
  readonly cluster: Cluster;

  constructor(servers: Servers, providers: Providers) {
    const endpoint = { host: servers.amr.host, port: servers.amr.port };
    const standalone = (name: string) =>
      this.#watch(createEntraRedis({ ...endpoint, connectionName: name, credentialsProvider: providers.standalone }));
    this.a = standalone('soak-a');
    this.b = standalone('soak-b');
    this.dup1 = this.#watch(this.a.duplicate({ connectionName: 'soak-dup1' }));
    this.dup2 = this.#watch(this.dup1.duplicate({ connectionName: 'soak-dup2' }));
    this.consumer = standalone('soak-consumer');
    this.subscriber = standalone('soak-sub');
    this.cluster = this.#watch(
      createEntraCluster(servers.amrCluster.startupNodes(), {
        natMap: servers.amrCluster.natMap,
        credentialsProvider: providers.cluster,
        redisOptions: { connectionName: 'soak-cluster' },
      }),
    );
    this.cluster.on('node error', () => {
      this.errorCount++;
    });
  }

  #watch<T extends Redis | Cluster>(client: T): T {
    client.on('error', (error: unknown) => {
      this.errorCount++;
      tally(this.errors, describeError(error));
    });
    return client;
  }

  standalone(): Redis[] {
    return [this.a, this.b, this.dup1, this.dup2, this.consumer, this.subscriber];
  }

  all(): Array<Redis | Cluster> {
    return [...this.standalone(), this.cluster];
  }
}

/** The writes: one lane per client and command, the queue consumer, and what was published, pushed and received. */
export class Workload {
  readonly published: Sent[] = [];
  readonly received: number[] = [];
  readonly pushed: Sent[] = [];
  readonly delivered: Sent[] = [];
  consumerFailures = 0;
  readonly lanes: Lane[];
  #writing = true;
  #queueBurstUntil = 0;
  #queuePauseUntil = 0;
  #laneRuns: Array<Promise<void>> = [];
  #consumerLoop: Promise<void> = Promise.resolve();

  constructor(
    readonly clients: Clients,
    readonly dice: Dice,
  ) {
    const { a, b, dup1, dup2, cluster, subscriber } = clients;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === 'soak:events') this.received.push(Number(message));
    });
    this.lanes = [
      new Lane('a zadd', 'standalone', (i) => a.zadd('soak:a', i, String(i))),
      new Lane('a incr', 'standalone', () => a.incr('soak:incr')),
      new Lane('b hset', 'standalone', (i) => b.hset('soak:b', String(i), String(i))),
      new Lane(
        'b publish',
        'standalone',
        (i) => b.publish('soak:events', String(i)),
        (i, reply, start) => {
          if (Number(reply) >= 1) this.published.push({ i, at: start });
        },
        () => 20,
      ),
      new Lane(
        'b rpush (queue)',
        'standalone',
        (i) => b.rpush('soak:queue', String(i)),
        (i, _reply, start) => this.pushed.push({ i, at: start }),
        () => this.#queuePace(),
      ),
      new Lane('duplicate zadd', 'standalone', (i) => dup1.zadd('soak:dup1', i, String(i))),
      new Lane('duplicate of duplicate zadd', 'standalone', (i) => dup2.zadd('soak:dup2', i, String(i))),
      new Lane('cluster zadd 1', 'cluster', (i) => cluster.zadd(clusterKey(1, i), i, String(i))),
      new Lane('cluster zadd 2', 'cluster', (i) => cluster.zadd(clusterKey(2, i), i, String(i))),
    ];
  }

  /** Pushes to the queue come in bursts, then a pause long enough for the consumer to sit blocked across rotations. */
  #queuePace(): number {
    const now = Date.now();
    if (now < this.#queueBurstUntil) return 30;
    if (now < this.#queuePauseUntil) return this.#queuePauseUntil - now;
    this.#queueBurstUntil = now + this.dice.between(1_000, 3_000);
    this.#queuePauseUntil = this.#queueBurstUntil + this.dice.between(2_000, 8_000);
    return 30;
  }

  /** Subscribes, waits until every client answers, then starts the consumer and every lane. */
  async start(): Promise<void> {
    const { a, b, dup1, dup2, consumer, subscriber, cluster } = this.clients;
    await subscriber.subscribe('soak:events');
    await Promise.all([a.ping(), b.ping(), dup1.ping(), dup2.ping(), consumer.ping(), cluster.set('soak:warm', '1')]);
    this.#consumerLoop = this.#consume();
    this.#laneRuns = this.lanes.map((lane) => lane.run(() => this.#writing));
  }

  async #consume(): Promise<void> {
    const { consumer } = this.clients;
    while (this.#writing || consumer.status === 'ready') {
      try {
        // The reliable-queue pattern: the server moves the item into a list of taken items in the same step it
        // takes it from the queue, so an item whose reply is lost with a broken connection is still on record.
        const reply = await consumer.blmove('soak:queue', 'soak:taken', 'LEFT', 'RIGHT', 0);
        if (reply !== null) this.delivered.push({ i: Number(reply), at: Date.now() });
      } catch {
        this.consumerFailures++;
        if (consumer.status === 'end') return;
        await sleep(100);
      }
    }
  }

  /** Stops the lanes (each finishes its write in flight). */
  async stopWriting(): Promise<void> {
    this.#writing = false;
    await Promise.all(this.#laneRuns);
  }

  /** Lets the consumer take what is left in the queue and the subscriber the last messages (10 s at most), then stops the consumer. */
  async drain(servers: Servers): Promise<void> {
    const lastPublished = this.published.at(-1)?.i;
    const drainDeadline = Date.now() + 10_000;
    while (Date.now() < drainDeadline) {
      const queueEmpty = Number(await servers.redis.command('LLEN', 'soak:queue')) === 0;
      const messagesIn = lastPublished === undefined || this.received.includes(lastPublished);
      if (queueEmpty && messagesIn) break;
      await sleep(50);
    }
    this.clients.consumer.disconnect();
    await this.#consumerLoop;
  }

  /** Stops writing without waiting (cleanup after a failure included). */
  halt(): void {
    this.#writing = false;
  }
}
