/**
 * Azure Managed Redis with the OSS cluster policy: the client talks to every shard itself.
 *
 * The cache answers CLUSTER SLOTS with IP addresses and ports in the 85xx range, which change over time. `natMap`
 * maps each announced address to the cache's host name on the same port, so TLS verifies the host name and private
 * endpoints keep working. (With the Enterprise cluster policy there is one endpoint: use createEntraRedis instead.)
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/cluster.ts
 */
// In your application: from 'ioredis-entraid'
import { createEntraCluster, createManagedIdentityCredentialsProvider } from '../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createManagedIdentityCredentialsProvider(
  process.env.AZURE_CLIENT_ID ? { clientId: process.env.AZURE_CLIENT_ID } : {},
);
credentialsProvider.on('reauthenticationFailed', ({ connection, error, willRetry }) => {
  console.warn(`re-authentication of ${connection} failed${willRetry ? ' (retrying)' : ''}:`, error);
});

const cluster = createEntraCluster([{ host, port }], {
  credentialsProvider,
  // "10.0.0.4:8501" -> { host: '<name>.<region>.redis.azure.net', port: 8501 }
  natMap: (address: string) => ({ host, port: Number(address.slice(address.lastIndexOf(':') + 1)) }),
  // Keep host names as they are: TLS checks the certificate against them.
  dnsLookup: (address, callback) => callback(null, address),
  redisOptions: { tls: { servername: host } },
  slotsRefreshTimeout: 2_000,
});
cluster.on('error', (error: Error) => console.error('cluster:', error.message));

// Keys with the same hash tag live in the same slot, so multi-key commands work on them.
await cluster.mset('{example}:a', '1', '{example}:b', '2');
console.log(await cluster.mget('{example}:a', '{example}:b'));
console.log(`${cluster.nodes('master').length} primaries`);

await cluster.quit();
credentialsProvider.dispose();
