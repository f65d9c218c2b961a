// ioredis majors: 5, 6
/**
 * Differential property-based test of the library's promise: for any sequence of operations an application performs
 * on a client made by createEntraRedis(), the replies, messages and errors it observes are those a plain ioredis client
 * observes against a server whose tokens never expire (spec/support/differential/).
 *
 *   bounded run (here):  DIFFERENTIAL_RUNS (default below), a failure is reported unshrunk with its seed and path
 *   replay one case:     DIFFERENTIAL_SEED=<seed> DIFFERENTIAL_PATH=<path> node scripts/test.mjs spec/binding/differential.test.ts
 *   long run:            npm run test:differential -- --runs 200   (shrinks failures)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PAST_DEADLINE_DELAY_MS as PAST_DEADLINE_MS, type Sequence } from '../support/differential/operations.js';
import {
  checkDifferential,
  checkOptionsFromEnv,
  collectFailures,
  DifferentialWorld,
} from '../support/differential/property.js';

/** Runs of the bounded property in the regular suite: about 2-3 s each, most of it waiting for token rotations. */
const BOUNDED_RUNS = 15;

let world: DifferentialWorld;
before(async () => {
  world = await DifferentialWorld.start();
});
after(async () => {
  await world.stop();
});

describe('differential: a createEntraRedis() client observes what a plain ioredis client observes', () => {
  it(`generated sequences of commands, transactions, subscriptions, blocking pops, rotations, drops and token-side faults`, async () => {
    const options = checkOptionsFromEnv({ numRuns: BOUNDED_RUNS, shrink: false });
    if (process.env.DIFFERENTIAL_SURVEY === '1') {
      if ((await collectFailures(world, options)) > 0) throw new Error('some sequences failed: see the output');
      return;
    }
    const { numRuns } = await checkDifferential(world, options);
    console.log(`differential: ${numRuns} runs passed`);
  });
});

/**
 * Counterexamples the property found on the library, shrunk, replayed by hand (a seed and path would change meaning
 * with the generator). RESP2 ones run on both ioredis majors. Each was a difference until the library was fixed; they
 * stay as regression tests.
 */
const REGRESSIONS: Array<{ name: string; sequence: Sequence }> = [
  {
    // was: plain exec -> [[null, 'OK']]; entra [[null, 'OK'], [null, 'OK']]
    name: 'an AUTH answered QUEUED joins a multi({ pipeline: false }) transaction: its OK is an extra EXEC element',
    sequence: {
      protocol: 2,
      operations: [
        {
          op: 'transaction',
          client: 'a',
          form: 'multi-no-pipeline',
          steps: [{ pause: 'rotation' }, { c: 'set', key: 'k1', value: 'x' }],
          end: 'exec',
          watch: undefined,
        },
      ],
    },
  },
  {
    // was: plain EXEC -> [1]; entra [1, 'OK']
    name: "an AUTH answered QUEUED joins a call('MULTI') transaction: its OK is an extra EXEC element",
    sequence: {
      protocol: 2,
      operations: [
        {
          op: 'transaction',
          client: 'a',
          form: 'call',
          steps: [{ c: 'incr', key: 'k2' }, { pause: 'rotation' }],
          end: 'exec',
          watch: undefined,
        },
      ],
    },
  },
  {
    // was: plain GETNAME -> 'a-n1'; entra 'a' (the library reconnected the blocked connection at the re-AUTH deadline
    // and restored the handshake's name, connectionName, instead of the one the application set)
    name: 'a BLPOP blocked across a rotation is reconnected by the library: the name given by CLIENT SETNAME is lost',
    sequence: {
      protocol: 2,
      operations: [
        { op: 'setname', client: 'a', name: 'a-n1' },
        { op: 'blpop', client: 'a', during: [{ pause: 'rotation' }, { pause: 'delay', ms: PAST_DEADLINE_MS }] },
        { op: 'getname', client: 'a' },
      ],
    },
  },
  {
    // was: plain PUBLISH ch1 -> 0; entra 1 (the failed handover's shadow connection was still subscribed to ch1 after
    // the application unsubscribed from everything)
    name: 'a RESP2 subscriber dropped right after a rotation: after UNSUBSCRIBE, PUBLISH still counts a subscriber',
    sequence: {
      protocol: 2,
      operations: [
        { op: 'subscribe', client: 'a', kind: 'subscribe', names: ['ch1'] },
        { op: 'rotation' },
        { op: 'drop', client: 'a' },
        { op: 'unsubscribe', client: 'a', kind: 'unsubscribe', names: [] },
        { op: 'publish', kind: 'publish', channel: 'ch1' },
      ],
    },
  },
  {
    // was: entra left the handover's connections ('b:handover', 'b:shadow') open after disconnect() until the phase's
    // time bound (up to 15 s), when the client was closed while its handover reconnected or joined it; 8 ms after the
    // rotation lands in those phases in about 2 runs out of 3 here
    name: 'a RESP2 subscriber disconnected while handed over leaves no handover connection open',
    sequence: {
      protocol: 2,
      operations: [
        { op: 'subscribe', client: 'b', kind: 'subscribe', names: ['ch1'] },
        { op: 'rotation' },
        { op: 'delay', ms: 8 },
      ],
    },
  },
  {
    // was: plain SUBSCRIBE ch2 -> 2; entra 3 (the handover's marker channel was counted among the application's)
    name: "SUBSCRIBE right after a rotation of a RESP2 subscriber counts the handover's private channel in its reply",
    sequence: {
      protocol: 2,
      operations: [
        { op: 'subscribe', client: 'a', kind: 'subscribe', names: ['ch1'] },
        { op: 'rotation' },
        { op: 'subscribe', client: 'a', kind: 'subscribe', names: ['ch2'] },
      ],
    },
  },
  {
    // was: plain nothing; entra b's listener for pattern '*' got the private marker messages of a's handover
    name: "a pattern subscriber receives the marker messages of another client's RESP2 handover",
    sequence: {
      protocol: 2,
      operations: [
        { op: 'subscribe', client: 'b', kind: 'psubscribe', names: ['*'] },
        { op: 'subscribe', client: 'a', kind: 'subscribe', names: ['ch1'] },
        { op: 'rotation' },
        { op: 'delay', ms: 300 },
      ],
    },
  },
  {
    // was: plain SSUBSCRIBE sh2 -> 2, SUNSUBSCRIBE sh1 -> 1; entra 3 and 2 (the sharded marker of a connection with
    // sharded channels only was counted among them)
    name: "SSUBSCRIBE and SUNSUBSCRIBE right after a rotation of a RESP2 sharded subscriber count the handover's private channel",
    sequence: {
      protocol: 2,
      operations: [
        { op: 'subscribe', client: 'a', kind: 'ssubscribe', names: ['sh1'] },
        { op: 'rotation' },
        { op: 'subscribe', client: 'a', kind: 'ssubscribe', names: ['sh2'] },
        { op: 'unsubscribe', client: 'a', kind: 'sunsubscribe', names: ['sh1'] },
        { op: 'publish', kind: 'spublish', channel: 'sh2' },
      ],
    },
  },
  {
    // was: entra 'error' events of a: WRONGPASS, WRONGPASS, and the message lost (the handover's connection was
    // refused the new token, and the fallback reconnected the subscriber with that token, in a loop)
    name: 'a RESP2 subscriber while the server refuses new tokens: no reconnect with a refused token',
    sequence: {
      protocol: 2,
      operations: [
        { op: 'subscribe', client: 'a', kind: 'subscribe', names: ['ch1'] },
        { op: 'fault', kind: 'refusal', ms: 1_200 },
        { op: 'rotation' },
        { op: 'publish', kind: 'publish', channel: 'ch1' },
      ],
    },
  },
];

