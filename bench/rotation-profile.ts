/**
 * One rotation of N connections, measured against the same N AUTHs sent by plain ioredis, without load and without
 * tracing subscribers: what a rotation costs the library and nothing else. N clients made by `createEntraRedis()`
 * share one provider and connect straight to redis-server; tokens come from an in-process credential (no HTTP), so a
 * rotation starts when the credential hands the token over. Each round: one rotation (token to the N-th
 * `reauthenticated`), then, once it is over, `redis.auth()` at once on N plain `new Redis()` clients connected to
 * the same server (call to the N-th reply).
 *
 *   node --import tsx bench/rotation-profile.ts [N=1000] [rounds=8]
 *   ROTATION_PROFILE=rotation.cpuprofile node --import tsx bench/rotation-profile.ts 1000 3
 *
 * With ROTATION_PROFILE, the last rotation and the last plain burst are CPU-profiled (node:inspector, the same
 * profiler as `node --cpu-prof`), each into its own file (`.rotation` and `.plain` before the extension).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { Redis } from 'ioredis';
import { createCredentialsProvider, createEntraRedis } from '../lib/index.js';
import { createSigningKey, signJwt } from '../lib/testing/jwt.js';
import { startRedisServer } from '../lib/testing/redis-server.js';
import { closeClients, openClients, sleep } from './support/clients.js';
import { summarize } from './support/stats.js';

const N = Number(process.argv[2] ?? 1_000);
const ROUNDS = Number(process.argv[3] ?? 8);
const PROFILE = process.env.ROTATION_PROFILE;
const TOKEN_LIFETIME_S = 4;
const OID = '00000000-0000-4000-8000-000000000014';

/** Mints a token per call and notes when it handed it over. */
class MintingCredential implements TokenCredential {
  readonly #key = createSigningKey();
  lastTokenAt = Number.NaN;
  onToken: (() => void) | undefined;

  async getToken(): Promise<AccessToken> {
    const now = Date.now();
    const exp = Math.floor(now / 1000) + TOKEN_LIFETIME_S;
    const token = signJwt(
      { oid: OID, aud: 'https://redis.azure.com', exp, iat: Math.floor(now / 1000), nonce: Math.random() },
      this.#key,
    );
    this.onToken?.();
    this.lastTokenAt = performance.now();
    return { token, expiresOnTimestamp: exp * 1000 };
  }
}

/**
 * CPU profile of what runs between start() and stop(): node:inspector's profiler, the one `node --cpu-prof` uses.
 * A session on the main thread answers `post` synchronously, so start() can run inside the credential's call.
 */
class Profiler {
  readonly #session = new Session();
  #file: string | undefined;

  constructor() {
    this.#session.connect();
    this.#session.post('Profiler.enable');
    this.#session.post('Profiler.setSamplingInterval', { interval: 50 });
  }

  start(file: string): void {
    this.#file = file;
    this.#session.post('Profiler.start');
  }

  stop(): void {
    const file = this.#file;
    if (!file) return;
    this.#file = undefined;
    this.#session.post('Profiler.stop', (error, result) => {
      if (!error) writeFileSync(file, JSON.stringify(result.profile));
    });
  }

  disconnect(): void {
    this.#session.disconnect();
  }
}

const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

