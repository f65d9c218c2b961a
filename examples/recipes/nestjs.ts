/**
 * NestJS with @nestjs-modules/ioredis and @nestjs/bullmq on Azure Managed Redis with Entra ID. One credentials
 * provider for the application; the Redis connection and BullMQ's connection come from createEntraRedis.
 *
 * @nestjs-modules/ioredis builds its clients with `new Redis(options)`, which knows nothing of Entra ID: do not call
 * its RedisModule.forRoot(); provide its connection token with a client from createEntraRedis instead, and
 * @InjectRedis() hands that client to your services.
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/recipes/nestjs.ts
 *
 * (Nest's decorators need `"experimentalDecorators": true` in tsconfig.json.)
 */
import 'reflect-metadata';
import { getRedisConnectionToken, InjectRedis } from '@nestjs-modules/ioredis';
import { BullModule, InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Global, Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
// In your application: from 'ioredis-entraid'
import {
  createEntraRedis,
  createManagedIdentityCredentialsProvider,
  type EntraCredentialsProvider,
} from '../../lib/index.js';

const ENTRA_CREDENTIALS = Symbol('ENTRA_CREDENTIALS');
const BULL_CONNECTION = Symbol('BULL_CONNECTION');

function redisHost(): { host: string; port: number } {
  const host = process.env.REDIS_HOST;
  if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
  return { host, port: Number(process.env.REDIS_PORT ?? 10000) };
}

/** Closes the connections, then the provider, when the application shuts down (after BullMQ's workers). */
@Injectable()
class RedisShutdown implements OnApplicationShutdown {
  constructor(
    @InjectRedis() private readonly redis: Redis,
    @Inject(BULL_CONNECTION) private readonly bullConnection: Redis,
    @Inject(ENTRA_CREDENTIALS) private readonly credentials: EntraCredentialsProvider,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.redis.quit(), this.bullConnection.quit()]);
    this.credentials.dispose();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: ENTRA_CREDENTIALS,
      useFactory: () =>
        createManagedIdentityCredentialsProvider(
          process.env.AZURE_CLIENT_ID ? { clientId: process.env.AZURE_CLIENT_ID } : {},
        ),
    },
    {
      // What @InjectRedis() injects: the client @nestjs-modules/ioredis would have built, made by createEntraRedis.
      provide: getRedisConnectionToken(),
      inject: [ENTRA_CREDENTIALS],
      useFactory: (credentialsProvider: EntraCredentialsProvider) => {
        const { host, port } = redisHost();
        return createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
      },
    },
    {
      // BullMQ's workers need maxRetriesPerRequest: null; BullMQ duplicates this client for its blocking commands.
      provide: BULL_CONNECTION,
      inject: [ENTRA_CREDENTIALS],
      useFactory: (credentialsProvider: EntraCredentialsProvider) => {
        const { host, port } = redisHost();
        return createEntraRedis({
          host,
          port,
          tls: { servername: host },
          credentialsProvider,
          maxRetriesPerRequest: null,
        });
      },
    },
    RedisShutdown,
  ],
  exports: [ENTRA_CREDENTIALS, getRedisConnectionToken(), BULL_CONNECTION],
})
class EntraRedisModule {}

@Injectable()
class GreetingService {
  constructor(
    @InjectRedis() private readonly redis: Redis,
    @InjectQueue('emails') private readonly emails: Queue,
  ) {}

  async greet(name: string): Promise<string> {
    const count = await this.redis.incr(`greetings:${name}`);
    await this.emails.add('welcome', { to: name });
    return `hello ${name} (${count})`;
  }
}

@Processor('emails')
class EmailProcessor extends WorkerHost {
  readonly sent: Array<(to: string) => void> = [];

  async process(job: Job<{ to: string }>): Promise<void> {
    console.log(`email to ${job.data.to}`);
    for (const listener of this.sent.splice(0)) listener(job.data.to);
  }
}

@Module({
  imports: [
    EntraRedisModule,
    BullModule.forRootAsync({
      inject: [BULL_CONNECTION],
      useFactory: (connection: Redis) => ({ connection }),
    }),
    BullModule.registerQueue({ name: 'emails' }),
  ],
  providers: [GreetingService, EmailProcessor],
})
class AppModule {}

// Nest declares these options as a class of optional fields and takes them as a plain object, as its docs do.
// eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
app.enableShutdownHooks();
const processor = app.get(EmailProcessor);
const delivered = new Promise<string>((resolve) => processor.sent.push(resolve));
console.log(await app.get(GreetingService).greet('ada'));
await delivered;
await app.close();
