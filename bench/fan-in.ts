/**
 * Token fan-in: how many requests reach the token service (the Entra ID emulator's counters) per rotation when many
 * connections share one provider — standalone clients, duplicates, cluster nodes — and during reconnect storms of
 * 1,000 connections, with the cached token still valid and after an outage of the token service that let it expire.
 */
import { performance } from 'node:perf_hooks';
import type { Cluster, Redis } from 'ioredis';
import * as library from '../lib/index.js';
import { createEntraRedis, type EntraCredentialsProvider } from '../lib/index.js';
import { startRedisCluster } from '../lib/testing/redis-server.js';
import type { BenchWorld } from './support/bench-world.js';
import { closeClients, ErrorTally, openClients, sleep, waitFor } from './support/clients.js';
import { num, table, verdict, type TargetRow } from './support/markdown.js';

const CONNECTIONS = 1_000;
const ROTATIONS = 3;
/** The emulator's `exp` is whole seconds, so a token lives between this and one second less. */
const ROTATION_TOKEN_LIFETIME_S = 3;
/** Long enough that opening 1,000 connections through the in-process AMR emulator ends well before expiry. */
const OUTAGE_TOKEN_LIFETIME_S = 8;
/** How long the token service stays down after the token expired. */
const OUTAGE_AFTER_EXPIRY_MS = 1_000;

export interface FanInRow {
  case: string;
  connections: number;
  /** Rotations or storms observed. */
  events: number;
  /** Token requests per rotation or storm. */
  requestsPer: number;
  target: number;
  /** Free text: timings and counters that explain the row. */
  detail: string;
}

export interface FanInResult {
  rows: FanInRow[];
  /** Why there is no cluster row, when there is none. */
  clusterNote: string | undefined;
}

type ClusterFactory = (startupNodes: { host: string; port: number }[], options: Record<string, unknown>) => Cluster;

/** Resolves after `count` more `tokenRefreshed` events of `provider`, with the request count at the first and last. */
async function countPerRotation(
  bench: BenchWorld,
  provider: EntraCredentialsProvider,
  oid: string,
  rotations: number,
): Promise<number> {
  const snapshots: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      provider.off('tokenRefreshed', onToken);
      reject(new Error(`only ${snapshots.length} of ${rotations + 1} rotations within 30 s`));
    }, 30_000);
    const onToken = () => {
      snapshots.push(bench.tokenRequests(oid));
      if (snapshots.length <= rotations) return;
      clearTimeout(timer);
      provider.off('tokenRefreshed', onToken);
      resolve();
    };
    provider.on('tokenRefreshed', onToken);
  });
  return ((snapshots.at(-1) as number) - (snapshots[0] as number)) / rotations;
}

async function standalone(bench: BenchWorld, errors: ErrorTally): Promise<FanInRow> {
  const identity = await bench.directIdentity();
  const { provider } = bench.provider(identity, { refreshJitter: 0 });
  const clients = await openClients(CONNECTIONS, () =>
    errors.watch(createEntraRedis({ ...bench.direct, credentialsProvider: provider })),
  );
  try {
    const perRotation = await countPerRotation(bench, provider, identity.oid, ROTATIONS);
    return {
      case: `${num(CONNECTIONS)} clients, one provider`,
      connections: CONNECTIONS,
      events: ROTATIONS,
      requestsPer: perRotation,
      target: 1,
      detail: `${num(provider.subscriberCount)} subscribers on the provider`,
    };
  } finally {
    await closeClients(clients);
    provider.dispose();
  }
}

async function duplicates(bench: BenchWorld, errors: ErrorTally): Promise<FanInRow> {
  const identity = await bench.directIdentity();
  const { provider } = bench.provider(identity, { refreshJitter: 0 });
  let parent: Redis | undefined;
  const clients = await openClients(CONNECTIONS, (index) => {
    if (index === 0) {
      parent = errors.watch(createEntraRedis({ ...bench.direct, credentialsProvider: provider }));
      return parent;
    }
    return errors.watch((parent as Redis).duplicate());
  });
  try {
    const perRotation = await countPerRotation(bench, provider, identity.oid, ROTATIONS);
    return {
      case: `1 client + ${num(CONNECTIONS - 1)} \`duplicate()\`s`,
      connections: CONNECTIONS,
      events: ROTATIONS,
      requestsPer: perRotation,
      target: 1,
      detail: `${num(provider.subscriberCount)} subscribers on the provider`,
    };
  } finally {
    await closeClients(clients);
    provider.dispose();
  }
}

