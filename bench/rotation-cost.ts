/**
 * Where the time of one rotation goes: N clients made by `createEntraRedis()` re-authenticated with a new token,
 * against the same N AUTHs sent at once by plain ioredis clients, and against those plain AUTHs with a little work
 * (a busy wait) between each two of them, without load and without tracing subscribers. All connect straight to
 * redis-server; tokens come from an in-process credential (no HTTP), so a rotation starts when the credential hands
 * its token over. The whole measurement runs under the CPU profiler of `node --cpu-prof` (node:inspector), and each
 * sample inside a rotation or a burst is put in a category by the function it was taken in: what the library's own
 * code costs, and what else changes.
 *
 *   npm run bench -- rotation-cost                               printed, the document left alone
 *   ROTATION_COST_CLIENTS=1000 npm run bench -- rotation-cost    only 1,000 clients
 *   ROTATION_COST_PROFILE=/tmp/r npm run bench -- rotation-cost    also writes each size's CPU profile
 *                                                                (/tmp/r.1000.cpuprofile, for Chrome DevTools) and
 *                                                                its windows (/tmp/r.1000.windows.json)
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { Redis } from 'ioredis';
import { createCredentialsProvider, createEntraRedis } from '../lib/index.js';
import { createSigningKey, signJwt } from '../lib/testing/jwt.js';
import type { BenchWorld } from './support/bench-world.js';
import {
  CATEGORIES,
  type Category,
  categorize,
  CpuProfiler,
  hrMicros,
  type Profile,
  SAMPLING_INTERVAL_US,
  type Window,
} from './support/cpu-profile.js';
import { closeClients, openClients, sleep } from './support/clients.js';
import { num, range, table } from './support/markdown.js';
import { summarize, type Summary } from './support/stats.js';

/** `ROTATION_COST_CLIENTS=1000` measures only that many clients. */
const SIZES = process.env.ROTATION_COST_CLIENTS ? [Number(process.env.ROTATION_COST_CLIENTS)] : [100, 1_000];
const ROUNDS = 12;
/** Tokens live 4 s and are refreshed at half their life: a rotation every 2 s. */
const TOKEN_LIFETIME_S = 4;
/** Work between two plain AUTHs in the spaced burst, µs: about what the library's code costs per connection. */
const SPACING_US = 2;

const KINDS = ['library', 'plain', 'spaced'] as const;
type Kind = (typeof KINDS)[number];
const KIND_LABELS: Record<Kind, string> = {
  library: 'library rotation',
  plain: 'plain AUTHs at once',
  spaced: `plain AUTHs, ${SPACING_US} µs of work between them`,
};

export interface RotationCost {
  clients: number;
  rounds: number;
  /** Per kind: wall and CPU ms per rotation or burst, and sampled ms per category (mean per rotation or burst). */
  kinds: Record<Kind, { wallMs: Summary; cpuMs: Summary; sampledMs: Record<Category, number> }>;
}

export interface RotationCostResult {
  sizes: RotationCost[];
}

/** Mints a token per call and says when it hands one over. */
class MintingCredential implements TokenCredential {
  readonly #key = createSigningKey();
  lastTokenAt = Number.NaN;
  onToken: (() => void) | undefined;

  constructor(private readonly oid: string) {}

