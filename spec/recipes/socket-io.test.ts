// ioredis majors: 5, 6
// @socket.io/redis-adapter over Entra ID clients, across token rotations: two socket.io servers share one adapter
// channel set through the AMR emulator; every broadcast (to all, and to a room) must reach every client exactly once,
// and fetchSockets() must answer with every socket. On RESP2 (ioredis 5, or ioredis 6 with `protocol: 2`) the
// subscriber is handed over to a new connection at each rotation, and for a few milliseconds PUBSUB NUMSUB /
// SHARDNUMSUB count it twice: the adapter then waits for an answer that never comes and fetchSockets() times out.
// docs/recipes/socket-io.md promises fetchSockets() on RESP3 only; on RESP2 its failures are measured and reported.
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Redis, RedisOptions } from 'ioredis';
import { Server } from 'socket.io';
import { io as connectClient, type Socket as ClientSocket } from 'socket.io-client';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';
import { must } from '../support/must.js';

let world: World;
// 6 s tokens refreshed at 30 % of their life: a rotation every 1.8 s, each with 3 s before the old token's re-AUTH
// deadline, so that a busy machine's scheduling delays do not decide whether a connection is re-authenticated in time.
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 6 });
});
after(async () => {
  await world.stop();
});

const major = process.env.IOREDIS_MAJOR ?? '5';
const protocols: Array<2 | 3> = major === '6' ? [2, 3] : [2];
const kinds = ['classic', 'sharded'] as const;
type Kind = (typeof kinds)[number];

const SERVERS = 2;
const CLIENTS_PER_SERVER = 2;
const ROTATIONS = 3;
const REQUESTS_TIMEOUT_MS = 2_000;

interface Node {
  io: Server;
  http: HttpServer;
  url: string;
  redis: Redis[];
}
interface Client {
  socket: ClientSocket;
  all: number[];
  room: number[];
  member: boolean;
}

