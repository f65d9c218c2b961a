/**
 * The differential property: for any generated sequence of application operations, a createEntraRedis() client
 * through the AMR emulator (short tokens, so rotations land while the sequence has left its connection in some state)
 * observes what a plain ioredis client observes against a redis-server whose password never changes.
 *
 * Failures print fast-check's seed and path, the (shrunk, unless shrinking is off) sequence, what differed, and the
 * command that replays exactly that case: DIFFERENTIAL_SEED=<seed> DIFFERENTIAL_PATH=<path>.
 */
import { Redis } from 'ioredis';
import fc from 'fast-check';
import { createEntraRedis } from '../../../lib/create-entra-redis.js';
import type { EntraCredentialsProvider } from '../../../lib/identity/credentials-provider.js';
import { startRedisServer, type RedisServerHandle } from '../../../lib/testing/redis-server.js';
import { nextEvent, World } from '../../../harness/world.js';
import { differences, plainLostTrack } from './compare.js';
import { sequenceArbitrary, type Protocol, type Sequence } from './operations.js';
import { runOnBoth, type Outcome, type Side } from './run-sequence.js';
import { serverExpiryOf } from '../amr-connections.js';

/**
 * Tokens of the emulated tenant: 6 s, refreshed at 15 % of their life (the refresher's floor makes that 1 s), so a new
 * token comes every ROTATION_INTERVAL_MS, with 2.8 to 3.8 s (REAUTH_WINDOW_MIN_MS..MAX_MS) left before the re-AUTH
 * deadline of the token it replaces (min(5 s, 20 %) = 1.2 s before its expiry; the JWT's expiry is in whole
 * seconds): frequent rotations, and a deadline far beyond the transactions the generator holds open (operations.ts).
 * Measured: rotations 1.00 s apart, each new token with 5.64-5.66 s left on arrival.
 */
export const TOKEN_LIFETIME_SECONDS = 6;
export const EXPIRATION_REFRESH_RATIO = 0.15;

/** The ioredis major under test and the RESP versions it speaks. */
export function protocolsUnderTest(): Protocol[] {
  return (process.env.IOREDIS_MAJOR ?? '5') === '6' ? [3, 2] : [2];
}

/** Both sides of the comparison, started once per file and reused by every run (each run flushes its server). */
export class DifferentialWorld {
  /** A plain ioredis client with a password that never changes (the server's admin ACL user). */
  readonly plain: Side;
  /** createEntraRedis() clients through the AMR emulator, sharing one provider. */
  readonly entra: Side;

  private constructor(
    readonly world: World,
    readonly plainServer: RedisServerHandle,
    readonly provider: EntraCredentialsProvider,
  ) {
    this.plain = {
      label: 'plain',
      server: plainServer,
      client: (options) => new Redis({ ...plainServer.adminClientOptions(), ...options }),
      rotation: async () => undefined,
      fault: async () => async () => undefined,
    };
    this.entra = {
      label: 'entra',
      server: world.redis,
      client: (options) => createEntraRedis({ ...world.endpoint, credentialsProvider: provider, ...options }),
      rotation: async () => {
        await nextEvent(provider, 'tokenRefreshed');
      },
      fault: async (kind) => {
        if (kind === 'outage') {
          await world.entra.setFault({ kind: 'status', status: 503 });
          return () => world.entra.clearFault();
        }
        const token = provider.currentToken();
        const held = token ? serverExpiryOf(token) : 0;
        world.amr.refuseTokens((claims) => Number(claims.exp) * 1000 > held);
        return async () => world.amr.refuseTokens(undefined);
      },
      watch: (note) => {
        const refreshed = () => note('token refreshed');
        const reauthenticated = (e: { connection: string; method: string }) =>
          note(`${e.connection} reauthenticated (${e.method})`);
        const failed = (e: { connection: string; error: unknown }) =>
          note(
            `${e.connection} reauthentication failed: ${e.error instanceof Error ? e.error.message : String(e.error)}`,
          );
        const expired = (info: { name?: string }) => note(`${info.name ?? '?'} closed by the server at token expiry`);
        provider.on('tokenRefreshed', refreshed);
        provider.on('reauthenticated', reauthenticated);
        provider.on('reauthenticationFailed', failed);
        world.amr.on('expired', expired);
        return () => {
          provider.off('tokenRefreshed', refreshed);
          provider.off('reauthenticated', reauthenticated);
          provider.off('reauthenticationFailed', failed);
          world.amr.off('expired', expired);
        };
      },
    };
  }

  static async start(): Promise<DifferentialWorld> {
    const world = await World.start({ tokenLifetimeSeconds: TOKEN_LIFETIME_SECONDS });
    const plainServer = await startRedisServer();
    return new DifferentialWorld(
      world,
      plainServer,
      world.provider({ tokenManagerOptions: { expirationRefreshRatio: EXPIRATION_REFRESH_RATIO } }),
    );
  }

