/**
 * Express sessions in Azure Managed Redis with Entra ID: express-session with connect-redis 8, the last major that
 * takes an ioredis client (connect-redis 9 and later take a node-redis client only).
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/recipes/express-session.ts
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
// In your application: from 'ioredis-entraid'
import { createEntraRedis, createManagedIdentityCredentialsProvider } from '../../lib/index.js';

declare module 'express-session' {
  interface SessionData {
    visits: number;
  }
}

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createManagedIdentityCredentialsProvider(
  process.env.AZURE_CLIENT_ID ? { clientId: process.env.AZURE_CLIENT_ID } : {},
);
const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

const app = express();
app.use(
  session({
    store: new RedisStore({ client: redis, prefix: 'sess:' }),
    secret: process.env.SESSION_SECRET ?? 'replace-me',
    resave: false,
    saveUninitialized: false,
  }),
);
app.get('/', (req, res) => {
  req.session.visits = (req.session.visits ?? 0) + 1;
  res.send(`visits: ${req.session.visits}`);
});
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');

// Two requests of one browser: the second one reads the session the first one stored.
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const first = await fetch(url);
const setCookie = first.headers.get('set-cookie');
if (setCookie === null) throw new Error('the first response set no session cookie');
const cookie = setCookie.split(';')[0] ?? setCookie; // name=value, without the attributes
console.log(await first.text());
console.log(await (await fetch(url, { headers: { cookie } })).text());

server.close();
await redis.quit();
credentialsProvider.dispose();
