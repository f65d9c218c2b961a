/**
 * The rotation phases: connections straight to redis-server, as an ACL user that takes any password, over a provider
 * whose credential says its tokens live `tokenMs`, so that the real TokenManager rotates every ~tokenMs / 2.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createCredentialsProvider, createEntraRedis, type EntraCredentialsProvider } from '../../lib/index.js';
import { waitFor } from '../wait.js';
import type { LeakContext } from './context.js';
import { measurePhase, type Shape } from './phase.js';
import type { PhaseReport } from './report.js';
import { MintingCredential, whenEnded } from './tokens-and-heap.js';

export interface RotationPhase {
  name: string;
  rotations: number;
  connections: number;
  /** Connections blocked in BLPOP 0. */
  blocked: number;
  tokenMs: number;
}

/** Runs `count` rotations with a checkpoint every tenth, then lets every client settle on an hour-long token. */
async function rotate(
  provider: EntraCredentialsProvider,
  credential: MintingCredential,
  clients: Array<{ client: Redis }>,
  count: number,
  onCheckpoint: (done: number) => Promise<void>,
): Promise<Record<string, number>> {
  let rotations = 0;
  const methods: Record<string, number> = {};
  let failures = 0;
  const onToken = () => {
    rotations++;
  };
  const onReauth = (event: { method: string }) => {
    methods[event.method] = (methods[event.method] ?? 0) + 1;
  };
  const onFailed = () => {
    failures++;
  };
  provider.on('tokenRefreshed', onToken);
  provider.on('reauthenticated', onReauth);
  provider.on('reauthenticationFailed', onFailed);
  try {
    const every = Math.max(1, Math.floor(count / 10));
    for (let next = every; next <= count; next += every) {
      await waitFor(() => rotations >= next, `${next} rotations`, 1_800_000, 5);
      await onCheckpoint(rotations);
    }
    // Quiescence for the listener comparison: the next token lives an hour, so rotations (and the reconnects
    // of connections whose AUTH missed its deadline) stop once every connection has it.
    credential.lifetimeMs = 3_600_000;
    const last = rotations;
    await waitFor(() => rotations > last, 'the hour-long token', 30_000, 5);
    const token = provider.currentToken();
    await waitFor(
      () =>
        clients.every(
          ({ client }) =>
            client.status === 'ready' && (client.options as { password?: string }).password === token?.password,
        ),
      'every client on the hour-long token',
      30_000,
      5,
    );
    // ioredis emits 'ready' on the next tick after the status changed: let those listeners run
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    provider.off('tokenRefreshed', onToken);
    provider.off('reauthenticated', onReauth);
    provider.off('reauthenticationFailed', onFailed);
  }
  return {
    'tokens received': rotations,
    're-AUTH in place': methods.auth ?? 0,
    'moved by reconnect (AUTH not answered by the deadline, or blocked)': methods.reconnect ?? 0,
    'failed re-AUTH attempts (retried)': failures,
    'tokens minted': credential.issued,
  };
}

export async function rotationPhase(context: LeakContext, phase: RotationPhase): Promise<PhaseReport> {
  const { world, log } = context;
  const { watch, ready } = context.clients;
  const oid = randomUUID();
  await world.redis.command('ACL', 'SETUSER', oid, 'on', 'nopass', '~*', '&*', '+@all');
  const credential = new MintingCredential(world.entra, oid, phase.tokenMs);
  const provider = createCredentialsProvider({
    credential,
    tokenManagerOptions: { expirationRefreshRatio: 0.5, refreshJitter: 0, tokenRequestTimeout: 2_000 },
  });
  context.providers.push(provider);
  const direct = { host: world.redis.host, port: world.redis.port, credentialsProvider: provider };
  const shapes: Shape[] = [
    { name: 'createEntraRedis', make: async () => ready(watch(createEntraRedis(direct))) },
    {
      name: 'duplicate',
      make: async () => {
        const base = watch(createEntraRedis({ ...direct, lazyConnect: true }));
        const copy = await ready(watch(base.duplicate({ lazyConnect: false })));
        base.disconnect();
        return copy;
      },
    },
    {
      name: 'blocked in BLPOP 0',
      make: async () => {
        const c = await ready(watch(createEntraRedis(direct)));
        c.blpop(`leaks:never:${randomUUID()}`, 0).catch(() => {});
        return c;
      },
    },
  ];
  const [plain, duplicate, blocking] = shapes as [Shape, Shape, Shape];
  const clients: Array<{ shape: Shape; client: Redis }> = [];
  const base = await ready(watch(createEntraRedis(direct)));
  clients.push({ shape: plain, client: base });
  for (let i = 1; i < phase.connections; i++) {
    const shape = i <= phase.blocked ? blocking : i % 5 === 0 ? duplicate : plain;
    // duplicates of a live client, made the way BullMQ makes them
    const client = shape === duplicate ? await ready(watch(base.duplicate())) : await shape.make();
    clients.push({ shape, client });
  }
  log(
    `leaks: ${phase.name}: ${clients.length} connections, ${phase.blocked} blocked (tokens live ${phase.tokenMs} ms as far as the library knows)`,
  );
  const result = await measurePhase({
    // rotations run from the first client on: the clients are compared with fresh ones, not with themselves
    compareWithStart: false,
    name: phase.name,
    operations: phase.rotations,
    connections: clients.length,
    provider,
    clients,
    shapes: phase.blocked > 0 ? shapes : [plain, duplicate],
    gc: context.gc,
    log,
    drive: (count, onCheckpoint) => rotate(provider, credential, clients, count, onCheckpoint),
  });
  for (const { client } of clients) client.disconnect();
  await Promise.all(clients.map(({ client }) => whenEnded(client)));
  provider.dispose();
  return result;
}
