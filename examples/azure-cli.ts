/**
 * Azure CLI sign-in, for local development and scripts run by a person: `az login` first, and add your user to the
 * cache (cache > Authentication > Microsoft Entra ID > User or service principal).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/azure-cli.ts
 *
 * The user's token lives about an hour; the provider refreshes it by running `az account get-access-token` again.
 */
import { AzureCliCredential } from '@azure/identity';
// In your application: from 'ioredis-entraid'
import { createCredentialsProvider, createEntraRedis } from '../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createCredentialsProvider({
  credential: new AzureCliCredential(process.env.AZURE_TENANT_ID ? { tenantId: process.env.AZURE_TENANT_ID } : {}),
});

const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

const token = await credentialsProvider.getToken();
const user = token.claims.upn ?? token.claims.unique_name;
console.log(`AUTH as oid ${token.oid} (${typeof user === 'string' ? user : 'user'})`);
console.log(await redis.dbsize(), 'keys');

await redis.quit();
credentialsProvider.dispose();
