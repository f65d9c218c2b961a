/**
 * System-assigned managed identity: App Service, Azure Functions, Container Apps, virtual machines.
 *
 * Before running: turn on the resource's system-assigned identity, and add it to the cache
 * (cache > Authentication > Microsoft Entra ID > Managed identity).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/system-assigned-managed-identity.ts
 *
 * REDIS_PORT defaults to 10000 (Azure Managed Redis); Azure Cache for Redis listens on 6380.
 */
// In your application: from 'ioredis-entraid'
import { createEntraRedis, createManagedIdentityCredentialsProvider } from '../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

// One provider per identity, shared by every client of the process: one token, one refresh schedule.
const credentialsProvider = createManagedIdentityCredentialsProvider({ managedIdentityType: 'system-assigned' });
credentialsProvider.on('tokenRefreshed', (token) => {
  console.log(`token for oid ${token.oid}, valid until ${new Date(token.expiresOn).toISOString()}`);
});
credentialsProvider.on('refreshFailed', ({ error, consecutiveFailures, validTokenExpiresOn }) => {
  // The provider keeps trying; this is for your logs and alerts.
  console.warn(
    `token refresh failed ${consecutiveFailures}x (current token valid until ${validTokenExpiresOn ? new Date(validTokenExpiresOn).toISOString() : 'none'}):`,
    error,
  );
});

const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

await redis.set('example:greeting', 'hello from a system-assigned managed identity', 'EX', 60);
console.log(await redis.get('example:greeting'));

await redis.quit();
credentialsProvider.dispose();