async function startNode(
  kind: Kind,
  protocol: 2 | 3,
  credentialsProvider: ReturnType<World['provider']>,
  name: string,
): Promise<Node> {
  const pub = world.track(
    createEntraRedis({
      ...world.endpoint,
      credentialsProvider,
      ...(major === '6' ? { protocol } : {}),
    } as RedisOptions),
  );
  const sub = world.track(pub.duplicate());
  const adapter =
    kind === 'classic'
      ? createAdapter(pub, sub, { key: name, requestsTimeout: REQUESTS_TIMEOUT_MS })
      : createShardedAdapter(pub, sub, { channelPrefix: name, subscriptionMode: 'dynamic' });
  const http = createServer();
  const io = new Server(http, { adapter });
  io.on('connection', (socket) => {
    if (socket.handshake.query.member === 'yes') void socket.join('members');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return { io, http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, redis: [pub, sub] };
}

function connect(url: string, member: boolean): Client {
  const socket = connectClient(url, {
    transports: ['websocket'],
    query: { member: member ? 'yes' : 'no' },
    reconnection: false,
  });
  const client: Client = { socket, all: [], room: [], member };
  socket.on('all', (n: number) => client.all.push(n));
  socket.on('room', (n: number) => client.room.push(n));
  return client;
}

function assertExactlyOnce(received: number[], sent: number, what: string): void {
  const unique = new Set(received);
  assert.equal(unique.size, sent, `${what}: ${sent - unique.size} of ${sent} lost`);
  assert.equal(received.length, unique.size, `${what}: ${received.length - unique.size} duplicates`);
}

async function run(t: TestContext, kind: Kind, protocol: 2 | 3): Promise<void> {
  const provider = world.provider({ tokenManagerOptions: { expirationRefreshRatio: 0.3 } });
  const name = `sio-${kind}-${protocol}`;
  const nodes: Node[] = [];
  const clients: Client[] = [];
  try {
    for (let i = 0; i < SERVERS; i++) nodes.push(await startNode(kind, protocol, provider, name));
    for (const node of nodes) for (let i = 0; i < CLIENTS_PER_SERVER; i++) clients.push(connect(node.url, i % 2 === 0));
    await waitUntil(() => clients.every((c) => c.socket.connected), {
      timeoutMs: 10_000,
      description: 'clients connected',
    });
    const total = clients.length;
    // The adapters subscribe in the background: ready once each server sees every socket.
    for (const node of nodes) {
      await waitUntil(async () => (await node.io.fetchSockets()).length === total, {
        timeoutMs: 10_000,
        description: 'adapters subscribed',
      });
    }

    const handovers = { count: 0 };
    provider.on('reauthenticated', (event) => {
      if (event.method === 'handover') handovers.count++;
    });
    const rotations = countEvents(provider, 'tokenRefreshed');
    const expiryDisconnects = world.amr.counters.expiryDisconnects;
    let running = true as boolean; // cleared by the test while the loop runs
    let sentAll = 0;
    let sentRoom = 0;
    const broadcasting = (async () => {
      while (running) {
        const node = must(nodes[sentAll % SERVERS], 'a socket.io node');
        node.io.emit('all', sentAll++);
        if (sentAll % 3 === 0) node.io.to('members').emit('room', sentRoom++);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const fetches = { ok: 0, wrongCount: [] as number[], failed: [] as string[] };
    const fetching = (async () => {
      for (let i = 0; running; i++) {
        try {
          // (the sharded adapter takes its timeout from the call, the classic one from requestsTimeout)
          const sockets = await must(nodes[i % SERVERS], 'a socket.io node')
            .io.timeout(REQUESTS_TIMEOUT_MS)
            .fetchSockets();
          if (sockets.length === total) fetches.ok++;
          else fetches.wrongCount.push(sockets.length);
        } catch (error) {
          fetches.failed.push((error as Error).message);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await waitUntil(() => rotations.count >= ROTATIONS, { timeoutMs: 30_000, description: `${ROTATIONS} rotations` });
    running = false;
    await Promise.all([broadcasting, fetching]);
    const members = clients.filter((c) => c.member);
    await waitUntil(
      () => clients.every((c) => c.all.length >= sentAll) && members.every((c) => c.room.length >= sentRoom),
      { timeoutMs: 5_000, description: 'the last broadcasts' },
    ).catch(() => {});
    t.diagnostic(
      `${kind} RESP${protocol}: ${sentAll} broadcasts, ${sentRoom} to the room, ${handovers.count} subscriber handovers, ` +
        `fetchSockets ${fetches.ok} ok, ${fetches.failed.length} failed, ${fetches.wrongCount.length} short`,
    );

    clients.forEach((c, i) => assertExactlyOnce(c.all, sentAll, `client ${i}, broadcast to all`));
    for (const [i, c] of members.entries()) assertExactlyOnce(c.room, sentRoom, `member ${i}, broadcast to the room`);
    for (const c of clients.filter((c) => !c.member))
      assert.deepEqual(c.room, [], 'a socket outside the room got nothing of it');
    assert.ok(sentAll > 50, `broadcasts: ${sentAll}`);
    assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects, 'no connection closed at token expiry');
    assert.deepEqual(fetches.wrongCount, [], 'fetchSockets() never answered with some sockets missing');
    if (protocol === 3) {
      assert.equal(handovers.count, 0, 'RESP3 subscribers are re-authenticated in place');
      assert.deepEqual(fetches.failed, [], 'fetchSockets() answered every time');
      assert.ok(fetches.ok > 20, `fetchSockets answered: ${fetches.ok}`);
    } else {
      assert.ok(handovers.count >= SERVERS, `subscribers handed over: ${handovers.count}`);
      // Only the adapter's own timeout may fail a fetchSockets() (the handover's second subscriber was counted).
      for (const message of fetches.failed) assert.match(message, /timeout reached/);
    }
  } finally {
    for (const c of clients) c.socket.disconnect();
    // As an application shuts down: socket.io first (the adapter unsubscribes), then its Redis clients.
    for (const node of nodes)
      await new Promise<void>((resolve) => {
        void node.io.close(() => resolve());
      });
    for (const node of nodes) await Promise.all(node.redis.map((r) => r.quit()));
  }
}

describe('socket.io Redis adapter across rotations', { concurrency: true }, () => {
  for (const protocol of protocols) {
    for (const kind of kinds) {
      it(`${kind} adapter, RESP${protocol}: every broadcast reaches every client once${protocol === 3 ? ', fetchSockets() always answers' : ''}`, (t) =>
        run(t, kind, protocol));
    }
  }
});
