/**
 * The reconnect rounds and create/quit cycles: 12 connections through the AMR emulator (6 clients, 4 duplicates, 2
 * RESP2 subscribers, 1 blocked in BLPOP) on hour-long tokens, so that only the measured event happens.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createCredentialsProvider, createEntraRedis, type EntraCredentialsProvider } from '../../lib/index.js';
import { waitFor } from '../wait.js';
import type { LeakContext } from './context.js';
import { measurePhase, type PhaseInput, type Shape } from './phase.js';
import type { PhaseReport } from './report.js';
import { MintingCredential, whenEnded } from './tokens-and-heap.js';

type Clients = PhaseInput['clients'];

/** `amr.closeAllConnections()` `count` times, each round until every connection is back, authenticated and resubscribed. */
async function reconnectRounds(
  context: LeakContext,
  clients: Clients,
  expectedOpen: number,
  count: number,
  onCheckpoint: (done: number) => Promise<void>,
): Promise<Record<string, number>> {
  const { amr } = context.world;
  const every = Math.max(1, Math.floor(count / 10));
  const acceptedBefore = amr.counters.accepted;
  for (let round = 1; round <= count; round++) {
    const accepted = amr.counters.accepted;
    amr.closeAllConnections();
    // every connection back, authenticated, subscribers subscribed again
    await waitFor(
      () =>
        amr.counters.accepted >= accepted + clients.length &&
        clients.every(({ client }) => client.status === 'ready') &&
        amr.counters.open === expectedOpen,
      `round ${round}: every client ready again`,
      30_000,
      2,
    );
    if (round % every === 0) await onCheckpoint(round);
  }
  return { 'connections accepted by the AMR emulator': amr.counters.accepted - acceptedBefore };
}

/** createEntraRedis → ready → duplicate → ready (every tenth subscribes) → SET → quit both, `count` times. */
async function createQuitCycles(
  context: LeakContext,
  options: { credentialsProvider: EntraCredentialsProvider; host: string; port: number },
  count: number,
  onCheckpoint: (done: number) => Promise<void>,
): Promise<Record<string, number>> {
  const { watch, ready } = context.clients;
  const every = Math.max(1, Math.floor(count / 10));
  for (let cycle = 1; cycle <= count; cycle++) {
    const client = await ready(watch(createEntraRedis(options)));
    const copy = await ready(watch(client.duplicate()));
    if (cycle % 10 === 0) await copy.subscribe('leaks:cycle');
    else await copy.ping();
    await client.set('leaks:cycle', String(cycle));
    await Promise.all([copy.quit(), client.quit()]);
    await Promise.all([whenEnded(copy), whenEnded(client)]);
    if (cycle % every === 0) await onCheckpoint(cycle);
  }
  return {};
}

export async function connectionPhases(
  context: LeakContext,
  options: { reconnects: number; cycles: number },
): Promise<PhaseReport[]> {
  const { world, log, gc } = context;
  const { watch, ready } = context.clients;
  const oid = randomUUID();
  const provider = createCredentialsProvider({ credential: new MintingCredential(world.entra, oid, 3_600_000) });
  context.providers.push(provider);
  const amr = { ...world.endpoint, credentialsProvider: provider };
  const subscribe = async (client: Redis) => {
    await client.subscribe('leaks:channel');
    return client;
  };
  const shapes: Shape[] = [
    { name: 'createEntraRedis', make: async () => ready(watch(createEntraRedis(amr))) },
    {
      name: 'duplicate',
      make: async () => {
        const base = watch(createEntraRedis({ ...amr, lazyConnect: true }));
        const copy = await ready(watch(base.duplicate({ lazyConnect: false })));
        base.disconnect();
        return copy;
      },
    },
    { name: 'subscriber', make: async () => subscribe(await ready(watch(createEntraRedis(amr)))) },
    {
      name: 'blocked in BLPOP 0',
      make: async () => {
        const c = await ready(watch(createEntraRedis(amr)));
        c.blpop(`leaks:never:${randomUUID()}`, 0).catch(() => {});
        return c;
      },
    },
  ];
  const [plain, duplicate, subscriber, blocked] = shapes as [Shape, Shape, Shape, Shape];
  const clients: Clients = [];
  const base = await ready(watch(createEntraRedis(amr)));
  clients.push({ shape: plain, client: base });
  for (let i = 0; i < 5; i++) clients.push({ shape: plain, client: await plain.make() });
  for (let i = 0; i < 4; i++) clients.push({ shape: duplicate, client: await ready(watch(base.duplicate())) });
  for (let i = 0; i < 2; i++) clients.push({ shape: subscriber, client: await subscriber.make() });
  clients.push({ shape: blocked, client: await blocked.make() });
  const expectedOpen = world.amr.counters.open;
  const phases: PhaseReport[] = [];
  const common = { connections: clients.length, provider, clients, shapes, gc, log };
  log(`leaks: ${options.reconnects} reconnect rounds of ${clients.length} connections`);
  phases.push(
    await measurePhase({
      ...common,
      name: 'reconnects',
      operations: options.reconnects,
      drive: (count, onCheckpoint) => reconnectRounds(context, clients, expectedOpen, count, onCheckpoint),
    }),
  );
  log(`leaks: ${options.cycles} create/quit cycles`);
  phases.push(
    await measurePhase({
      ...common,
      name: 'create/quit cycles',
      operations: options.cycles,
      drive: (count, onCheckpoint) => createQuitCycles(context, amr, count, onCheckpoint),
    }),
  );
  for (const { client } of clients) client.disconnect();
  await Promise.all(clients.map(({ client }) => whenEnded(client)));
  provider.dispose();
  return phases;
}
