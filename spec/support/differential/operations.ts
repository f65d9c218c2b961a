/**
 * The application operations of the differential test, and fast-check arbitraries that generate sequences of them.
 *
 * An operation is what an application does with its clients: commands, pipelines, transactions in every form,
 * subscriptions, publishing, a blocking pop, SELECT, CLIENT SETNAME/GETNAME. Pauses are what happens to it meanwhile:
 * a token rotation (the next `tokenRefreshed`), a dropped connection (CLIENT KILL on the server) or a small delay.
 * A fault of the token side (the token service down, or the server refusing new tokens) starts at one operation and
 * lasts while the following ones run.
 * Pauses appear between operations and inside them (between the commands of an open transaction, between WATCH and
 * MULTI, while a BLPOP is blocked), so that a rotation or a drop lands while the connection is in that state.
 */
import fc from 'fast-check';

/** Time between token rotations in the differential test, ms (property.ts chooses the tokens that give it). */
export const ROTATION_INTERVAL_MS = 1_000;
/**
 * From a rotation to the re-AUTH deadline of the token it replaces, ms: at least the first, at most the second (a
 * JWT's expiry is in whole seconds, so a token's life is up to a second shorter than the tenant's lifetime).
 */
export const REAUTH_WINDOW_MIN_MS = 2_800;
export const REAUTH_WINDOW_MAX_MS = 3_800;
/** Longest delay between the commands of an open transaction, ms. */
const TRANSACTION_DELAY_MAX_MS = 150;
/** A delay that carries a blocked connection past the re-AUTH deadline after a rotation, ms. */
export const PAST_DEADLINE_DELAY_MS = REAUTH_WINDOW_MAX_MS + 700;

/** The application's two clients. Each has its own connection (name `a` or `b` on the server). */
export type AppClient = 'a' | 'b';
export type Key = 'k1' | 'k2' | 'k3';
export type Protocol = 2 | 3;

export type Command =
  { c: 'set'; key: Key; value: string } | { c: 'get'; key: Key } | { c: 'incr'; key: Key } | { c: 'del'; key: Key };

export type Pause =
  | { pause: 'rotation' }
  /** The connection of the client the pause happens to is killed on the server. */
  | { pause: 'drop' }
  | { pause: 'delay'; ms: number };

/** WATCH before a transaction: optionally a conflicting write by another client, an UNWATCH, a pause before MULTI. */
export interface Watch {
  key: Key;
  conflict: boolean;
  unwatch: boolean;
  pause: Pause | undefined;
}

export type FaultKind = 'outage' | 'refusal';
/**
 * Longest token-side fault, ms. A fault leaves the connections on the token they hold (at least about 4.6 s of it
 * left when the fault starts: a new one comes every second); the next token after the fault, a second later at most,
 * is applied well before that token's re-AUTH deadline. At most one fault per sequence, so that they do not add up.
 */
export const FAULT_MAX_MS = 1_200;

export type SubscribeKind = 'subscribe' | 'psubscribe' | 'ssubscribe';
export type UnsubscribeKind = 'unsubscribe' | 'punsubscribe' | 'sunsubscribe';

export type Operation =
  | { op: 'command'; client: AppClient; command: Command }
  | { op: 'pipeline'; client: AppClient; commands: Command[] }
  /** `multi()`: MULTI, the commands and EXEC written together. */
  | { op: 'multi'; client: AppClient; commands: Command[]; watch: Watch | undefined }
  /** `multi({ pipeline: false })` or `call('MULTI')`, then each command awaited, pauses between, EXEC or DISCARD. */
  | {
      op: 'transaction';
      client: AppClient;
      form: 'multi-no-pipeline' | 'call';
      steps: Array<Command | Pause>;
      end: 'exec' | 'discard';
      watch: Watch | undefined;
    }
  | { op: 'subscribe'; client: AppClient; kind: SubscribeKind; names: string[] }
  | { op: 'unsubscribe'; client: AppClient; kind: UnsubscribeKind; names: string[] }
  /** PUBLISH / SPUBLISH from a separate publisher client. */
  | { op: 'publish'; kind: 'publish' | 'spublish'; channel: string }
  /** BLPOP with a timeout longer than the test; the pauses happen while it is blocked, then another client pushes. */
  | { op: 'blpop'; client: AppClient; during: Pause[] }
  /** BLPOP on a list nobody pushes to: answered nil at its timeout. */
  | { op: 'blpop-timeout'; client: AppClient; seconds: number }
  | { op: 'select'; client: AppClient; db: 0 | 1 }
  | { op: 'setname'; client: AppClient; name: string }
  | { op: 'getname'; client: AppClient }
  | { op: 'ping'; client: AppClient }
  | { op: 'rotation' }
  /**
   * A fault of the token side that lasts `ms` while the sequence goes on (not awaited): the token service answers 503
   * ('outage'), or the server refuses every token newer than the current one ('refusal'). Nothing on the plain side.
   */
  | { op: 'fault'; kind: FaultKind; ms: number }
  | { op: 'drop'; client: AppClient }
  | { op: 'delay'; ms: number };

