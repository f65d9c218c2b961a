/**
 * User-assigned managed identity, selected by its client id (or object id, or ARM resource id).
 *
 * Before running: assign the identity to the App Service / VM / Container App, and add it to the cache
 * (cache > Authentication > Microsoft Entra ID > Managed identity).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net AZURE_CLIENT_ID=<client id of the identity> \
 *     node --import tsx examples/user-assigned-managed-identity.ts
 */
// In your application: from 'ioredis-entraid'
import { createEntraRedis, createManagedIdentityCredentialsProvider } from '../lib/index.js';

const host = process.env.REDIS_HOST;
const clientId = process.env.AZURE_CLIENT_ID;
if (!host || !clientId)
  throw new Error('Set REDIS_HOST and AZURE_CLIENT_ID (the client id of the user-assigned identity)');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createManagedIdentityCredentialsProvider({
  managedIdentityType: 'user-assigned',
  clientId,
  // or: objectId: '<object (principal) id>', or: resourceId: '/subscriptions/.../userAssignedIdentities/<name>'
});
credentialsProvider.on('refreshFailed', ({ error, consecutiveFailures }) => {
  console.warn(`token refresh failed ${consecutiveFailures}x; retrying:`, error);
});

const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

// Duplicates share the provider: same identity, same token, same refresh schedule.
const subscriber = redis.duplicate();
await subscriber.subscribe('example:events');
subscriber.on('message', (channel: string, message: string) => console.log(`${channel}: ${message}`));

await redis.publish('example:events', 'hello from a user-assigned managed identity');
await new Promise((resolve) => setTimeout(resolve, 500));

await subscriber.quit();
await redis.quit();
credentialsProvider.dispose();