  /**
   * Runs one sequence on both sides; the differences, empty when the library kept the promise, or undefined when
   * plain ioredis lost track of its own connection (no reference to compare with).
   */
  async compare(sequence: Sequence): Promise<string[] | undefined> {
    const { first, second } = await runOnBoth(this.plain, this.entra, sequence);
    if (plainLostTrack(first)) return undefined;
    const found = differences(first, second);
    // What happened on each side, for the reader of a failure.
    if (found.length > 0)
      for (const outcome of [first, second])
        found.push(`timeline (${outcome === first ? 'plain' : 'entra'}): ${outcome.timeline.join('; ')}`);
    return found;
  }

  /** Runs one sequence on both sides and returns what each observed. */
  async outcomes(sequence: Sequence): Promise<{ plain: Outcome; entra: Outcome }> {
    const { first, second } = await runOnBoth(this.plain, this.entra, sequence);
    return { plain: first, entra: second };
  }

  async stop(): Promise<void> {
    await this.world.stop();
    await this.plainServer.stop();
  }
}

export interface CheckOptions {
  numRuns: number;
  seed?: number;
  path?: string;
  /** Shrink a failure to a smallest sequence (each step runs a sequence: minutes for a long one). */
  shrink: boolean;
  maxLength?: number;
  /** Prints every run's sequence as it starts. */
  verbose?: boolean;
}

/** Options from DIFFERENTIAL_SEED / DIFFERENTIAL_PATH / DIFFERENTIAL_RUNS / DIFFERENTIAL_SHRINK, over `defaults`. */
export function checkOptionsFromEnv(defaults: CheckOptions): CheckOptions {
  const env = process.env;
  const options: CheckOptions = { ...defaults };
  if (env.DIFFERENTIAL_RUNS) options.numRuns = Number(env.DIFFERENTIAL_RUNS);
  if (env.DIFFERENTIAL_SEED) options.seed = Number(env.DIFFERENTIAL_SEED);
  if (env.DIFFERENTIAL_PATH) options.path = env.DIFFERENTIAL_PATH;
  if (env.DIFFERENTIAL_SHRINK) options.shrink = env.DIFFERENTIAL_SHRINK !== '0';
  if (env.DIFFERENTIAL_VERBOSE) options.verbose = env.DIFFERENTIAL_VERBOSE !== '0';
  return options;
}

/** The property over sequences on the protocols of the ioredis major under test. */
export function differentialProperty(
  world: DifferentialWorld,
  options: Pick<CheckOptions, 'maxLength' | 'verbose'> = {},
) {
  let run = 0;
  return fc.asyncProperty(sequenceArbitrary(protocolsUnderTest(), options.maxLength), async (sequence) => {
    run += 1;
    if (options.verbose) console.log(`run ${run}: ${fc.stringify(sequence)}`);
    const found = await world.compare(sequence);
    fc.pre(found !== undefined);
    if (found.length > 0) throw new Error(found.join('\n'));
  });
}

/** Checks the property; throws a report (seed, path, counterexample, differences, replay command) on failure. */
export async function checkDifferential(world: DifferentialWorld, options: CheckOptions): Promise<{ numRuns: number }> {
  const details = await fc.check(differentialProperty(world, options), {
    numRuns: options.numRuns,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.path !== undefined ? { path: options.path } : {}),
    endOnFailure: !options.shrink,
  });
  if (!details.failed) return { numRuns: details.numRuns };
  if (details.counterexample === null)
    throw new Error(`differential property failed without a counterexample (interrupted: ${details.interrupted})`);
  const [sequence] = details.counterexample;
  const message =
    details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(
    [
      `the library's client observed something a plain ioredis client does not (ioredis ${process.env.IOREDIS_MAJOR ?? '5'}, ` +
        `after ${details.numRuns} runs, ${details.numShrinks} shrinks)`,
      `  seed ${details.seed}, path "${details.counterexamplePath}"`,
      `  replay: DIFFERENTIAL_SEED=${details.seed} DIFFERENTIAL_PATH=${details.counterexamplePath} ` +
        `node scripts/test.mjs --ioredis ${process.env.IOREDIS_MAJOR ?? '5'} spec/binding/differential.test.ts`,
      `  sequence: ${fc.stringify(sequence)}`,
      ...message.split('\n').map((line) => `  ${line}`),
    ].join('\n'),
  );
}

/**
 * Runs `numRuns` generated sequences without stopping at the first failure and prints every failing one with the seed
 * and path that replay it (fast-check's path of the i-th value generated from a seed is "i"): for surveying what is
 * broken when one frequent failure would hide the others.
 */
export async function collectFailures(world: DifferentialWorld, options: CheckOptions): Promise<number> {
  const seed = options.seed ?? Date.now() ^ (Math.random() * 0x100000000);
  const sequences = fc.sample(sequenceArbitrary(protocolsUnderTest(), options.maxLength), {
    numRuns: options.numRuns,
    seed,
  });
  let failures = 0;
  for (const [index, sequence] of sequences.entries()) {
    const found = await world.compare(sequence);
    if (found === undefined || found.length === 0) continue;
    failures += 1;
    console.log(
      [
        `FAILED seed ${seed}, path "${index}"`,
        `  sequence: ${fc.stringify(sequence)}`,
        ...found.map((line) => `  ${line}`),
      ].join('\n'),
    );
  }
  console.log(`differential survey: ${failures} of ${sequences.length} sequences failed (seed ${seed})`);
  return failures;
}
