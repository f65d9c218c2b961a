/**
 * Differential property-based test of the library's promise: for any sequence of operations an application performs
 * on a client made by createEntraRedis(), the replies, messages and errors it observes are those a plain ioredis client
 * observes against a server whose tokens never expire (spec/support/differential/).
 *
 *   bounded run (here):  DIFFERENTIAL_RUNS (default below), a failure is reported unshrunk with its seed and path
 *   replay one case:     DIFFERENTIAL_SEED=<seed> DIFFERENTIAL_PATH=<path> node scripts/test.mjs spec/binding/differential.test.ts
 *   long run:            npm run test:differential -- --runs 200   (shrinks failures)
 */
import { after, before, describe, it } from 'node:test';
import { checkDifferential, checkOptionsFromEnv, collectFailures, DifferentialWorld } from '../support/differential/property.js';

/** Runs of the bounded property in the regular suite: about 2-3 s each, most of it waiting for token rotations. */
const BOUNDED_RUNS = 10;

let world: DifferentialWorld;
before(async () => { world = await DifferentialWorld.start(); });
after(async () => { await world.stop(); });

describe('differential: a createEntraRedis() client observes what a plain ioredis client observes', () => {
  it(`generated sequences of commands, transactions, subscriptions, blocking pops, rotations and drops`, async () => {
    const options = checkOptionsFromEnv({ numRuns: BOUNDED_RUNS, shrink: false });
    if (process.env.DIFFERENTIAL_SURVEY === '1') {
      if (await collectFailures(world, options) > 0) throw new Error('some sequences failed: see the output');
      return;
    }
    const { numRuns } = await checkDifferential(world, options);
    console.log(`differential: ${numRuns} runs passed`);
  });
});