  getToken(): Promise<AccessToken> {
    const now = Date.now();
    const exp = Math.floor(now / 1000) + TOKEN_LIFETIME_S;
    const claims = { oid: this.oid, aud: 'https://redis.azure.com', exp, iat: Math.floor(now / 1000) };
    const token = signJwt({ ...claims, nonce: Math.random() }, this.#key);
    this.onToken?.();
    this.lastTokenAt = performance.now();
    return Promise.resolve({ token, expiresOnTimestamp: exp * 1000 });
  }
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

async function measureSize(bench: BenchWorld, size: number, log: (line: string) => void): Promise<RotationCost> {
  const oid = crypto.randomUUID();
  await bench.redis.command('ACL', 'SETUSER', oid, 'on', 'nopass', '~*', '&*', '+@all');
  const credential = new MintingCredential(oid);
  const provider = createCredentialsProvider({
    credential,
    tokenManagerOptions: { expirationRefreshRatio: 0.5, refreshJitter: 0 },
  });
  const clients = await openClients(size, () => createEntraRedis({ ...bench.direct, credentialsProvider: provider }));
  const first = await provider.getToken();
  const plainClients = await openClients(
    size,
    () => new Redis({ ...bench.direct, username: first.username, password: first.password }),
  );
  let reauthenticated = 0;
  let onAll: (() => void) | undefined;
  const countReauthenticated = () => {
    if (++reauthenticated === size) onAll?.();
  };
  provider.on('reauthenticated', countReauthenticated);
  const windows: Window<Kind>[] = [];
  const figures = Object.fromEntries(KINDS.map((kind) => [kind, { wall: [] as number[], cpu: [] as number[] }]));
  const note = (kind: Kind, from: number, wall: number, cpu: number) => {
    windows.push({ kind, from, to: hrMicros() });
    figures[kind]?.wall.push(wall);
    figures[kind]?.cpu.push(cpu);
  };
  /** The next rotation, from the credential's token to the N-th `reauthenticated`. */
  const rotation = () =>
    new Promise<void>((resolve) => {
      let cpu = process.cpuUsage();
      let from = hrMicros();
      credential.onToken = () => {
        cpu = process.cpuUsage();
        from = hrMicros();
      };
      reauthenticated = 0;
      onAll = () => {
        note('library', from, performance.now() - credential.lastTokenAt, cpuMs(cpu));
        resolve();
      };
    });
  /** The same AUTHs on the plain clients, `spacingUs` of busy work between two of them, until the last reply. */
  const burst = async (kind: Kind, spacingUs: number) => {
    const token = provider.currentToken();
    if (!token) throw new Error('no token');
    const cpu = process.cpuUsage();
    const from = hrMicros();
    const start = performance.now();
    const replies = plainClients.map((client: Redis, index: number) => {
      if (spacingUs > 0 && index > 0) {
        const until = performance.now() + spacingUs / 1000;
        while (performance.now() < until) {
          // the work between two AUTHs
        }
      }
      return client.auth(token.username, token.password);
    });
    // AUTH resolves 'OK' or rejects: every reply was OK once all resolved.
    await Promise.all(replies);
    note(kind, from, performance.now() - start, cpuMs(cpu));
  };
  const profiler = new CpuProfiler();
  let profile: Profile;
  try {
    await rotation(); // warm-up
    profiler.start();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await rotation();
        await sleep(200);
        await burst('plain', 0);
        await sleep(200);
        await burst('spaced', SPACING_US);
      }
    } finally {
      profile = await profiler.stop();
    }
  } finally {
    provider.off('reauthenticated', countReauthenticated);
    await closeClients(clients);
    await closeClients(plainClients);
    provider.dispose();
  }
  const sampled = categorize(profile, windows, KINDS);
  const keep = process.env.ROTATION_COST_PROFILE;
  if (keep) {
    writeFileSync(`${keep}.${size}.cpuprofile`, JSON.stringify(profile));
    writeFileSync(`${keep}.${size}.windows.json`, JSON.stringify(windows));
  }
  const result: RotationCost = {
    clients: size,
    rounds: ROUNDS,
    kinds: Object.fromEntries(
      KINDS.map((kind) => [
        kind,
        {
          wallMs: summarize(figures[kind]?.wall ?? []),
          cpuMs: summarize(figures[kind]?.cpu ?? []),
          sampledMs: sampled[kind],
        },
      ]),
    ) as RotationCost['kinds'],
  };
  log(
    `rotation-cost ${size}: library ${num(result.kinds.library.wallMs.median, 1)} ms, plain ${num(
      result.kinds.plain.wallMs.median,
      1,
    )} ms, spaced ${num(result.kinds.spaced.wallMs.median, 1)} ms`,
  );
  return result;
}

export async function runRotationCost(bench: BenchWorld, log: (line: string) => void): Promise<RotationCostResult> {
  const sizes: RotationCost[] = [];
  for (const size of SIZES) sizes.push(await measureSize(bench, size, log));
  return { sizes };
}

export function renderRotationCost(result: RotationCostResult): string {
  const sections = result.sizes.map((s) => {
    const per = (kind: Kind, category: Category) => num(s.kinds[kind].sampledMs[category], 2);
    const rows = CATEGORIES.map((category) => [category, ...KINDS.map((kind) => per(kind, category))]);
    const sampledTotal = (kind: Kind) =>
      CATEGORIES.reduce((sum, category) => sum + s.kinds[kind].sampledMs[category], 0);
    rows.push(['**sampled in all**', ...KINDS.map((kind) => num(sampledTotal(kind), 2))]);
    rows.push(['wall time, median (range)', ...KINDS.map((kind) => range(s.kinds[kind].wallMs, 1))]);
    rows.push(['CPU time of the process, median (range)', ...KINDS.map((kind) => range(s.kinds[kind].cpuMs, 1))]);
    const library = s.kinds.library.sampledMs;
    const write = (kind: Kind) => s.kinds[kind].sampledMs['socket write'];
    return [
      `### ${num(s.clients)} connections, ${s.rounds} rounds (ms per rotation or burst)`,
      '',
      table(['', ...KINDS.map((kind) => KIND_LABELS[kind])], rows),
      '',
      `- The library's own code: ${num(library['library code'], 2)} ms, ${num(
        (library['library code'] * 1000) / s.clients,
        1,
      )} µs per connection.`,
      `- Socket writes: ${num(write('library'), 2)} ms in the rotation against ${num(write('plain'), 2)} ms for the ` +
        `plain AUTHs at once, and ${num(write('spaced'), 2)} ms for the same plain AUTHs with ${SPACING_US} µs of ` +
        'work between them.',
    ].join('\n');
  });
  return [
    '## Where the time of a rotation goes',
    '',
    'One rotation of N clients made by `createEntraRedis()` (from the credential handing over its token to the N-th ' +
      '`reauthenticated`), the same N AUTHs sent at once by plain ioredis clients (from the first call to the last ' +
      `reply), and those plain AUTHs with ${SPACING_US} µs of busy work between each two, about what the library's ` +
      'own code costs per connection. No load, no tracing subscribers, straight to redis-server, tokens from an ' +
      "in-process credential; rounds alternate the three. The run is CPU-profiled throughout (`node --cpu-prof`'s " +
      `profiler, a sample every ${SAMPLING_INTERVAL_US} µs) and each sample is counted by the function it was taken ` +
      "in: `socket write` is the write system call of the socket (writeUtf8String and its kin, with the kernel's " +
      "loopback delivery to redis-server inside it), `library code` is this library's functions, `ioredis` its " +
      "functions and its parser's; `idle, socket reads` is libuv's poll phase, which reads the replies. Figures are " +
      'means per rotation or burst (`bench/rotation-cost.ts`).',
    '',
    ...sections.flatMap((section) => [section, '']),
  ]
    .join('\n')
    .trimEnd();
}
