/**
 * The peer: node-redis 6 (`redis` 6.3) with @redis/entraid 6.1 against this library, with the same connections, each library sharing
 * one provider over a real ManagedIdentityCredential for its own identity, both with default refresh settings.
 *
 * Through the AMR emulator (which closes a connection when its token expires): 100 plain connections under a light
 * GET load, 10 RESP2 subscribers and 10 connections blocked in BLPOP 0.
 * - Phase 1, rotations: re-authentication time of the plain connections, token requests per rotation, connections
 *   the emulator closed because their token expired.
 * - Phase 2, a token-service outage of about a second around one refresh: connections lost at expiry, and when
 *   refreshing resumed.
 * Straight to redis-server: 1,000 plain connections, rotations only, for the re-authentication time at scale (the
 * in-process AMR emulator needs about a third of a second for 1,000 AUTHs, which would dominate the figure).
 */
import { performance } from 'node:perf_hooks';
import type { AccessToken } from '@azure/core-auth';
import { DEFAULT_TOKEN_MANAGER_CONFIG, EntraIdCredentialsProviderFactory, REDIS_SCOPE_DEFAULT } from '@redis/entraid';
import type { Redis } from 'ioredis';
import { createClient, type RedisClientOptions } from 'redis';
import { createEntraRedis } from '../lib/index.js';
import type { AmrConnectionInfo } from '../lib/testing/amr-emulator.js';
import type { BenchWorld, TimedCredential } from './support/bench-world.js';
import { closeClients, ErrorTally, openClients, sleep, waitFor } from './support/clients.js';
import { ClosedLoopLoad } from './support/load.js';
import { num, range, table } from './support/markdown.js';
import { RotationTracker } from './support/rotations.js';
import { summarize, type Summary } from './support/stats.js';

/** Connections of each kind in one setup. */
interface Setup {
  name: 'mixed' | 'plain' | 'direct';
  /** Where connections go. */
  path: 'proxied' | 'direct';
  normal: number;
  subscribers: number;
  blocked: number;
  /** Rotations measured after a warm-up one. */
  rotations: number;
  /** Whether to run phase 2 (the outage). */
  outage: boolean;
}

const MIXED: Setup = {
  name: 'mixed',
  path: 'proxied',
  normal: 100,
  subscribers: 10,
  blocked: 10,
  rotations: 3,
  outage: true,
};
const PLAIN: Setup = {
  name: 'plain',
  path: 'proxied',
  normal: 100,
  subscribers: 0,
  blocked: 0,
  rotations: 5,
  outage: false,
};
const DIRECT: Setup = {
  name: 'direct',
  path: 'direct',
  normal: 1_000,
  subscribers: 0,
  blocked: 0,
  rotations: 5,
  outage: false,
};
/** The emulator's `exp` is whole seconds: tokens live between this and one second less. */
const ROTATION_TOKEN_LIFETIME_S = 4;
const OUTAGE_TOKEN_LIFETIME_S = 6;
/** The outage ends this long after the refresh would have happened. */
const OUTAGE_AFTER_REFRESH_MS = 700;
const LOAD_CONCURRENCY = 8;
const REFRESH_RATIO = 0.7;
const BLOCKING_KEY = 'bench:peer:never';
const CHANNEL = 'bench:peer:channel';

type Kind = 'normal' | 'sub' | 'block';
type Counts = Record<Kind, number>;
const zero = (): Counts => ({ normal: 0, sub: 0, block: 0 });

/** One library under test, behind the same small interface. */
interface Contestant {
  readonly library: string;
  /** Opens every connection; blocked connections start their BLPOP loop. */
  open(): Promise<void>;
  /** A GET on plain connection `index`. */
  get(index: number): Promise<unknown>;
  /** The next rotation in which every plain connection re-authenticated: start and end, performance.now(). */
  nextRotation(): Promise<{ tokenAt: number; doneAt: number }>;
  /** Every connection is usable. */
  allConnected(): boolean;
  close(): Promise<void>;
  /** BLPOPs that were rejected (connection lost under them). */
  blockedErrors: number;
  /** Re-authentication errors the library reported. */
  reauthErrors(): number;
  /** Reconnects the library made on purpose to move a connection to a new token before expiry. */
  voluntaryReconnects(): number;
  /** Whether the provider's refresh schedule is running. */
  refreshing(): boolean;
  readonly credential: TimedCredential;
  readonly oid: string;
}

