/**
 * Service principal (app registration) with a client secret: for workloads outside Azure, or CI.
 * Prefer a managed identity or workload identity inside Azure, and a certificate over a secret elsewhere.
 *
 * Before running: add the service principal to the cache (cache > Authentication > Microsoft Entra ID > User or
 * service principal).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net AZURE_TENANT_ID=<tenant> AZURE_CLIENT_ID=<app id> \
 *     AZURE_CLIENT_SECRET=<secret> node --import tsx examples/service-principal-secret.ts
 */
// In your application: from 'ioredis-entraid'
import { createConfidentialCredentialsProvider, createEntraRedis } from '../lib/index.js';

const {
  REDIS_HOST: host,
  AZURE_TENANT_ID: tenantId,
  AZURE_CLIENT_ID: clientId,
  AZURE_CLIENT_SECRET: clientSecret,
} = process.env;
if (!host || !tenantId || !clientId || !clientSecret) {
  throw new Error('Set REDIS_HOST, AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET');
}
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createConfidentialCredentialsProvider({
  clientId,
  clientSecret,
  authority: { authorityType: 'default', tenantId },
  // Sovereign cloud: authority: { authorityType: 'custom', authority: 'https://login.microsoftonline.us/<tenant>' }
});

const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

console.log(await redis.incr('example:counter'));

await redis.quit();
credentialsProvider.dispose();
