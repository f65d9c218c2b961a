/**
 * Rate limiting with rate-limiter-flexible's RateLimiterRedis on Azure Managed Redis with Entra ID. Counts stay exact
 * across token rotations, by Lua script (a limiter with a duration) and by MULTI (duration 0, and get()).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/recipes/rate-limiter-flexible.ts
 */
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
// In your application: from 'ioredis-entraid'
import { createEntraRedis, createManagedIdentityCredentialsProvider } from '../../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createManagedIdentityCredentialsProvider(
  process.env.AZURE_CLIENT_ID ? { clientId: process.env.AZURE_CLIENT_ID } : {},
);
const storeClient = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
storeClient.on('error', (error: Error) => console.error('redis:', error.message));

// 3 requests per client per minute.
const limiter = new RateLimiterRedis({ storeClient, keyPrefix: 'login', points: 3, duration: 60 });
const ip = `192.0.2.${Math.floor(Math.random() * 250) + 1}`;

for (let attempt = 1; attempt <= 4; attempt++) {
  try {
    const res = await limiter.consume(ip);
    console.log(`attempt ${attempt}: allowed, ${res.remainingPoints} left`);
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection; // a Redis error, not a rejection
    console.log(`attempt ${attempt}: rejected, retry in ${Math.ceil(rejection.msBeforeNext / 1000)} s`);
  }
}

await limiter.delete(ip);
await storeClient.quit();
credentialsProvider.dispose();