const nameOf = (library: string, kind: Kind, index: number) => `${library}-${kind}-${index}`;

/** Re-issues a blocking pop for as long as `running()`, counting rejections. */
async function blockForever(pop: () => Promise<unknown>, running: () => boolean, onError: () => void): Promise<void> {
  while (running()) {
    try {
      await pop();
    } catch {
      if (!running()) return;
      onError();
      await sleep(50);
    }
  }
}

async function identityFor(bench: BenchWorld, setup: Setup) {
  return setup.path === 'direct' ? await bench.directIdentity() : bench.proxiedIdentity();
}

async function ours(bench: BenchWorld, errors: ErrorTally, setup: Setup): Promise<Contestant> {
  const identity = await identityFor(bench, setup);
  const { provider, credential } = bench.provider(identity);
  const endpoint = bench[setup.path];
  const library = 'ioredis-entraid';
  const normal: Redis[] = [];
  const others: Redis[] = [];
  let running = true;
  let voluntary = 0;
  let reauthErrors = 0;
  provider.on('reauthenticated', (event) => {
    if (event.method !== 'auth') voluntary++;
  });
  provider.on('reauthenticationFailed', () => {
    reauthErrors++;
  });
  const tracker = new RotationTracker(
    provider,
    credential,
    () => setup.normal,
    (event) => event.connection.includes('-normal-'),
  );
  const make = (kind: Kind, index: number) =>
    errors.watch(
      createEntraRedis({
        ...endpoint,
        credentialsProvider: provider,
        connectionName: nameOf(library, kind, index),
      }),
    );
  const contestant: Contestant = {
    library,
    credential,
    oid: identity.oid,
    blockedErrors: 0,
    async open() {
      normal.push(...(await openClients(setup.normal, (i) => make('normal', i))));
      const subscribers = await openClients(setup.subscribers, (i) => make('sub', i));
      await Promise.all(subscribers.map((sub) => sub.subscribe(CHANNEL)));
      const blocked = await openClients(setup.blocked, (i) => make('block', i));
      others.push(...subscribers, ...blocked);
      for (const client of blocked) {
        void blockForever(
          () => client.blpop(BLOCKING_KEY, 0),
          () => running,
          () => {
            contestant.blockedErrors++;
          },
        );
      }
    },
    get: (index) => (normal[index % setup.normal] as Redis).get('bench:peer'),
    nextRotation: () => tracker.nextCompleted(),
    allConnected: () => [...normal, ...others].every((client) => client.status === 'ready'),
    async close() {
      running = false;
      tracker.stop();
      await closeClients([...normal, ...others]);
      provider.dispose();
    },
    reauthErrors: () => reauthErrors,
    voluntaryReconnects: () => voluntary,
    refreshing: () => provider.scheduleRunning,
  };
  return contestant;
}

/**
 * node-redis 6 speaks RESP3 by default; the bench's ioredis side (ioredis 5) speaks RESP2, so node-redis is held to
 * RESP2 too: the same connections on both sides, RESP2 subscribers included.
 */
const NODE_REDIS_RESP = 2;
/** A node-redis client without modules, functions or scripts, held to RESP2; its type is the one createClient infers. */
function createResp2Client(options: Pick<RedisClientOptions, 'socket' | 'credentialsProvider'>) {
  return createClient({ ...options, RESP: NODE_REDIS_RESP });
}
type NodeRedisClient = ReturnType<typeof createResp2Client>;
type ReAuthenticate = (credentials: { username?: string; password?: string }) => Promise<void>;

