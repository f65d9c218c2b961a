/**
 * BullMQ on Azure Managed Redis with Entra ID. BullMQ duplicates the connection it is given for its blocking
 * commands; duplicates of a client from createEntraRedis are kept authenticated too, including while they block.
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/bullmq.ts
 */
import { Queue, QueueEvents, Worker } from 'bullmq';
// In your application: from 'ioredis-entraid'
import { createEntraRedis, createManagedIdentityCredentialsProvider } from '../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createManagedIdentityCredentialsProvider(
  process.env.AZURE_CLIENT_ID ? { clientId: process.env.AZURE_CLIENT_ID } : {},
);

// BullMQ requires maxRetriesPerRequest: null on connections used by workers.
const connection = createEntraRedis({
  host,
  port,
  tls: { servername: host },
  credentialsProvider,
  maxRetriesPerRequest: null,
});
connection.on('error', (error: Error) => console.error('redis:', error.message));

const queue = new Queue('emails', { connection });
const events = new QueueEvents('emails', { connection });
const worker = new Worker<{ to: string }>(
  'emails',
  async (job) => {
    console.log(`sending ${job.name} to ${job.data.to}`);
    return { delivered: true };
  },
  { connection, concurrency: 5 },
);
worker.on('failed', (job, error) => console.error(`job ${job?.id} failed:`, error.message));

await events.waitUntilReady();
const job = await queue.add('welcome', { to: 'ada@example.com' });
console.log('result:', await job.waitUntilFinished(events, 30_000));

await worker.close();
await events.close();
await queue.close();
await connection.quit();
credentialsProvider.dispose();
