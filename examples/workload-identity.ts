/**
 * AKS workload identity: any @azure/identity credential works through createCredentialsProvider().
 *
 * In the pod, the workload identity webhook sets AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE and
 * AZURE_AUTHORITY_HOST (label the pod `azure.workload.identity/use: "true"` and annotate its service account with
 * `azure.workload.identity/client-id`). Add the identity to the cache (cache > Authentication > Microsoft Entra ID).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/workload-identity.ts
 */
import { WorkloadIdentityCredential } from '@azure/identity';
// In your application: from 'ioredis-entraid'
import { createCredentialsProvider, createEntraRedis } from '../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createCredentialsProvider({
  // Reads the variables the webhook sets. The token manager retries, so the credential's own retries are off.
  credential: new WorkloadIdentityCredential({ retryOptions: { maxRetries: 0 } }),
  tokenManagerOptions: {
    // Refresh once 70 % of a token's life has passed (the default), but never later than 5 minutes before expiry.
    expirationRefreshRatio: 0.7,
    lowerRefreshBounds: 5 * 60_000,
  },
});

const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

console.log(await redis.set('example:pod', process.env.HOSTNAME ?? 'unknown', 'EX', 60));

await redis.quit();
credentialsProvider.dispose();
