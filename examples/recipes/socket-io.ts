/**
 * socket.io on several servers, through @socket.io/redis-adapter, on Azure Managed Redis with Entra ID. The adapter
 * publishes on the client it is given and subscribes on its duplicate: both stay authenticated across token
 * rotations. Prefer RESP3 (ioredis 6's default): on RESP2 a rotation can make a fetchSockets() time out.
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/recipes/socket-io.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
// In your application: from 'ioredis-entraid'
import { createEntraRedis, createManagedIdentityCredentialsProvider } from '../../lib/index.js';

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);

const credentialsProvider = createManagedIdentityCredentialsProvider(
  process.env.AZURE_CLIENT_ID ? { clientId: process.env.AZURE_CLIENT_ID } : {},
);
const pubClient = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
const subClient = pubClient.duplicate();
for (const client of [pubClient, subClient])
  client.on('error', (error: Error) => console.error('redis:', error.message));

const httpServer = createServer();
const io = new Server(httpServer, { adapter: createAdapter(pubClient, subClient) });
io.on('connection', (socket) => {
  void socket.join('news');
});
await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));

// A browser would do this; here a client in the same process.
const socket = connect(`http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`, { transports: ['websocket'] });
const received = new Promise<string>((resolve) => socket.on('headline', resolve));
await new Promise<void>((resolve) => socket.on('connect', resolve));

io.to('news').emit('headline', 'tokens rotate, sockets stay');
console.log('received:', await received);
console.log('sockets across all servers:', (await io.fetchSockets()).length);

socket.disconnect();
await new Promise<void>((resolve) => {
  void io.close(() => resolve());
});
await Promise.all([pubClient.quit(), subClient.quit()]);
credentialsProvider.dispose();