async function cluster(bench: BenchWorld, create: ClusterFactory, errors: ErrorTally): Promise<FanInRow> {
  const identity = bench.entra.addManagedIdentity({ kind: 'user' });
  const redisCluster = await startRedisCluster();
  let client: Cluster | undefined;
  const { provider } = bench.provider(identity, { refreshJitter: 0 });
  try {
    for (const node of redisCluster.nodes) {
      await node.command('ACL', 'SETUSER', identity.oid, 'on', 'nopass', '~*', '&*', '+@all');
    }
    client = create(
      redisCluster.nodes.map(({ host, port }) => ({ host, port })),
      { credentialsProvider: provider },
    );
    client.on('error', () => {
      errors.count++;
    });
    for (let i = 0; i < 30; i++) await client.set(`bench:fan-in:${i}`, String(i));
    const perRotation = await countPerRotation(bench, provider, identity.oid, ROTATIONS);
    return {
      case: `cluster, ${redisCluster.nodes.length} masters`,
      connections: client.nodes('all').length,
      events: ROTATIONS,
      requestsPer: perRotation,
      target: 1,
      detail: `${num(provider.subscriberCount)} subscribers on the provider`,
    };
  } finally {
    client?.disconnect();
    provider.dispose();
    await redisCluster.stop();
  }
}

/** Every client's next `ready`, and when the last one came. */
function nextReadyOfAll(clients: Redis[]): Promise<number> {
  return Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`a client did not reconnect within 30 s (status ${client.status})`)),
            30_000,
          );
          client.once('ready', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  ).then(() => performance.now());
}

async function stormWithValidToken(bench: BenchWorld, errors: ErrorTally): Promise<FanInRow> {
  const identity = bench.proxiedIdentity();
  const { provider } = bench.provider(identity);
  const lifetime = bench.entra.tokenLifetimeSeconds;
  bench.entra.tokenLifetimeSeconds = 60; // valid throughout the storm
  const clients = await openClients(CONNECTIONS, () =>
    errors.watch(createEntraRedis({ ...bench.proxied, credentialsProvider: provider })),
  );
  try {
    const requests = bench.tokenRequests(identity.oid);
    const accepted = bench.amr.counters.accepted;
    const ready = nextReadyOfAll(clients);
    const start = performance.now();
    bench.amr.closeAllConnections();
    const end = await ready;
    await Promise.all(clients.map((client) => client.ping()));
    return {
      case: 'reconnect storm, cached token valid',
      connections: CONNECTIONS,
      events: 1,
      requestsPer: bench.tokenRequests(identity.oid) - requests,
      target: 1,
      detail: `all ${num(bench.amr.counters.accepted - accepted)} reconnected in ${num(end - start)} ms (AMR emulator in this process)`,
    };
  } finally {
    bench.entra.tokenLifetimeSeconds = lifetime;
    await closeClients(clients);
    provider.dispose();
  }
}

