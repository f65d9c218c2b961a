// ioredis majors: 5 (what this file tests does not depend on the ioredis major; the client files run on both)
/**
 * The AMR emulator is real: plain ioredis clients (5 and 6, no library code) against redis-server behind the emulator
 * see what they would see on Azure Managed Redis with Entra ID tokens.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Cluster as Cluster5, Redis as Redis5, type ClusterOptions, type RedisOptions } from 'ioredis';
import {
  Cluster as Cluster6,
  Redis as Redis6,
  type ClusterOptions as ClusterOptions6,
  type RedisOptions as RedisOptions6,
} from 'ioredis6';
import { AmrEmulator, startAmrCluster, AMR_AUDIENCE, type AmrCluster } from '../../lib/testing/amr-emulator.js';
import { selfSignedCertificate } from '../../lib/testing/certs.js';
import { createSigningKey, signJwt, type SigningKey } from '../../lib/testing/jwt.js';
import {
  startRedisCluster,
  startRedisServer,
  waitUntil,
  type RedisClusterHandle,
  type RedisServerHandle,
} from '../../lib/testing/redis-server.js';
import { stopStarted } from '../support/stop-started.js';

// ---------------------------------------------------------------------------------------------------------------------
// Both ioredis majors, behind one small interface (their public APIs used here are the same).

interface Flavor {
  name: string;
  /** The RESP version the client speaks by default. */
  resp: 2 | 3;
  redis(options: RedisOptions & { protocol?: 2 | 3 }): Redis5;
  cluster(startupNodes: { host: string; port: number }[], options: ClusterOptions): Cluster5;
}

const flavors: Flavor[] = [
  {
    name: 'ioredis 5',
    resp: 2,
    redis: ({ protocol: _protocol, ...options }) => new Redis5(options),
    cluster: (nodes, options) => new Cluster5(nodes, options),
  },
  {
    name: 'ioredis 6',
    resp: 3,
    redis: (options) => new Redis6(options as RedisOptions6) as unknown as Redis5,
    cluster: (nodes, options) => new Cluster6(nodes, options as ClusterOptions6) as unknown as Cluster5,
  },
];

// ---------------------------------------------------------------------------------------------------------------------
// Shared fixtures.

const signingKey = createSigningKey();
const otherKey = createSigningKey();
const certificate = selfSignedCertificate();
let server: RedisServerHandle;
let cluster: RedisClusterHandle;

interface TokenOptions {
  oid: string;
  /** Seconds from now, at least (exp is a whole second, rounded up); negative for an expired token. */
  lifetime?: number;
  audience?: string;
  key?: SigningKey;
}

function token({ oid, lifetime = 4, audience = AMR_AUDIENCE, key = signingKey }: TokenOptions): string {
  const now = Date.now();
  return signJwt(
    {
      oid,
      tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      aud: audience,
      iat: Math.floor(now / 1000),
      exp: Math.ceil(now / 1000 + lifetime),
    },
    key,
  );
}

async function emulator(t: TestContext, options: { tls?: boolean } = {}): Promise<AmrEmulator> {
  const emu = await AmrEmulator.start({
    backend: { host: server.host, port: server.port },
    publicKey: signingKey.publicKey,
    admin: server.admin,
    ...(options.tls ? { tls: { key: certificate.key, cert: certificate.cert } } : {}),
  });
  t.after(() => emu.stop());
  return emu;
}

/** A client that does not reconnect (so `end` marks the end of its only connection), closed after the test. */
function client(t: TestContext, flavor: Flavor, options: RedisOptions & { protocol?: 2 | 3 }): Redis5 {
  const redis = flavor.redis({ retryStrategy: () => null, maxRetriesPerRequest: 0, ...options });
  redis.on('error', () => {
    // Asserted where expected; silences ioredis' "Unhandled error event" output.
  });
  // (ioredis' disconnect() on an already closed connection arms a 2 s timer that keeps the process alive.)
  t.after(() => {
    if (redis.status !== 'end') redis.disconnect();
  });
  return redis;
}

/** A client of `emu` authenticated as `oid` with a token of `lifetime` seconds. */
function authenticated(
  t: TestContext,
  flavor: Flavor,
  emu: AmrEmulator,
  oid: string,
  lifetime = 30,
  options: RedisOptions & { protocol?: 2 | 3 } = {},
): Redis5 {
  const credentials = { username: oid, password: token({ oid, lifetime }) };
  return client(t, flavor, { host: emu.host, port: emu.port, ...credentials, ...options });
}