async function nodeRedis(bench: BenchWorld, errors: ErrorTally, setup: Setup): Promise<Contestant> {
  const identity = await identityFor(bench, setup);
  const credential = bench.credential(identity);
  const endpoint = bench[setup.path];
  const library = 'node-redis';
  let reauthErrors = 0;
  const provider = EntraIdCredentialsProviderFactory.createForDefaultAzureCredential({
    credential,
    scopes: REDIS_SCOPE_DEFAULT,
    tokenManagerConfig: DEFAULT_TOKEN_MANAGER_CONFIG,
    onReAuthenticationError: () => {
      reauthErrors++;
    },
  });
  // node-redis reports no event per re-authenticated connection: the time a plain connection's AUTH completed is
  // taken by wrapping its (public) `reAuthenticate`, keyed by the token it carried.
  const rotations = new Map<string, { tokenAt: number; doneAt: number; count: number }>();
  const waiters = new Set<(rotation: { tokenAt: number; doneAt: number }) => void>();
  const onToken = (token: AccessToken, at: number) => {
    rotations.set(token.token, { tokenAt: at, doneAt: Number.NaN, count: 0 });
  };
  credential.listeners.add(onToken);
  const normal: NodeRedisClient[] = [];
  const others: NodeRedisClient[] = [];
  let running = true;
  const make = (kind: Kind, index: number): NodeRedisClient => {
    // Not the \`name\` option: with a distinct name per client, createClient() rebuilds its command class each time
    // (about 70 ms of CPU per client, measured with redis 5.12.1). The name is set after each connect instead; a
    // RESP2 subscriber cannot do that after a reconnect (it is back in subscribe mode by \`ready\`), so a connection
    // of this library's identity without a name is a subscriber.
    const client = createResp2Client({ socket: { ...endpoint }, credentialsProvider: provider });
    errors.watch(client);
    client.on('ready', () => {
      client.sendCommand(['CLIENT', 'SETNAME', nameOf(library, kind, index)]).catch(() => {});
    });
    if (kind === 'normal') {
      const self = (client as unknown as { _self: { reAuthenticate: ReAuthenticate } })._self;
      const reAuthenticate = self.reAuthenticate;
      self.reAuthenticate = async (credentials) => {
        await reAuthenticate(credentials);
        const rotation = rotations.get(credentials.password ?? '');
        if (!rotation || ++rotation.count < setup.normal) return;
        rotation.doneAt = performance.now();
        for (const waiter of [...waiters]) waiter(rotation);
      };
    }
    return client;
  };
  const openAll = async (kind: Kind, count: number) => {
    const clients: NodeRedisClient[] = [];
    for (let start = 0; start < count; start += 100) {
      const batch = Array.from({ length: Math.min(100, count - start) }, (_, i) => make(kind, start + i));
      clients.push(...batch);
      await Promise.all(batch.map((client) => client.connect()));
    }
    return clients;
  };
  const contestant: Contestant = {
    library,
    credential,
    oid: identity.oid,
    blockedErrors: 0,
    async open() {
      normal.push(...(await openAll('normal', setup.normal)));
      const subscribers = await openAll('sub', setup.subscribers);
      await Promise.all(subscribers.map((sub) => sub.subscribe(CHANNEL, () => {})));
      const blocked = await openAll('block', setup.blocked);
      others.push(...subscribers, ...blocked);
      for (const client of blocked) {
        void blockForever(
          () => client.blPop(BLOCKING_KEY, 0),
          () => running,
          () => {
            contestant.blockedErrors++;
          },
        );
      }
    },
    get: (index) => (normal[index % setup.normal] as NodeRedisClient).get('bench:peer'),
    nextRotation: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error('node-redis: no completed rotation within 20 s'));
        }, 20_000);
        const waiter = (rotation: { tokenAt: number; doneAt: number }) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(rotation);
        };
        waiters.add(waiter);
      }),
    allConnected: () => [...normal, ...others].every((client) => client.isReady),
    async close() {
      running = false;
      credential.listeners.delete(onToken);
      for (const client of [...normal, ...others]) client.destroy();
      await sleep(50);
    },
    reauthErrors: () => reauthErrors,
    voluntaryReconnects: () => 0,
    refreshing: () => provider.getTokenManager().isRunning(),
  };
  return contestant;
}