describe('differential: shrunk counterexamples, fixed', () => {
  for (const { name, sequence } of REGRESSIONS) {
    it(name, async () => {
      assert.deepEqual(await world.compare(sequence), []);
    });
  }
});

/**
 * Counterexamples not fixed yet, marked `todo` with what they show, so that they are reported on every run without
 * failing the suite; the mark comes off with the fix.
 */
const KNOWN_FAILURES: Array<{ name: string; sequence: Sequence }> = [];

describe('differential: known failures until fixed (shrunk counterexamples)', () => {
  for (const { name, sequence } of KNOWN_FAILURES) {
    it(name, { todo: 'known failure until fixed' }, async () => {
      assert.deepEqual(await world.compare(sequence), []);
    });
  }
});

describe('differential: the documented limit (docs/guarantees.md, "Not guaranteed")', () => {
  it('a transaction held open past the re-AUTH deadline is lost to the reconnect, as on any dropped connection', async () => {
    // MULTI, a rotation, then the transaction stays open past the deadline of the token the connection held: the
    // library reconnects it with the fresh token, the server drops the transaction with the old connection, and what
    // follows runs outside it, as after any dropped connection.
    const sequence: Sequence = {
      protocol: 2,
      operations: [
        {
          op: 'transaction',
          client: 'a',
          form: 'call',
          steps: [{ pause: 'rotation' }, { pause: 'delay', ms: PAST_DEADLINE_MS }, { c: 'set', key: 'k1', value: 'x' }],
          end: 'discard',
          watch: undefined,
        },
        { op: 'command', client: 'a', command: { c: 'get', key: 'k1' } },
      ],
    };
    const { plain, entra } = await world.outcomes(sequence);
    const replies = (outcome: typeof plain) =>
      outcome.replies.map(({ at, value }) => `${at} -> ${JSON.stringify(value)}`);
    assert.deepEqual(replies(plain).slice(0, 4), [
      '0 transaction a multi -> "OK"',
      '0 transaction a set k1 x -> "QUEUED"',
      '0 transaction a discard -> "OK"',
      '1 command a get k1 -> null',
    ]);
    assert.deepEqual(replies(entra).slice(0, 4), [
      '0 transaction a multi -> "OK"',
      '0 transaction a set k1 x -> "OK"',
      '0 transaction a discard -> {"error":"ERR DISCARD without MULTI"}',
      '1 command a get k1 -> "x"',
    ]);
  });
});