const WRONGPASS = { message: /^WRONGPASS invalid username-password pair/ };

// ---------------------------------------------------------------------------------------------------------------------

/** End offset of the RESP2 reply starting at `pos` in `text`, or -1 when it is not complete yet. */
function replyEnd(text: string, pos: number): number {
  const lineEnd = text.indexOf('\r\n', pos);
  if (lineEnd === -1) return -1;
  const type = text[pos];
  const value = Number(text.slice(pos + 1, lineEnd));
  if (type === '$') {
    if (value < 0) return lineEnd + 2;
    const end = lineEnd + 2 + value + 2;
    return text.length >= end ? end : -1;
  }
  if (type === '*') {
    let cursor = lineEnd + 2;
    for (let index = 0; index < value; index += 1) {
      cursor = replyEnd(text, cursor);
      if (cursor === -1) return -1;
    }
    return cursor;
  }
  return lineEnd + 2;
}

/** A raw socket to the emulator that reads whole RESP2 replies, for what ioredis would not send. */
async function rawConnection(t: TestContext, emu: AmrEmulator) {
  const socket = net.connect({ host: emu.host, port: emu.port });
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  let buffered = '';
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    socket.emit('buffered');
  });
  const resp = (...args: string[]) =>
    `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
  return {
    socket,
    resp,
    send: (...commands: string[][]) => socket.write(commands.map((args) => resp(...args)).join('')),
    /** The next `count` replies, as raw text. */
    async replies(count: number): Promise<string[]> {
      for (;;) {
        const result: string[] = [];
        let cursor = 0;
        while (result.length < count) {
          const end = replyEnd(buffered, cursor);
          if (end === -1) break;
          result.push(buffered.slice(cursor, end));
          cursor = end;
        }
        if (result.length === count) {
          buffered = buffered.slice(cursor);
          return result;
        }
        await once(socket, 'buffered');
      }
    },
  };
}

// Everything runs concurrently: each test has its own emulator(s), oid and keys; the expiry tests wait seconds.
describe('AMR emulator', { concurrency: true, timeout: 120_000 }, () => {
  before(async () => {
    [server, cluster] = await Promise.all([startRedisServer(), startRedisCluster({ masters: 3 })]);
  });

  after(async () => {
    await Promise.all([stopStarted(server), stopStarted(cluster)]);
  });

  for (const flavor of flavors) {
    describe(`with ${flavor.name}`, { concurrency: true }, () => {
      it('lets a plain client in with its oid and token, and disconnects it when the static token expires', async (t) => {
        const emu = await emulator(t);
        const oid = randomUUID();
        const redis = client(t, flavor, { host: emu.host, port: emu.port, username: oid, password: token({ oid }) });
        const key = `emu:${randomUUID()}`;
        assert.equal(await redis.set(key, 'value'), 'OK');
        assert.equal(await redis.get(key), 'value');
        const [connection] = emu.connections();
        assert.equal(connection?.oid, oid);
        assert.equal(connection.protocol, flavor.resp);
        assert.ok((connection.expiresAt ?? 0) > Date.now());
        assert.equal(emu.counters.authOk, 1);
        // The backend sees the oid's ACL user, never the token.
        assert.match(String(await server.command('ACL', 'LIST')), new RegExp(`user ${oid} on`));

        await once(redis, 'end');
        await emu.waitForOpen(0);
        assert.equal(emu.counters.expiryDisconnects, 1);
        assert.equal(emu.counters.accepted, 1);
      });

      it('keeps a connection alive past the first token when it re-AUTHs with a fresh one', async (t) => {
        const emu = await emulator(t);
        const oid = randomUUID();
        const first = token({ oid, lifetime: 4 });
        const options = { host: emu.host, port: emu.port, username: oid, password: first };
        const renewed = client(t, flavor, { ...options, connectionName: 'renewed' });
        const witness = client(t, flavor, { ...options, connectionName: 'witness' });
        await Promise.all([renewed.ping(), witness.ping()]);
        const firstExpiry = emu.connections()[0]?.expiresAt ?? 0;

        assert.equal(await renewed.auth(oid, token({ oid, lifetime: 5 })), 'OK');
        const renewedInfo = emu.connections().find((connection) => connection.name === 'renewed');
        assert.ok((renewedInfo?.expiresAt ?? 0) > firstExpiry);

        // The witness still runs on the first token: once it is gone, the first token has expired.
        await once(witness, 'end');
        await emu.waitForCounter('expiryDisconnects', 1);
        assert.ok(Date.now() >= firstExpiry);
        assert.equal(await renewed.ping(), 'PONG');
        await emu.waitForOpen(1);

        // And the renewed connection goes when its second token expires.
        await once(renewed, 'end');
        await emu.waitForCounter('expiryDisconnects', 2);
      });

      it('answers WRONGPASS for bad tokens and keeps the previous authentication', async (t) => {
        const emu = await emulator(t);
        const oid = randomUUID();
        const redis = authenticated(t, flavor, emu, oid);
        await redis.ping();
        const deadline = emu.connections()[0]?.expiresAt;
        const cases: [string, () => Promise<unknown>][] = [
          ['wrong signature', () => redis.auth(oid, token({ oid, key: otherKey }))],
          ['expired token', () => redis.auth(oid, token({ oid, lifetime: -10 }))],
          ['wrong audience', () => redis.auth(oid, token({ oid, audience: 'https://storage.azure.com' }))],
          ['username is not the oid', () => redis.auth(randomUUID(), token({ oid }))],
          ['client id as username', () => redis.auth('04b07795-8ddb-461a-bbee-02f9e1bf7b46', token({ oid }))],
          ['not a JWT', () => redis.auth(oid, 'not-a-token')],
          ['one-argument AUTH', () => redis.auth(token({ oid }))],
        ];
        for (const [label, attempt] of cases) {
          await assert.rejects(attempt(), WRONGPASS, label);
        }
        assert.equal(emu.counters.authFailed, cases.length);
        assert.equal(emu.counters.authOk, 1);
        // Still authenticated as before, with the old deadline.
        assert.equal(await redis.ping(), 'PONG');
        assert.equal(emu.connections()[0]?.expiresAt, deadline);
      });

      it('refuses a connection whose handshake carries an expired token', async (t) => {
        const emu = await emulator(t);
        const oid = randomUUID();
        const redis = client(t, flavor, {
          host: emu.host,
          port: emu.port,
          username: oid,
          password: token({ oid, lifetime: -60 }),
          lazyConnect: true,
        });
        const [error] = await Promise.all([once(redis, 'error'), redis.connect().catch(() => undefined)]);
        assert.match((error[0] as Error).message, WRONGPASS.message);
        assert.equal(emu.counters.authFailed, 1);
      });

      it('answers a pipelined AUTH in order with the other replies', async (t) => {
        const emu = await emulator(t);
        const oid = randomUUID();
        const redis = authenticated(t, flavor, emu, oid);
        const key = `emu:${randomUUID()}`;
        const results = await redis
          .pipeline()
          .set(key, 'before')
          .auth(oid, token({ oid, key: otherKey }))
          .get(key)
          .auth(oid, token({ oid, lifetime: 60 })) // good: waits for the backend ACL user, must not overtake
          .append(key, '+after')
          .get(key)
          .exec();
        assert.ok(results);
        const errors = results.map(([error]) => error?.message.split(' ')[0] ?? null);
        assert.deepEqual(errors, [null, 'WRONGPASS', null, null, null, null]);
        assert.deepEqual(
          results.map(([, value]) => value),
          ['OK', undefined, 'before', 'OK', 12, 'before+after'],
        );
      });

      it('answers NOAUTH to a client that does not authenticate', async (t) => {
        const emu = await emulator(t);
        // Without the ready check (ioredis 5) and in RESP2 (ioredis 6: else HELLO is refused first), GET gets through.
        const plain = client(t, flavor, { host: emu.host, port: emu.port, enableReadyCheck: false, protocol: 2 });
        await assert.rejects(plain.get('anything'), { message: /^NOAUTH Authentication required/ });
        // With default options the handshake itself is refused.
        const defaults = client(t, flavor, { host: emu.host, port: emu.port });
        const [error] = (await once(defaults, 'error')) as [Error];
        assert.match(error.message, /^NOAUTH/);
        assert.equal(emu.counters.authOk, 0);
      });

      it('accepts HELLO <version> AUTH <oid> <token> [SETNAME], and refuses it with a bad token', async (t) => {
        const emu = await emulator(t);
        const oid = randomUUID();
        if (flavor.resp === 3) {
          // ioredis 6 authenticates with HELLO 3 AUTH in its handshake.
          const redis = authenticated(t, flavor, emu, oid);
          assert.equal(await redis.ping(), 'PONG');
          assert.equal(emu.connections()[0]?.protocol, 3);
          assert.equal(emu.counters.authOk, 1);
        }
        // HELLO 2 AUTH ... SETNAME sent by hand (ioredis 5 cannot read RESP3 replies).
        const manual = client(t, flavor, {
          host: emu.host,
          port: emu.port,
          username: oid,
          password: token({ oid, lifetime: 30 }),
          protocol: 2,
        });
        await manual.ping();
        const port = (manual as unknown as { stream: net.Socket }).stream.localPort;
        const fresh = token({ oid, lifetime: 40 });
        const hello = (await manual.call('HELLO', '2', 'AUTH', oid, fresh, 'SETNAME', 'by-hello')) as unknown[];
        assert.ok(hello.includes('redis') || hello.includes('server'));
        const info = emu.connections().find((connection) => connection.remotePort === port);
        assert.equal(info?.name, 'by-hello');
        assert.equal(info.authCount, 2);
        const foreign = token({ oid, audience: 'api://other' });
        await assert.rejects(manual.call('HELLO', '2', 'AUTH', oid, foreign), WRONGPASS);
        assert.equal(emu.counters.authFailed, 1);
      });

      it('terminates TLS like AMR on port 10000', async (t) => {
        const emu = await emulator(t, { tls: true });
        assert.equal(emu.tls, true);
        const oid = randomUUID();
        const redis = authenticated(t, flavor, emu, oid, 30, { tls: { ca: certificate.cert } });
        const key = `emu:${randomUUID()}`;
        assert.equal(await redis.set(key, 'secure'), 'OK');
        assert.equal(await redis.get(key), 'secure');
        assert.equal(emu.counters.authOk, 1);
        // A client that does not trust the certificate does not get in.
        const untrusting = authenticated(t, flavor, emu, oid, 30, { tls: {} });
        const [error] = (await once(untrusting, 'error')) as [Error];
        assert.match(error.message, /self.signed|certificate/i);
      });

      it('closes a connection blocked in BLPOP 0 when its token expires, on both sides of the proxy', async (t) => {
        const emu = await emulator(t);
        const oid = randomUUID();
        const redis = client(t, flavor, { host: emu.host, port: emu.port, username: oid, password: token({ oid }) });
        const blocked = redis.blpop(`emu:${randomUUID()}`, 0);
        const ended = once(redis, 'end');
        const onServer = async () =>
          String(await server.command('CLIENT', 'LIST'))
            .split('\n')
            .filter((line) => line.includes(`user=${oid} `));
        await waitUntil(async () => (await onServer()).some((line) => line.includes('cmd=blpop')), {
          description: 'the connection blocked in BLPOP on the server',
        });
        await assert.rejects(blocked, { message: /Connection is closed/ }); // a FIN, no error reply
        await ended;
        assert.equal(emu.counters.expiryDisconnects, 1);
        // The proxy closed its backend connection too: the server no longer has the blocked client.
        await waitUntil(async () => (await onServer()).length === 0, { description: 'the blocked connection to go' });
      });

      it('reaches all 3 cluster masters through the proxies with natMap', async (t) => {
        const amr = await startAmrCluster(cluster, { publicKey: signingKey.publicKey });
        t.after(() => amr.stop());
        const oid = randomUUID();
        const redis = flavor.cluster(amr.startupNodes(), {
          natMap: amr.natMap,
          redisOptions: { username: oid, password: token({ oid, lifetime: 60 }) },
          clusterRetryStrategy: () => null,
          slotsRefreshTimeout: 10_000,
        });
        redis.on('error', () => undefined);
        t.after(() => redis.disconnect());
        const prefix = `emu:${randomUUID()}`;
        const keys = Array.from({ length: 30 }, (_, index) => `${prefix}:${index}`);
        for (const key of keys) assert.equal(await redis.set(key, key), 'OK');
        for (const key of keys) assert.equal(await redis.get(key), key);

        const proxyPorts = new Set(amr.emulators.map((emu) => emu.port));
        const masters = redis.nodes('master');
        assert.equal(masters.length, 3);
        for (const master of masters) {
          assert.ok(proxyPorts.has(Number(master.options.port)), 'every master through a proxy');
          assert.equal(await master.ping(), 'PONG');
        }
        for (const emu of amr.emulators) {
          assert.ok(
            emu.connections().some((connection) => connection.oid === oid),
            `proxy ${emu.port} authenticated`,
          );
        }
        assert.equal(amr.total('authFailed'), 0);
      });
    });
  }

  describe('in front of a cluster', { concurrency: true }, () => {
    let amr: AmrCluster;
    before(async () => {
      amr = await startAmrCluster(cluster, { publicKey: signingKey.publicKey });
    });
    after(async () => {
      await stopStarted(amr);
    });

    it('leaves CLUSTER SLOTS, CLUSTER NODES and MOVED with the real node addresses (natMap translates)', async (t) => {
      const oid = randomUUID();
      const first = amr.emulators[0] as AmrEmulator;
      const redis = authenticated(t, flavors[0] as Flavor, first, oid);
      const realPorts = new Set(cluster.nodes.map((node) => node.port));
      const slots = (await redis.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
      assert.deepEqual(new Set(slots.map(([, , [, port]]) => port)), realPorts);
      const nodes = String(await redis.call('CLUSTER', 'NODES'));
      for (const node of cluster.nodes) assert.ok(nodes.includes(`127.0.0.1:${node.port}@${node.busPort}`));
      for (const key of Object.keys(amr.natMap)) assert.ok(realPorts.has(Number(key.split(':')[1])));

      // A key served by another master: MOVED names that master's real address.
      const [, lastOfFirst] = (cluster.nodes[0] as { slots: readonly [number, number] }).slots;
      let key = '';
      for (let index = 0; !key; index += 1) {
        const candidate = `emu:moved:${index}`;
        if (Number(await redis.call('CLUSTER', 'KEYSLOT', candidate)) > lastOfFirst) key = candidate;
      }
      await assert.rejects(redis.get(key), (error: Error) => {
        const match = /^MOVED \d+ 127\.0\.0\.1:(\d+)$/.exec(error.message);
        assert.ok(match, error.message);
        assert.ok(realPorts.has(Number(match[1])));
        return true;
      });
    });

    it('works through TLS proxies too', async (t) => {
      const tlsAmr = await startAmrCluster(cluster, { publicKey: signingKey.publicKey, tls: certificate });
      t.after(() => tlsAmr.stop());
      const oid = randomUUID();
      const redis = new Cluster5(tlsAmr.startupNodes(), {
        natMap: tlsAmr.natMap,
        redisOptions: { username: oid, password: token({ oid, lifetime: 60 }), tls: { ca: certificate.cert } },
        clusterRetryStrategy: () => null,
        slotsRefreshTimeout: 10_000,
      });
      redis.on('error', () => undefined);
      t.after(() => redis.disconnect());
      const prefix = `emu:${randomUUID()}`;
      for (let index = 0; index < 10; index += 1) assert.equal(await redis.set(`${prefix}:${index}`, 'v'), 'OK');
      for (const master of redis.nodes('master')) assert.equal(await master.ping(), 'PONG');
      await tlsAmr.waitForTotal('authOk', 3);
      for (const emu of tlsAmr.emulators) {
        const authenticatedHere = emu.connections().some((connection) => connection.oid === oid);
        assert.ok(authenticatedHere, `TLS proxy ${emu.port} authenticated`);
      }
    });
  });

  describe('RESP parsing and connection state', { concurrency: true }, () => {
    it('a client that half-closes its socket still gets the replies to what it sent before, as from redis-server', async (t) => {
      const emu = await emulator(t);
      const oid = randomUUID();
      const raw = await rawConnection(t, emu);
      raw.send(['AUTH', oid, token({ oid, lifetime: 30 })]);
      assert.deepEqual(await raw.replies(1), ['+OK\r\n']);
      let received = '';
      raw.socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
      // The script keeps redis-server busy for 300 ms: its reply is sent well after the client's FIN arrived.
      const busy =
        "local s = redis.call('TIME') repeat local n = redis.call('TIME') " +
        "until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 300000 return 'done'";
      raw.send(['EVAL', busy, '0']);
      raw.socket.end();
      await once(raw.socket, 'close');
      assert.equal(received, '$4\r\ndone\r\n');
      await emu.waitForOpen(0);
    });
    it('follows partial frames, large bulk strings, inline commands and pipelines byte by byte', async (t) => {
      const emu = await emulator(t);
      const oid = randomUUID();
      const key = `emu:${randomUUID()}`;
      const big = 'x'.repeat(3 * 1024 * 1024 + 7);
      const raw = await rawConnection(t, emu);
      const request = Buffer.from(
        [
          raw.resp('AUTH', oid, token({ oid, key: otherKey })),
          raw.resp('AUTH', oid, token({ oid, lifetime: 30 })),
          raw.resp('SET', key, big),
          `STRLEN ${key}\r\n`, // inline
          raw.resp('GET', `${key}:missing`),
        ].join(''),
      );
      // The first 600 bytes one at a time, then the rest in uneven chunks.
      let offset = 0;
      for (; offset < 600; offset += 1) raw.socket.write(request.subarray(offset, offset + 1));
      for (let size = 1; offset < request.length; size = ((size * 7) % 65_521) + 1) {
        raw.socket.write(request.subarray(offset, offset + size));
        offset += size;
      }
      assert.deepEqual(await raw.replies(5), [
        '-WRONGPASS invalid username-password pair or user is disabled.\r\n',
        '+OK\r\n',
        '+OK\r\n',
        `:${big.length}\r\n`,
        '$-1\r\n',
      ]);
      assert.equal(emu.counters.authOk, 1);
      assert.equal(emu.counters.authFailed, 1);
    });

    it('does not count an AUTH that redis refuses in RESP2 subscribe mode, nor one discarded in MULTI', async (t) => {
      const emu = await emulator(t);
      const oid = randomUUID();
      const raw = await rawConnection(t, emu);
      raw.send(['AUTH', oid, token({ oid, lifetime: 30 })]);
      assert.deepEqual(await raw.replies(1), ['+OK\r\n']);
      const deadline = emu.connections()[0]?.expiresAt;

      raw.send(['MULTI'], ['AUTH', oid, token({ oid, lifetime: 60 })], ['DISCARD']);
      assert.deepEqual(await raw.replies(3), ['+OK\r\n', '+QUEUED\r\n', '+OK\r\n']);
      assert.equal(emu.connections()[0]?.expiresAt, deadline);

      raw.send(['MULTI'], ['AUTH', oid, token({ oid, lifetime: 60 })], ['EXEC']);
      assert.deepEqual(await raw.replies(3), ['+OK\r\n', '+QUEUED\r\n', '*1\r\n+OK\r\n']);
      const extended = emu.connections()[0]?.expiresAt ?? 0;
      assert.ok(extended > (deadline ?? 0));

      raw.send(['SUBSCRIBE', 'emu-channel'], ['AUTH', oid, token({ oid, lifetime: 90 })]);
      const [subscribed, refused] = await raw.replies(2);
      assert.match(subscribed ?? '', /subscribe/);
      assert.match(refused ?? '', /^-ERR Can't execute 'auth'/);
      assert.equal(emu.connections()[0]?.expiresAt, extended);
      raw.send(['UNSUBSCRIBE'], ['AUTH', oid, token({ oid, lifetime: 90 })]);
      assert.deepEqual((await raw.replies(2))[1], '+OK\r\n');
      assert.ok((emu.connections()[0]?.expiresAt ?? 0) > extended);
      assert.deepEqual(emu.counters, { accepted: 1, open: 1, authOk: 3, authFailed: 1, expiryDisconnects: 0 });
    });

    it('closes every connection on demand, and keeps working after its backend restarts', async (t) => {
      const own = await startRedisServer();
      t.after(() => own.stop());
      const emu = await AmrEmulator.start({ backend: own, publicKey: signingKey.publicKey, admin: own.admin });
      t.after(() => emu.stop());
      const oid = randomUUID();
      const flavor = flavors[0] as Flavor;
      const options = { host: emu.host, port: emu.port, username: oid, password: token({ oid, lifetime: 30 }) };
      const clients = [client(t, flavor, options), client(t, flavor, options)];
      await Promise.all(clients.map((redis) => redis.ping()));
      const closed = Promise.all(clients.map((redis) => once(redis, 'close')));
      emu.closeAllConnections();
      await closed;
      await emu.waitForOpen(0);
      assert.equal(emu.counters.expiryDisconnects, 0);

      // A restart loses the ACL users; the emulator creates them again on the next AUTH.
      await own.restart();
      const again = client(t, flavor, options);
      assert.equal(await again.ping(), 'PONG');
      await own.kill();
      await own.start();
      const third = client(t, flavor, { ...options, password: token({ oid, lifetime: 30 }) });
      assert.equal(await third.ping(), 'PONG');
      assert.equal(emu.counters.authOk, 4);
    });
  });
});
