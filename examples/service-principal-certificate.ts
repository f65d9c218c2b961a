/**
 * Service principal (app registration) with a client certificate: a PEM file holding the certificate and its
 * private key (convert a .pfx with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`).
 *
 * Before running: upload the certificate's public part to the app registration, and add the service principal to
 * the cache (cache > Authentication > Microsoft Entra ID > User or service principal).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net AZURE_TENANT_ID=<tenant> AZURE_CLIENT_ID=<app id> \
 *     AZURE_CLIENT_CERTIFICATE_PATH=/path/to/cert.pem node --import tsx examples/service-principal-certificate.ts
 */
// In your application: from 'ioredis-entraid'
import { createConfidentialCredentialsProvider, createEntraRedis } from '../lib/index.js';

const { REDIS_HOST: host, AZURE_TENANT_ID: tenantId, AZURE_CLIENT_ID: clientId } = process.env;
const certificatePath = process.env.AZURE_CLIENT_CERTIFICATE_PATH;
if (!host || !tenantId || !clientId || !certificatePath) {
  throw new Error('Set REDIS_HOST, AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH');
}
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createConfidentialCredentialsProvider({
  clientId,
  tenantId,
  certificate: {
    certificatePath,
    ...(process.env.AZURE_CLIENT_CERTIFICATE_PASSWORD
      ? { certificatePassword: process.env.AZURE_CLIENT_CERTIFICATE_PASSWORD }
      : {}),
  },
  // Subject name / issuer authentication: send the chain (x5c) with each request.
  sendCertificateChain: process.env.AZURE_CLIENT_SEND_CERTIFICATE_CHAIN === 'true',
});

const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

await redis.hset('example:user:42', { name: 'Ada', plan: 'pro' });
console.log(await redis.hgetall('example:user:42'));

await redis.quit();
credentialsProvider.dispose();