export interface Sequence {
  /** RESP version the application's clients speak (ioredis 5: always 2). */
  protocol: Protocol;
  operations: Operation[];
}

export const CHANNELS = ['ch1', 'ch2'];
/** `*` also matches channels of anything else that publishes on the server: nothing else must reach the application. */
export const PATTERNS = ['ch*', '*'];
export const SHARD_CHANNELS = ['sh1', 'sh2'];

const client = fc.constantFrom<AppClient>('a', 'b');
const key = fc.constantFrom<Key>('k1', 'k2', 'k3');

export const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ c: fc.constant('set' as const), key, value: fc.constantFrom('x', 'y', '7') }),
  fc.record({ c: fc.constant('get' as const), key }),
  fc.record({ c: fc.constant('incr' as const), key }),
  fc.record({ c: fc.constant('del' as const), key }),
);

export const pauseArbitrary: fc.Arbitrary<Pause> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ pause: 'rotation' as const }) },
  { weight: 1, arbitrary: fc.constant({ pause: 'drop' as const }) },
  { weight: 2, arbitrary: fc.record({ pause: fc.constant('delay' as const), ms: fc.integer({ min: 0, max: 500 }) }) },
);

/**
 * Pauses inside an open transaction. A transaction the application holds open across a new token's re-AUTH deadline
 * is lost to a reconnect (a documented limit, pinned by its own test): the generated ones close well before it. With
 * the test's tokens (property.ts) a new token leaves its connection at least REAUTH_WINDOW_MIN_MS before that
 * deadline, and rotations come ROTATION_INTERVAL_MS apart; a transaction holds at most one rotation pause (which may
 * wait a whole interval, after a rotation that landed at its start) and short delays, so it stays open about
 * ROTATION_INTERVAL_MS + 3 × 150 ms at most: half the window.
 */
const transactionPauseArbitrary: fc.Arbitrary<Pause> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ pause: 'rotation' as const }) },
  { weight: 1, arbitrary: fc.constant({ pause: 'drop' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      pause: fc.constant('delay' as const),
      ms: fc.integer({ min: 0, max: TRANSACTION_DELAY_MAX_MS }),
    }),
  },
);

/**
 * Pauses while a BLPOP is blocked: also a long delay, past the re-AUTH deadline of a rotation, where the library
 * reconnects the blocked connection with the fresh token (at most one: with a rotation before it, the BLPOP is answered
 * by the push well within its own timeout on both sides).
 */
const blockedPauseArbitrary: fc.Arbitrary<Pause> = fc.oneof(
  { weight: 4, arbitrary: pauseArbitrary },
  { weight: 1, arbitrary: fc.constant({ pause: 'delay' as const, ms: PAST_DEADLINE_DELAY_MS }) },
);

const watchArbitrary: fc.Arbitrary<Watch | undefined> = fc.option(
  fc.record({
    key,
    conflict: fc.boolean(),
    unwatch: fc.boolean(),
    pause: fc.option(pauseArbitrary, { nil: undefined }),
  }),
  { nil: undefined, freq: 2 },
);

function namesOf(kind: SubscribeKind | UnsubscribeKind): string[] {
  if (kind.startsWith('p')) return PATTERNS;
  if (kind.startsWith('s')) return SHARD_CHANNELS;
  return CHANNELS;
}

const subscribeArbitrary = fc.constantFrom<SubscribeKind>('subscribe', 'psubscribe', 'ssubscribe').chain((kind) =>
  fc.record({
    op: fc.constant('subscribe' as const),
    client,
    kind: fc.constant(kind),
    names: fc.subarray(namesOf(kind), { minLength: 1 }),
  }),
);