export interface PeerLibraryResult {
  library: string;
  setup: Setup;
  reauthMs: Summary;
  requestsPerRotation: number;
  /** Phase 1: connections closed at token expiry. */
  rotationLost: Counts;
  /** Phase 2 (proxied only): connections closed at expiry around the outage. */
  outage:
    | {
        lost: Counts;
        durationMs: number;
        failedRequests: number;
        /** Whether the refresh schedule was still running right after the outage. */
        refreshing: boolean;
        /** From the end of the outage to the next token the library obtained, ms. */
        nextTokenAfterMs: number;
      }
    | undefined;
  commandErrors: number;
  commands: number;
  blockedErrors: number;
  reauthErrors: number;
  voluntaryReconnects: number;
  clientErrors: number;
}

/** Per setup, ioredis-entraid then node-redis. */
export type PeerResult = Record<Setup['name'], PeerLibraryResult[]>;

/** The next token `credential` obtains, and when. */
function nextToken(credential: TimedCredential, timeoutMs = 20_000): Promise<{ token: AccessToken; at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      credential.listeners.delete(listener);
      reject(new Error(`no token within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (token: AccessToken, at: number) => {
      clearTimeout(timer);
      credential.listeners.delete(listener);
      resolve({ token, at });
    };
    credential.listeners.add(listener);
  });
}

/** Phase 2: the token service answers 503 from just before the refresh of a fresh token until shortly after it. */
async function outage(
  bench: BenchWorld,
  contestant: Contestant,
  lost: { current: Counts },
): Promise<NonNullable<PeerLibraryResult['outage']>> {
  bench.entra.tokenLifetimeSeconds = OUTAGE_TOKEN_LIFETIME_S;
  let next = await nextToken(contestant.credential);
  while (next.token.expiresOnTimestamp - Date.now() < (OUTAGE_TOKEN_LIFETIME_S - 1.5) * 1000)
    next = await nextToken(contestant.credential);
  lost.current = zero();
  const ttl = next.token.expiresOnTimestamp - Date.now();
  // Starts early enough to cover a refresh brought forward by jitter (ours: at most 10 % of the lifetime).
  await sleep(Math.max(0, ttl * (REFRESH_RATIO - 0.1)));
  const failed = bench.entra.requests.managedIdentity;
  const start = performance.now();
  await bench.entra.setFault({ kind: 'status', status: 503 });
  await sleep(ttl * 0.1 + OUTAGE_AFTER_REFRESH_MS);
  await bench.entra.clearFault();
  const end = performance.now();
  const failedRequests = bench.entra.requests.managedIdentity - failed;
  const nextTokenAfter = nextToken(contestant.credential, 30_000).then(({ at }) => at - end);
  await sleep(100);
  const refreshing = contestant.refreshing();
  await sleep(Math.max(0, next.token.expiresOnTimestamp + 1_500 - Date.now()));
  const nextTokenAfterMs = await nextTokenAfter;
  await waitFor(() => contestant.allConnected(), `${contestant.library}: every connection back`, 20_000);
  return { lost: lost.current, durationMs: end - start, failedRequests, refreshing, nextTokenAfterMs };
}

async function runContestant(
  bench: BenchWorld,
  setup: Setup,
  contestant: Contestant,
  log: (line: string) => void,
): Promise<Omit<PeerLibraryResult, 'clientErrors'>> {
  const lost = { current: zero() };
  const onExpired = (info: AmrConnectionInfo) => {
    if (info.oid !== contestant.oid) return;
    // Unnamed: a node-redis subscriber after a reconnect (see nodeRedis()).
    const kind = (/-(normal|sub|block)-\d+$/.exec(info.name ?? '')?.[1] ?? 'sub') as Kind;
    lost.current[kind]++;
  };
  bench.amr.on('expired', onExpired);
  let load: ClosedLoopLoad | undefined;
  try {
    bench.entra.tokenLifetimeSeconds = ROTATION_TOKEN_LIFETIME_S;
    await contestant.open();
    log(`  ${contestant.library}, ${setup.name}: open`);
    load = new ClosedLoopLoad((sequence) => contestant.get(sequence), LOAD_CONCURRENCY);

    // Phase 1: rotations.
    await contestant.nextRotation(); // warm-up
    lost.current = zero();
    const rotations: { tokenAt: number; doneAt: number }[] = [];
    const requests: number[] = [];
    for (let i = 0; i < setup.rotations; i++) {
      rotations.push(await contestant.nextRotation());
      requests.push(bench.tokenRequests(contestant.oid));
    }
    const rotationLost = lost.current;
    log(`  ${contestant.library}, ${setup.name}: rotations done`);
    const outageResult = setup.outage ? await outage(bench, contestant, lost) : undefined;
    await load.stop();

    const result = {
      library: contestant.library,
      setup,
      reauthMs: summarize(rotations.map((r) => r.doneAt - r.tokenAt)),
      requestsPerRotation: ((requests.at(-1) ?? 0) - (requests[0] ?? 0)) / Math.max(1, requests.length - 1),
      rotationLost,
      outage: outageResult,
      commandErrors: load.errors,
      commands: load.completed,
      blockedErrors: contestant.blockedErrors,
      reauthErrors: contestant.reauthErrors(),
      voluntaryReconnects: contestant.voluntaryReconnects(),
    };
    log(
      `  ${contestant.library}, ${setup.name}, ${setup.normal} plain: re-auth ${range(result.reauthMs, 1)} ms, ` +
        `${num(result.requestsPerRotation, 2)} requests/rotation, lost at expiry ${JSON.stringify(rotationLost)}` +
        (outageResult ? `, around the outage ${JSON.stringify(outageResult.lost)}` : ''),
    );
    return result;
  } finally {
    await load?.stop();
    bench.amr.off('expired', onExpired);
    await contestant.close();
  }
}

export async function runPeer(bench: BenchWorld, log: (line: string) => void): Promise<PeerResult> {
  const lifetime = bench.entra.tokenLifetimeSeconds;
  const result: PeerResult = { mixed: [], plain: [], direct: [] };
  try {
    for (const setup of [MIXED, PLAIN, DIRECT]) {
      for (const make of [ours, nodeRedis]) {
        const errors = new ErrorTally();
        const outcome = await runContestant(bench, setup, await make(bench, errors, setup), log);
        result[setup.name].push({ ...outcome, clientErrors: errors.count });
      }
    }
  } finally {
    bench.entra.tokenLifetimeSeconds = lifetime;
  }
  return result;
}

export function renderPeer(result: PeerResult): string {
  const mixed = result.mixed;
  const row = (libs: PeerLibraryResult[], label: string, cell: (r: PeerLibraryResult) => string) => [
    label,
    ...libs.map(cell),
  ];
  const lostCells = (c: Counts) => `${c.normal} / ${c.sub} / ${c.block}`;
  const outageCell = (r: PeerLibraryResult, cell: (o: NonNullable<PeerLibraryResult['outage']>) => string) =>
    r.outage ? cell(r.outage) : 'n/a';
  const headers = (libs: PeerLibraryResult[]) => ['', ...libs.map((r) => r.library)];
  const [ours, peer] = mixed;
  const reauthRow = (label: string, libs: PeerLibraryResult[]) => [label, ...libs.map((r) => range(r.reauthMs, 1))];
  return [
    '## The peer: node-redis with @redis/entraid',
    '',
    'Each library with its own managed identity and one provider for all its connections, over the same kind of real ' +
      "`ManagedIdentityCredential`; default refresh settings for both (refresh at 70 % of the token's life; ours also " +
      'brings it forward by up to 10 % jitter). node-redis gets its tokens from ' +
      '`EntraIdCredentialsProviderFactory.createForDefaultAzureCredential({ credential, scopes, tokenManagerConfig: ' +
      'DEFAULT_TOKEN_MANAGER_CONFIG })`, which accepts any `TokenCredential`. It emits no per-connection event, so each ' +
      "plain connection's (public) `reAuthenticate` is wrapped to note when its AUTH completed. Re-auth time runs from " +
      "the credential handing over the token to the last plain connection's AUTH reply, for both libraries. " +
      `A light load (${LOAD_CONCURRENCY} concurrent GETs over the plain connections) runs throughout. One library after ` +
      'the other, ioredis-entraid first.',
    '',
    `### Through the AMR emulator: ${MIXED.normal} plain connections, ${MIXED.subscribers} RESP2 subscribers, ` +
      `${MIXED.blocked} blocked in \`BLPOP 0\``,
    '',
    `Phase 1: tokens of ${ROTATION_TOKEN_LIFETIME_S} s, ${MIXED.rotations} rotations after a warm-up one. Phase 2: tokens of ` +
      `${OUTAGE_TOKEN_LIFETIME_S} s; the token service answers 503 from shortly before one refresh until ` +
      `${OUTAGE_AFTER_REFRESH_MS} ms after it (about ${num((ours?.outage?.durationMs ?? 0) / 1000, 1)} s), ending ` +
      'well before the token expires.',
    '',
    table(headers(mixed), [
      row(mixed, 'token requests per rotation', (r) => num(r.requestsPerRotation, 2)),
      row(mixed, `phase 1, lost at expiry (plain / subscriber / blocked)`, (r) => lostCells(r.rotationLost)),
      row(mixed, 'reconnects and subscriber hand-overs made on purpose (both phases)', (r) =>
        num(r.voluntaryReconnects),
      ),
      row(mixed, 'rejected BLPOPs (connection lost under them)', (r) => num(r.blockedErrors)),
      row(mixed, 'phase 2, lost at expiry (plain / subscriber / blocked)', (r) =>
        outageCell(r, (o) => lostCells(o.lost)),
      ),
      row(mixed, 'phase 2, failed token requests during the outage', (r) =>
        outageCell(r, (o) => num(o.failedRequests)),
      ),
      row(mixed, 'phase 2, refresh schedule running after the outage', (r) =>
        outageCell(r, (o) => (o.refreshing ? 'yes' : 'no')),
      ),
      row(mixed, 'phase 2, next token after the outage ended, ms', (r) =>
        outageCell(r, (o) => num(o.nextTokenAfterMs)),
      ),
      row(mixed, 'failed GETs / GETs', (r) => `${num(r.commandErrors)} / ${num(r.commands)}`),
      row(mixed, 're-authentication errors reported', (r) => num(r.reauthErrors)),
      row(mixed, 'client `error` events', (r) => num(r.clientErrors)),
    ]),
    '',
    ...(ours && peer ? [peerNotes(ours, peer), ''] : []),
    '### Re-authentication time',
    '',
    `Tokens of ${ROTATION_TOKEN_LIFETIME_S} s; ms from the new token to the last plain connection's AUTH reply, median ` +
      '(min–max) over rotations. In the first row (the setup above) ioredis-entraid also moves its subscribers (two ' +
      'short-lived connections each) and blocked connections to the new token at that moment, and node-redis does not; ' +
      'the other rows have plain connections only.',
    '',
    table(headers(result.direct), [
      reauthRow(
        `AMR emulator: ${MIXED.normal} plain + ${MIXED.subscribers} subscribers + ${MIXED.blocked} blocked ` +
          `(${MIXED.rotations} rotations)`,
        mixed,
      ),
      reauthRow(`AMR emulator: ${PLAIN.normal} plain only (${PLAIN.rotations} rotations)`, result.plain),
      reauthRow(`redis-server: ${num(DIRECT.normal)} plain (${DIRECT.rotations} rotations)`, result.direct),
      [
        'token requests per rotation, all setups',
        ...result.direct.map((r) => {
          const all = [...result.mixed, ...result.plain, ...result.direct].filter((x) => x.library === r.library);
          return all.map((x) => num(x.requestsPerRotation, 2)).join(' / ');
        }),
      ],
      [
        'failed GETs, plain-only setups',
        ...result.direct.map((r) => {
          const all = [...result.plain, ...result.direct].filter((x) => x.library === r.library);
          return all.map((x) => `${num(x.commandErrors)} of ${num(x.commands)}`).join('; ');
        }),
      ],
    ]),
    '',
    ...(['plain', 'direct'] as const).map((name) =>
      compareReauth(
        name === 'plain'
          ? `Through the AMR emulator with ${PLAIN.normal} plain connections`
          : `Straight to redis-server with ${num(DIRECT.normal)}`,
        result[name],
      ),
    ),
  ].join('\n');
}

/** Says whether the re-authentication times of the two libraries differ by more than their spread. */
function compareReauth(label: string, libs: PeerLibraryResult[]): string {
  const [a, b] = libs;
  if (!a || !b) return '';
  const overlap = a.reauthMs.min <= b.reauthMs.max && b.reauthMs.min <= a.reauthMs.max;
  if (overlap) {
    return (
      `- ${label}: the ranges overlap (${a.library} ${range(a.reauthMs, 1)}, ${b.library} ${range(b.reauthMs, 1)} ms); ` +
      'no difference is resolved by this many rotations on this machine.'
    );
  }
  const [faster, slower] = a.reauthMs.median <= b.reauthMs.median ? [a, b] : [b, a];
  return (
    `- ${label}: ${faster.library} was faster; the ranges do not overlap (median ${num(faster.reauthMs.median, 1)} ms ` +
    `against ${num(slower.reauthMs.median, 1)} ms; ${range(faster.reauthMs, 1)} and ${range(slower.reauthMs, 1)}). The two ` +
    'libraries ran one after the other, so drift of the machine between the runs is part of that difference.'
  );
}

/** What the table shows, in words, from the figures themselves. */
function peerNotes(ours: PeerLibraryResult, peer: PeerLibraryResult): string {
  const lines: string[] = [];
  const lostIn = (c: Counts) => c.normal + c.sub + c.block;
  if (peer.rotationLost.sub + peer.rotationLost.block > 0) {
    lines.push(
      `- ${peer.library} does not re-authenticate RESP2 subscribers (its \`reAuthenticate\` skips them), so the ` +
        `server closed ${peer.rotationLost.sub} subscriber connections at expiry during ${MIXED.rotations} rotations ` +
        `(and ${peer.rotationLost.block} blocked ones); ${ours.library} moved its subscribers and blocked connections ` +
        `to the new token before expiry (${num(ours.voluntaryReconnects)} hand-overs or reconnects in both phases) and ` +
        `lost ${lostIn(ours.rotationLost)}.`,
    );
  }
  if (peer.rotationLost.block === 0 && ours.voluntaryReconnects > 0) {
    lines.push(
      '- Blocked connections: an AUTH written behind `BLPOP 0` is not answered until the BLPOP returns. The AMR ' +
        'emulator credits an AUTH when it reads it, not when redis-server runs it, so a connection whose AUTH waits ' +
        'behind BLPOP is not closed here; on a server that applies AUTH in order it would be. This library does not ' +
        'wait for that: it reconnects such a connection before the old token expires, which is part of the ' +
        'reconnects counted above.',
    );
  }
  if (peer.outage && ours.outage && lostIn(peer.outage.lost) > lostIn(ours.outage.lost)) {
    lines.push(
      `- Around the outage ${peer.library} lost ${lostIn(peer.outage.lost)} connections at expiry; its token ` +
        `manager was ${peer.outage.refreshing ? 'still running' : 'stopped'} right after the outage and its next token ` +
        `came ${num(peer.outage.nextTokenAfterMs)} ms after the service was back. Its default retry policy ` +
        '(`DEFAULT_RETRY_POLICY`) retries only MSAL `NetworkError`s and its `TokenManager` stops on an error it does not ' +
        'retry, so nothing asks for a token again until the expired connections reconnect. ' +
        `${ours.library} lost ${lostIn(ours.outage.lost)} and had a token ${num(ours.outage.nextTokenAfterMs)} ms after ` +
        'the outage.',
    );
  }
  return lines.join('\n');
}

/** Only this library's failures break the run; the peer's are what is measured. */
export function peerProblems(result: PeerResult): string[] {
  return [...result.mixed, ...result.plain, ...result.direct]
    .filter((r) => r.library === 'ioredis-entraid')
    .flatMap((r) => [
      ...(r.commandErrors > 0 ? [`${r.setup.name}: ${r.commandErrors} failed GETs`] : []),
      ...(r.clientErrors > 0 ? [`${r.setup.name}: ${r.clientErrors} client error events`] : []),
      ...(r.reauthErrors > 0 ? [`${r.setup.name}: ${r.reauthErrors} reauthenticationFailed events`] : []),
    ]);
}