async function main(): Promise<void> {
  const server = await startRedisServer();
  await server.command('ACL', 'SETUSER', OID, 'on', 'nopass', '~*', '&*', '+@all');
  const credential = new MintingCredential();
  const provider = createCredentialsProvider({
    credential,
    tokenManagerOptions: { expirationRefreshRatio: 0.5, refreshJitter: 0 },
  });
  const profiler = PROFILE ? new Profiler() : undefined;
  const profileFile = (kind: string) => (PROFILE ?? '').replace(/(\.cpuprofile)?$/, `.${kind}.cpuprofile`);
  // Probes: the first subscriber and the last one, so the hand-out to the clients lies between them.
  let handedFirstAt = Number.NaN;
  let handedLastAt = Number.NaN;
  provider.subscribe({
    onToken: () => {
      handedFirstAt = performance.now();
    },
  });
  const clients = await openClients(N, () =>
    createEntraRedis({ host: server.host, port: server.port, credentialsProvider: provider }),
  );
  provider.subscribe({
    onToken: () => {
      handedLastAt = performance.now();
    },
  });
  // The floor: the same N AUTHs from plain ioredis clients, nothing of this library on their path.
  const first = await provider.getToken();
  const plainClients = await openClients(
    N,
    () =>
      new Redis({
        host: server.host,
        port: server.port,
        username: first.username,
        password: first.password,
      }),
  );
  let reauthenticated = 0;
  let onAll: (() => void) | undefined;
  provider.on('reauthenticated', () => {
    if (++reauthenticated === N) onAll?.();
  });
  let tokenCpu = process.cpuUsage();
  credential.onToken = () => {
    tokenCpu = process.cpuUsage();
  };
  /** The next rotation: wall and CPU ms from the credential's token to the N-th `reauthenticated`. */
  const rotation = () =>
    new Promise<{ ms: number; cpu: number; toFirst: number; writing: number; tail: number }>((resolve) => {
      reauthenticated = 0;
      onAll = () => {
        const now = performance.now();
        const result = {
          ms: now - credential.lastTokenAt,
          cpu: cpuMs(tokenCpu),
          toFirst: handedFirstAt - credential.lastTokenAt,
          writing: handedLastAt - handedFirstAt,
          tail: now - handedLastAt,
        };
        profiler?.stop();
        resolve(result);
      };
    });
  // Windows of each rotation and each plain burst, in process.hrtime µs (the clock of CPU profiles), for analysis.
  const windows: { kind: string; from: number; to: number }[] = [];
  const hrMicros = () => Number(process.hrtime.bigint() / 1000n);
  let rotationStartedHr = 0;
  const rows: { library: number; libraryCpu: number; plain: number; plainCpu: number }[] = [];
  try {
    await rotation(); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      const last = round === ROUNDS - 1;
      credential.onToken = () => {
        if (last && profiler) profiler.start(profileFile('rotation'));
        tokenCpu = process.cpuUsage();
        rotationStartedHr = hrMicros();
      };
      const library = await rotation();
      windows.push({ kind: 'library', from: rotationStartedHr, to: hrMicros() });
      await sleep(200);
      const token = provider.currentToken();
      if (!token) throw new Error('no token');
      if (last && profiler) profiler.start(profileFile('plain'));
      const cpu = process.cpuUsage();
      const plainStartedHr = hrMicros();
      const start = performance.now();
      const pending = plainClients.map((client: Redis) => client.auth(token.username, token.password));
      const written = performance.now() - start;
      // AUTH resolves 'OK' or rejects, so every reply was OK once they all resolved.
      await Promise.all(pending);
      const plain = { ms: performance.now() - start, cpu: cpuMs(cpu), written };
      windows.push({ kind: 'plain', from: plainStartedHr, to: hrMicros() });
      profiler?.stop();
      if (process.env.ROTATION_ENTRA_BURST) {
        // The same burst on the library's clients: what their instances cost ioredis, without the library's logic.
        await sleep(100);
        const cpu2 = process.cpuUsage();
        const from = hrMicros();
        const start2 = performance.now();
        await Promise.all(clients.map((client: Redis) => client.auth(token.username, token.password)));
        process.stderr.write(
          `  burst on entra clients: ${(performance.now() - start2).toFixed(1)} ms (CPU ${cpuMs(cpu2).toFixed(1)})\n`,
        );
        windows.push({ kind: 'entra-burst', from, to: hrMicros() });
      }
      rows.push({ library: library.ms, libraryCpu: library.cpu, plain: plain.ms, plainCpu: plain.cpu });
      process.stderr.write(
        `round ${round + 1}: library ${library.ms.toFixed(1)} ms (CPU ${library.cpu.toFixed(1)}), ` +
          `plain ${plain.ms.toFixed(1)} ms (CPU ${plain.cpu.toFixed(1)}), ratio ${(library.ms / plain.ms).toFixed(2)}; ` +
          `library token->first ${library.toFirst.toFixed(2)}, writing ${library.writing.toFixed(1)}, tail ${library.tail.toFixed(1)}; ` +
          `plain writing ${plain.written.toFixed(1)}\n`,
      );
    }
    const fmt = (values: number[], digits: number) => {
      const s = summarize(values);
      return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
    };
    process.stdout.write(
      `N=${N}, ${ROUNDS} rounds: library ${fmt(
        rows.map((r) => r.library),
        1,
      )} ms ` +
        `(CPU ${fmt(
          rows.map((r) => r.libraryCpu),
          1,
        )}), plain ${fmt(
          rows.map((r) => r.plain),
          1,
        )} ms ` +
        `(CPU ${fmt(
          rows.map((r) => r.plainCpu),
          1,
        )}), ratio ${fmt(
          rows.map((r) => r.library / r.plain),
          2,
        )}, ` +
        `CPU ratio ${fmt(
          rows.map((r) => r.libraryCpu / r.plainCpu),
          2,
        )}\n`,
    );
    if (process.env.ROTATION_WINDOWS) writeFileSync(process.env.ROTATION_WINDOWS, JSON.stringify(windows));
  } finally {
    await closeClients(clients);
    await closeClients(plainClients);
    provider.dispose();
    profiler?.disconnect();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error instanceof Error ? error.stack : undefined) ?? String(error)}\n`);
  process.exitCode = 1;
});