// Always with names: UNSUBSCRIBE/PUNSUBSCRIBE without any, on a connection with no subscription of that kind but some
// of another, leaves plain ioredis waiting for replies that never come (its later commands get the wrong replies).
const unsubscribeArbitrary = fc
  .constantFrom<UnsubscribeKind>('unsubscribe', 'punsubscribe', 'sunsubscribe')
  .chain((kind) =>
    fc.record({
      op: fc.constant('unsubscribe' as const),
      client,
      kind: fc.constant(kind),
      names: fc.subarray(namesOf(kind), { minLength: 1 }),
    }),
  );

const publishArbitrary = fc.oneof(
  fc.record({
    op: fc.constant('publish' as const),
    kind: fc.constant('publish' as const),
    channel: fc.constantFrom(...CHANNELS),
  }),
  fc.record({
    op: fc.constant('publish' as const),
    kind: fc.constant('spublish' as const),
    channel: fc.constantFrom(...SHARD_CHANNELS),
  }),
);

/** A transaction's steps: commands and pauses, at most one of them a rotation (see transactionPauseArbitrary). */
const transactionStepsArbitrary: fc.Arbitrary<Array<Command | Pause>> = fc
  .array(fc.oneof({ weight: 2, arbitrary: commandArbitrary }, { weight: 1, arbitrary: transactionPauseArbitrary }), {
    minLength: 1,
    maxLength: 4,
  })
  .filter((steps) => steps.filter((step) => 'pause' in step && step.pause === 'rotation').length <= 1);

export const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('command' as const), client, command: commandArbitrary }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('pipeline' as const),
      client,
      commands: fc.array(commandArbitrary, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('multi' as const),
      client,
      commands: fc.array(commandArbitrary, { minLength: 1, maxLength: 3 }),
      watch: watchArbitrary,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('transaction' as const),
      client,
      form: fc.constantFrom('multi-no-pipeline' as const, 'call' as const),
      steps: transactionStepsArbitrary,
      end: fc.constantFrom('exec' as const, 'discard' as const),
      watch: watchArbitrary,
    }),
  },
  { weight: 3, arbitrary: subscribeArbitrary },
  { weight: 2, arbitrary: unsubscribeArbitrary },
  { weight: 4, arbitrary: publishArbitrary },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('blpop' as const),
      client,
      during: fc
        .array(blockedPauseArbitrary, { minLength: 1, maxLength: 2 })
        .filter(
          (pauses) =>
            pauses.filter((pause) => pause.pause === 'delay' && pause.ms === PAST_DEADLINE_DELAY_MS).length <= 1,
        ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('blpop-timeout' as const), client, seconds: fc.constantFrom(0.1, 0.3) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('select' as const), client, db: fc.constantFrom<0 | 1>(0, 1) }) },
  {
    weight: 1,
    arbitrary: client.chain((c) =>
      fc.record({
        op: fc.constant('setname' as const),
        client: fc.constant(c),
        name: fc.constantFrom(`${c}-n1`, `${c}-n2`),
      }),
    ),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('getname' as const), client }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('ping' as const), client }) },
  { weight: 4, arbitrary: fc.constant({ op: 'rotation' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('fault' as const),
      kind: fc.constantFrom<FaultKind>('outage', 'refusal'),
      ms: fc.integer({ min: 100, max: FAULT_MAX_MS }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), client }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delay' as const), ms: fc.integer({ min: 0, max: 500 }) }) },
);

/** Sequences of 1 to `maxLength` operations, on the protocols the ioredis major under test speaks. */
export function sequenceArbitrary(protocols: Protocol[], maxLength = 6): fc.Arbitrary<Sequence> {
  return fc.record({
    protocol: fc.constantFrom(...protocols),
    operations: fc
      .array(operationArbitrary, { minLength: 1, maxLength })
      .filter((operations) => operations.filter((operation) => operation.op === 'fault').length <= 1),
  });
}

/** The server-side names a client's connection may have: its connectionName, or a name the sequence gave it. */
export function connectionNamePattern(name: AppClient): RegExp {
  return new RegExp(`^${name}(-n\\d)?$`);
}
