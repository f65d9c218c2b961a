// ioredis majors: 5, 6
// express-session with connect-redis 8 (the last major that takes an ioredis client) over an Entra ID client, across
// token rotations: a real Express app, real HTTP requests with cookies. Every read gives back what was last written
// (GET/SET EX), unmodified sessions are touched (EXPIRE), logouts destroy (DEL), and the store lists them (SCAN/MGET).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';

declare module 'express-session' {
  interface SessionData {
    visits: number;
    last: string;
  }
}

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

const ROTATIONS = 3;
const USERS = 6;

it('sessions read back what was written, are touched, destroyed and listed, across rotations', async () => {
  const provider = world.provider();
  const client = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
  const store = new RedisStore({ client, prefix: 'sess:', ttl: 600 });
  const app = express();
  app.use(session({ store, secret: 'not-a-secret', resave: false, saveUninitialized: false }));
  app.post('/visit', (req, res) => {
    req.session.visits = (req.session.visits ?? 0) + 1;
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever the query holds, as String() shows it
    req.session.last = String(req.query.v);
    res.json({ visits: req.session.visits });
  });
  app.get('/me', (req, res) => {
    res.json({ visits: req.session.visits ?? 0, last: req.session.last ?? null });
  });
  app.post('/logout', (req, res) => {
    req.session.destroy((error) => res.status(error ? 500 : 204).end());
  });
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: error.message });
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const failures: string[] = [];
  const counts = { writes: 0, reads: 0, logouts: 0, touches: 0 };
  const cookies: Array<string | undefined> = [];
  const touch = store.touch.bind(store);
  store.touch = (...args: Parameters<typeof store.touch>) => {
    counts.touches++;
    return touch(...args);
  };

  const rotations = countEvents(provider, 'tokenRefreshed');
  const reauths = countEvents(provider, 'reauthenticated');
  const expiryDisconnects = world.amr.counters.expiryDisconnects;
  let running = true;
  const user = async (id: number) => {
    let cookie: string | undefined;
    let visits = 0;
    for (let i = 0; running; i++) {
      const headers: Record<string, string> = cookie ? { cookie } : {};
      const write = await fetch(`${base}/visit?v=${id}-${i}`, { method: 'POST', headers });
      if (write.status !== 200) {
        failures.push(`user ${id} write ${i}: ${write.status} ${await write.text()}`);
        continue;
      }
      cookie = write.headers.get('set-cookie')?.split(';')[0] ?? cookie;
      if (cookie === undefined) {
        failures.push(`user ${id} write ${i}: no session cookie`);
        continue;
      }
      visits++;
      counts.writes++;
      const written = (await write.json()) as { visits: number };
      if (written.visits !== visits)
        failures.push(`user ${id} write ${i}: visits ${written.visits}, expected ${visits}`);
      const read = await fetch(`${base}/me`, { headers: { cookie } });
      const body = read.status === 200 ? ((await read.json()) as { visits: number; last: string }) : undefined;
      counts.reads++;
      if (body?.visits !== visits || body.last !== `${id}-${i}`)
        failures.push(`user ${id} read ${i}: ${read.status} ${JSON.stringify(body)}`);
      if (i % 15 === 14) {
        const out = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } });
        if (out.status !== 204) failures.push(`user ${id} logout: ${out.status}`);
        const after = await fetch(`${base}/me`, { headers: { cookie } });
        const gone = (await after.json()) as { visits: number };
        if (gone.visits !== 0) failures.push(`user ${id} after logout: ${JSON.stringify(gone)}`);
        counts.logouts++;
        cookie = undefined;
        visits = 0;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    cookies[id] = cookie;
  };
  try {
    const users = Array.from({ length: USERS }, (_, id) => user(id));
    await waitUntil(() => rotations.count >= ROTATIONS && reauths.count >= ROTATIONS, {
      timeoutMs: 30_000,
      description: `${ROTATIONS} rotations`,
    });
    running = false;
    await Promise.all(users);

    assert.deepEqual(failures, []);
    assert.ok(counts.writes > 100 && counts.logouts > USERS, JSON.stringify(counts));
    assert.ok(counts.touches >= counts.reads, `unmodified sessions touched: ${JSON.stringify(counts)}`);
    // The store lists exactly the sessions still logged in (SCAN, then MGET).
    const live = cookies.filter((c) => c !== undefined).length;
    assert.equal(await store.length(), live);
    assert.equal(((await store.all()) as unknown[]).length, live);
    assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects, 'no connection closed at token expiry');
  } finally {
    running = false; // a failed wait leaves the users looping
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