async function stormAfterOutage(bench: BenchWorld, errors: ErrorTally): Promise<FanInRow> {
  const identity = bench.proxiedIdentity();
  const { provider } = bench.provider(identity);
  const lifetime = bench.entra.tokenLifetimeSeconds;
  bench.entra.tokenLifetimeSeconds = OUTAGE_TOKEN_LIFETIME_S;
  const clients = await openClients(CONNECTIONS, () =>
    errors.watch(createEntraRedis({ ...bench.proxied, credentialsProvider: provider })),
  );
  let faulted = false;
  try {
    // Take the token service down until the connections' token has expired and the emulator has closed them all.
    await bench.entra.setFault({ kind: 'status', status: 503 });
    faulted = true;
    const expiresOn = provider.currentToken()?.expiresOn ?? Date.now();
    const expiryDisconnects = bench.amr.counters.expiryDisconnects;
    const failedRequests = bench.entra.requests.managedIdentity;
    await waitFor(
      () => bench.amr.counters.expiryDisconnects - expiryDisconnects >= CONNECTIONS,
      'every connection to be closed at token expiry',
      Math.max(0, expiresOn - Date.now()) + 10_000,
    );
    await sleep(Math.max(0, expiresOn + OUTAGE_AFTER_EXPIRY_MS - Date.now()));
    const ready = nextReadyOfAll(clients.filter((client) => client.status !== 'ready'));
    const duringOutage = bench.entra.requests.managedIdentity - failedRequests;
    const issued = bench.entra.tokensIssued;
    const requests = bench.tokenRequests(identity.oid);
    const start = performance.now();
    await bench.entra.clearFault();
    faulted = false;
    const end = await ready;
    await Promise.all(clients.map((client) => client.ping()));
    return {
      case: 'reconnect storm after the token expired during a token-service outage',
      connections: CONNECTIONS,
      events: 1,
      requestsPer: bench.tokenRequests(identity.oid) - requests,
      target: 1,
      detail:
        `${num(bench.amr.counters.expiryDisconnects - expiryDisconnects)} connections closed at expiry while the ` +
        `service answered 503; ${num(duringOutage)} failed requests during the outage (retries of one shared cycle, ` +
        `not per connection); after it, ${bench.entra.tokensIssued - issued} token issued and all reconnected in ` +
        `${num(end - start)} ms`,
    };
  } finally {
    if (faulted) await bench.entra.clearFault();
    bench.entra.tokenLifetimeSeconds = lifetime;
    await closeClients(clients);
    provider.dispose();
  }
}

export async function runFanIn(bench: BenchWorld, log: (line: string) => void): Promise<FanInResult> {
  const errors = new ErrorTally();
  const lifetime = bench.entra.tokenLifetimeSeconds;
  bench.entra.tokenLifetimeSeconds = ROTATION_TOKEN_LIFETIME_S;
  const rows: FanInRow[] = [];
  let clusterNote: string | undefined;
  const record = (row: FanInRow) => {
    rows.push(row);
    log(`  ${row.case}: ${num(row.requestsPer, 2)} requests per event; ${row.detail}`);
  };
  try {
    record(await standalone(bench, errors));
    record(await duplicates(bench, errors));
    const create = (library as Record<string, unknown>).createEntraCluster as ClusterFactory | undefined;
    if (typeof create === 'function') record(await cluster(bench, create, errors));
    else clusterNote = '`createEntraCluster` is not exported by lib/index.ts in this tree, so there is no cluster row.';
    record(await stormWithValidToken(bench, errors));
    record(await stormAfterOutage(bench, errors));
  } finally {
    bench.entra.tokenLifetimeSeconds = lifetime;
  }
  if (clusterNote) log(`  ${clusterNote}`);
  return { rows, clusterNote };
}

export function renderFanIn(result: FanInResult): string {
  const rows = result.rows.map((row) => [
    row.case,
    num(row.connections),
    num(row.events),
    num(row.requestsPer, 2),
    `≤ ${row.target}: ${verdict(row.requestsPer <= row.target, `${num(row.requestsPer - row.target, 2)} more`)}`,
    row.detail,
  ]);
  return [
    '## Token fan-in',
    '',
    'Requests that reached the Entra ID emulator and were answered with a token (its per-identity counter) per ' +
      'rotation, or per storm, with every ' +
      'connection sharing one provider over a real `ManagedIdentityCredential`. Rotations: tokens live ' +
      `${ROTATION_TOKEN_LIFETIME_S} s, ${ROTATIONS} rotations counted, connections straight to redis-server. Storms: ` +
      `${num(CONNECTIONS)} connections through the AMR emulator, all closed at once with \`amr.closeAllConnections()\`, ` +
      'or closed by the emulator when their token expired while the token service answered 503 ' +
      `(${num(OUTAGE_AFTER_EXPIRY_MS)} ms past expiry, then it recovers); the count covers the recovery, until every ` +
      'connection is ready again.',
    '',
    table(['Case', 'connections', 'rotations / storms', 'token requests each', 'Target', 'Detail'], rows),
    ...(result.clusterNote ? ['', result.clusterNote] : []),
  ].join('\n');
}

export function fanInTargets(result: FanInResult): TargetRow[] {
  return result.rows.map((row) => ({
    target: `token requests: ${row.case}, ≤ ${row.target} per ${row.case.startsWith('reconnect storm') ? 'storm' : 'rotation'}`,
    figure: num(row.requestsPer, 2),
    met: row.requestsPer <= row.target,
    section: 'Token fan-in',
  }));
}
