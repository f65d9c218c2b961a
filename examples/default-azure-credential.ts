/**
 * DefaultAzureCredential: one program that runs on a developer machine (Azure CLI, Azure Developer CLI or Azure
 * PowerShell sign-in) and in Azure (workload identity, managed identity) without a change.
 *
 * Local development: `az login`, then add your own user to the cache (cache > Authentication > Microsoft Entra ID >
 * User or service principal), then:
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/default-azure-credential.ts
 *
 * createEntraRedis() without a credentialsProvider uses the same chain; an explicit provider lets you pass options
 * and listen to its events.
 */
// In your application: from 'ioredis-entraid'
import { createDefaultAzureCredentialsProvider, createEntraRedis } from '../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createDefaultAzureCredentialsProvider({
  credentialOptions: {
    // In Azure with a user-assigned identity: its client id. Locally this is ignored.
    ...(process.env.AZURE_CLIENT_ID ? { managedIdentityClientId: process.env.AZURE_CLIENT_ID } : {}),
  },
});
credentialsProvider.on('tokenRefreshed', ({ oid, expiresOn }) => {
  console.log(`signed in as oid ${oid} until ${new Date(expiresOn).toISOString()}`);
});

const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

console.log(await redis.ping());

await redis.quit();
credentialsProvider.dispose();
