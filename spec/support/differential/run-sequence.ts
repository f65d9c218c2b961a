/**
 * Runs one generated sequence of application operations on one side (a plain ioredis client against a server whose
 * password never changes, or a createEntraRedis() client through the AMR emulator) and records what the application
 * observes: every reply or error in order, every message each listener received, every 'error' event.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Redis, RedisOptions } from 'ioredis';
import type { RedisServerHandle } from '../../../lib/testing/redis-server.js';
import { waitUntil } from '../../../lib/testing/redis-server.js';
import {
  connectionNamePattern,
  type AppClient,
  type Command,
  type FaultKind,
  type Operation,
  type Pause,
  type Sequence,
  type SubscribeKind,
  type UnsubscribeKind,
  type Watch,
} from './operations.js';

/** The client call of each (un)subscribe operation. */
const SUBSCRIPTION_COMMANDS: Record<
  SubscribeKind | UnsubscribeKind,
  (client: Redis, names: string[]) => Promise<unknown>
> = {
  subscribe: (client, names) => client.subscribe(...names),
  psubscribe: (client, names) => client.psubscribe(...names),
  ssubscribe: (client, names) => client.ssubscribe(...names),
  unsubscribe: (client, names) => client.unsubscribe(...names),
  punsubscribe: (client, names) => client.punsubscribe(...names),
  sunsubscribe: (client, names) => client.sunsubscribe(...names),
};

/** One of the two worlds a sequence runs in. */
export interface Side {
  readonly label: string;
  /** The real redis-server behind the clients: FLUSHALL before a run, CLIENT KILL for drops. */
  readonly server: RedisServerHandle;
  /** A client of the application on this side (connected at once). */
  client(options: RedisOptions): Redis;
  /** Resolves at the next token rotation (at once where tokens never change). */
  rotation(): Promise<void>;
  /** Starts a token-side fault; resolves with the function that ends it (nothing to do where tokens never change). */
  fault(kind: FaultKind): Promise<() => Promise<void>>;
  /** Notes this side's own events (tokens, re-authentications, closes at expiry) on `note` until the returned stop. */
  watch?(note: (line: string) => void): () => void;
}

/** What the application observed. */
export interface Outcome {
  /** `<operation index> <what>: <reply | {error} | 'no reply within ...'>`, in the order observed. */
  replies: Array<{ at: string; value: unknown }>;
  /** Payloads per listener and channel, in order: key `<client> <event> [<pattern>] <channel>`. */
  messages: Record<string, string[]>;
  /** Messages of the 'error' events of each client. */
  errorEvents: Record<AppClient | 'publisher', string[]>;
  /** Names of the connections still open on the server after every client was disconnected. */
  leftovers: string[];
  /**
   * What happened, for a reader of a failure, never compared: `+<ms> <what>` for each operation started, each status
   * event of the clients and each event the side notes, then the event loop's longest delay in the run.
   */
  timeline: string[];
}

/** Delivered message counts after each PUBLISH, in order: what the other side waits for before going on. */
export type Deliveries = number[];

/** A command that has not answered in this time is recorded as unanswered (the longest legitimate wait is a BLPOP). */
const REPLY_TIMEOUT_MS = 12_000;
/** BLPOP's own timeout, seconds: longer than any pause while it is blocked, so it is always answered by the push. */
const BLPOP_TIMEOUT_S = 8;
/** How long the second side waits for the messages the first side received after a PUBLISH. */
const DELIVERY_WAIT_MS = 3_000;
const RECONNECT_WAIT_MS = 10_000;
/** How long connections may take to go away after `disconnect()` of every client. */
const TEARDOWN_WAIT_MS = 2_000;
/** Connections of the test's own tools: never the application's or the library's. */
const TOOL_CONNECTION_NAMES = new Set(['', 'amr-emulator-admin']);

const major = process.env.IOREDIS_MAJOR ?? '5';

/** Replies as plain data: strings for buffers, `{ error }` for errors, pipeline results unwrapped. */
export function normalise(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString();
  if (value instanceof Error) return { error: value.message };
  if (Array.isArray(value)) return value.map(normalise);
  return value;
}

function pipelineResult(result: Array<[Error | null, unknown]> | null): unknown {
  return result === null ? null : result.map(([error, value]) => (error ? { error: error.message } : normalise(value)));
}

function describeCommand(command: Command): string {
  return command.c === 'set' ? `set ${command.key} ${command.value}` : `${command.c} ${command.key}`;
}

function send(client: Redis, command: Command): Promise<unknown> {
  switch (command.c) {
    case 'set':
      return client.set(command.key, command.value);
    case 'get':
      return client.get(command.key);
    case 'incr':
      return client.incr(command.key);
    case 'del':
      return client.del(command.key);
  }
}

function call(client: Redis, command: Command): Promise<unknown> {
  const args = command.c === 'set' ? [command.key, command.value] : [command.key];
  return client.call(command.c.toUpperCase(), ...args);
}

function queue(pipeline: ReturnType<Redis['pipeline']>, command: Command): void {
  if (command.c === 'set') pipeline.set(command.key, command.value);
  else pipeline[command.c](command.key);
}

async function settle<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ value: T } | { error: unknown } | { timeout: true }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ timeout: true }>((resolve) => {
    timer = setTimeout(() => resolve({ timeout: true }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One run of a sequence on one side. */
export class SequenceRun {
  readonly #side: Side;
  readonly #sequence: Sequence;
  /** What the other side delivered after each PUBLISH; undefined on the side that runs first. */
  readonly #expected: Deliveries | undefined;
  readonly #outcome: Outcome = {
    replies: [],
    messages: {},
    errorEvents: { a: [], b: [], publisher: [] },
    leftovers: [],
    timeline: [],
  };
  #startedAt = 0;
  readonly deliveries: Deliveries = [];
  #clients = {} as Record<AppClient, Redis>;
  #publisher!: Redis;
  #delivered = 0;
  /** Ends of the faults under way: each ends at its time, or when the run ends. */
  readonly #faultEnds: Array<Promise<void>> = [];

  constructor(side: Side, sequence: Sequence, expected?: Deliveries) {
    this.#side = side;
    this.#sequence = sequence;
    this.#expected = expected;
  }

  /** Adds a line to the outcome's timeline. */
  readonly #note = (line: string): void => {
    this.#outcome.timeline.push(`+${Date.now() - this.#startedAt} ${line}`);
  };

  async run(): Promise<Outcome> {
    this.#startedAt = Date.now();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const stopWatching = this.#side.watch?.(this.#note);
    try {
      return await this.#run();
    } finally {
      stopWatching?.();
      loopDelay.disable();
      this.#note(`event loop: longest delay ${Math.round(loopDelay.max / 1e6)} ms`);
    }
  }

  async #run(): Promise<Outcome> {
    await this.#side.server.command('FLUSHALL');
    const protocol = major === '6' ? { protocol: this.#sequence.protocol } : {};
    for (const name of ['a', 'b'] as const) {
      const client = this.#side.client({ connectionName: name, ...protocol });
      this.#clients[name] = client;
      this.#listen(name, client);
    }
    this.#publisher = this.#side.client({ connectionName: 'publisher', ...protocol });
    for (const [name, client] of [...Object.entries(this.#clients), ['publisher', this.#publisher] as const])
      for (const event of ['close', 'reconnecting', 'ready', 'end'])
        client.on(event, () => this.#note(`${name} ${event}`));
    this.#publisher.on('error', (error: Error) => this.#outcome.errorEvents.publisher.push(error.message));
    const all = [this.#clients.a, this.#clients.b, this.#publisher];
    try {
      await Promise.all(all.map((client) => client.ping()));
      for (const [index, operation] of this.#sequence.operations.entries()) {
        this.#note(`${index} ${operation.op}`);
        await this.#operation(index, operation);
      }
      // Every sequence ends with a PING on each client: a connection left in a state of the library's (subscribe
      // mode, an open transaction) answers it differently.
      for (const name of ['a', 'b'] as const) await this.#observe(`end ping ${name}`, this.#clients[name].ping());
      if (this.#expected) {
        const total = this.#expected.reduce((sum, n) => sum + n, 0);
        await waitUntil(() => this.#delivered >= total, { timeoutMs: DELIVERY_WAIT_MS }).catch(() => undefined);
      }
      return this.#outcome;
    } finally {
      await Promise.all(this.#faultEnds);
      for (const client of all) client.disconnect();
      await this.#collectLeftovers();
    }
  }

  /**
   * Records the connections (by name) still open on the server once every client is disconnected, then kills them,
   * so that nothing of this run reaches the next one (a subscription left behind would be counted by its PUBLISHes).
   */
  async #collectLeftovers(): Promise<void> {
    const server = this.#side.server;
    const open = async () =>
      String(await server.command('CLIENT', 'LIST'))
        .split('\n')
        .map((line) => ({ id: /\bid=(\d+)/.exec(line)?.[1], name: /\bname=(\S*)/.exec(line)?.[1] ?? '' }))
        .filter((entry) => entry.id !== undefined && !TOOL_CONNECTION_NAMES.has(entry.name));
    await waitUntil(async () => (await open()).length === 0, { timeoutMs: TEARDOWN_WAIT_MS }).catch(() => undefined);
    const left = await open();
    this.#outcome.leftovers = left.map((entry) => entry.name).sort();
    for (const { id } of left) await server.command('CLIENT', 'KILL', 'ID', id as string).catch(() => undefined);
  }

  #listen(name: AppClient, client: Redis): void {
    const record = (key: string, payload: string) => {
      (this.#outcome.messages[key] ??= []).push(payload);
      this.#delivered += 1;
    };
    client.on('message', (channel: string, message: string) => record(`${name} message ${channel}`, message));
    client.on('pmessage', (pattern: string, channel: string, message: string) =>
      record(`${name} pmessage ${pattern} ${channel}`, message),
    );
    client.on('smessage', (channel: string, message: string) => record(`${name} smessage ${channel}`, message));
    client.on('error', (error: Error) => this.#outcome.errorEvents[name].push(error.message));
  }

  async #observe(at: string, promise: Promise<unknown>, timeoutMs = REPLY_TIMEOUT_MS): Promise<unknown> {
    const result = await settle(promise, timeoutMs);
    const value =
      'value' in result
        ? normalise(result.value)
        : 'error' in result
          ? { error: (result.error as Error).message }
          : `no reply within ${timeoutMs} ms`;
    this.#outcome.replies.push({ at, value });
    return 'value' in result ? result.value : undefined;
  }

  async #operation(index: number, operation: Operation): Promise<void> {
    const at = `${index} ${operation.op}`;
    switch (operation.op) {
      case 'command': {
        await this.#observe(
          `${at} ${operation.client} ${describeCommand(operation.command)}`,
          send(this.#clients[operation.client], operation.command),
        );
        return;
      }
      case 'pipeline': {
        const pipeline = this.#clients[operation.client].pipeline();
        for (const command of operation.commands) queue(pipeline, command);
        await this.#observe(`${at} ${operation.client}`, pipeline.exec().then(pipelineResult));
        return;
      }
      case 'multi': {
        const client = this.#clients[operation.client];
        if (operation.watch) await this.#watch(at, operation.client, operation.watch);
        const multi = client.multi();
        for (const command of operation.commands) queue(multi, command);
        await this.#observe(`${at} ${operation.client} exec`, multi.exec().then(pipelineResult));
        return;
      }
      case 'transaction':
        await this.#transaction(at, operation);
        return;
      case 'subscribe':
      case 'unsubscribe': {
        const client = this.#clients[operation.client];
        const names = operation.names;
        await this.#observe(
          `${at} ${operation.client} ${operation.kind} ${names.join(' ')}`,
          SUBSCRIPTION_COMMANDS[operation.kind](client, names),
        );
        return;
      }
      case 'publish':
        await this.#publish(at, index, operation);
        return;
      case 'blpop': {
        const client = this.#clients[operation.client];
        const list = `list${index}`;
        const reply = client.blpop(list, BLPOP_TIMEOUT_S);
        reply.catch(() => undefined);
        for (const pause of operation.during)
          await this.#pause(`${at} ${operation.client}`, operation.client, pause, { blocked: true });
        // Pushed in both databases: the client may have selected either.
        this.#note(`${at} push`);
        await this.#publisher.pipeline().select(1).rpush(list, `v${index}`).select(0).rpush(list, `v${index}`).exec();
        await this.#observe(`${at} ${operation.client}`, reply);
        return;
      }
      case 'blpop-timeout':
        await this.#observe(
          `${at} ${operation.client} ${operation.seconds}`,
          this.#clients[operation.client].blpop('never-pushed', operation.seconds),
        );
        return;
      case 'select':
        await this.#observe(
          `${at} ${operation.client} ${operation.db}`,
          this.#clients[operation.client].select(operation.db),
        );
        return;
      case 'setname':
        await this.#observe(
          `${at} ${operation.client} ${operation.name}`,
          this.#clients[operation.client].call('CLIENT', 'SETNAME', operation.name),
        );
        return;
      case 'getname':
        await this.#observe(`${at} ${operation.client}`, this.#clients[operation.client].call('CLIENT', 'GETNAME'));
        return;
      case 'ping':
        await this.#observe(`${at} ${operation.client}`, this.#clients[operation.client].ping());
        return;
      case 'rotation':
        await this.#side.rotation();
        return;
      case 'fault': {
        const end = await this.#side.fault(operation.kind);
        this.#faultEnds.push(sleep(operation.ms).then(end));
        return;
      }
      case 'drop':
        await this.#pause(at, operation.client, { pause: 'drop' });
        return;
      case 'delay':
        await sleep(operation.ms);
        return;
    }
  }

  async #publish(at: string, index: number, operation: Extract<Operation, { op: 'publish' }>): Promise<void> {
    const before = this.#delivered;
    const message = `m${index}`;
    const reply =
      operation.kind === 'publish'
        ? this.#publisher.publish(operation.channel, message)
        : this.#publisher.spublish(operation.channel, message);
    const receivers = await this.#observe(`${at} ${operation.kind} ${operation.channel}`, reply);
    // The messages reach the subscribers' listeners after the PUBLISH reply: wait for them before going on, so that
    // what follows happens after the delivery on both sides. The side that runs first waits for as many as the server
    // counted; the second for as many as the first received.
    const expected = this.#expected ? (this.#expected[this.deliveries.length] ?? 0) : Number(receivers ?? 0);
    await waitUntil(() => this.#delivered - before >= expected, { timeoutMs: DELIVERY_WAIT_MS }).catch(() => undefined);
    this.deliveries.push(this.#delivered - before);
  }

  async #watch(at: string, name: AppClient, watch: Watch): Promise<void> {
    const client = this.#clients[name];
    await this.#observe(`${at} ${name} watch ${watch.key}`, client.watch(watch.key));
    if (watch.conflict) await this.#publisher.set(watch.key, 'conflict');
    if (watch.pause) await this.#pause(`${at} ${name} after watch`, name, watch.pause);
    if (watch.unwatch) await this.#observe(`${at} ${name} unwatch`, client.unwatch());
  }

  async #transaction(at: string, operation: Extract<Operation, { op: 'transaction' }>): Promise<void> {
    const name = operation.client;
    const client = this.#clients[name];
    if (operation.watch) await this.#watch(at, name, operation.watch);
    const byCall = operation.form === 'call';
    await this.#observe(`${at} ${name} multi`, byCall ? client.call('MULTI') : client.multi({ pipeline: false }));
    for (const step of operation.steps) {
      if ('pause' in step) await this.#pause(`${at} ${name}`, name, step);
      else
        await this.#observe(`${at} ${name} ${describeCommand(step)}`, byCall ? call(client, step) : send(client, step));
    }
    const end =
      operation.end === 'exec'
        ? byCall
          ? client.call('EXEC')
          : client.exec()
        : byCall
          ? client.call('DISCARD')
          : client.discard();
    await this.#observe(`${at} ${name} ${operation.end}`, end);
  }

  async #pause(at: string, name: AppClient, pause: Pause, options: { blocked?: boolean } = {}): Promise<void> {
    if (pause.pause === 'rotation') await this.#side.rotation();
    else if (pause.pause === 'delay') await sleep(pause.ms);
    else {
      const outcome = await this.#drop(name, options.blocked ?? false).then(
        () => 'reconnected',
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
      // Recorded so that a client that does not come back shows as a difference, not as a hang.
      this.#outcome.replies.push({ at: `${at} drop`, value: outcome });
    }
  }

  /**
   * Kills the client's connection on the server (CLIENT KILL ID, found by its name) and waits until ioredis has
   * reconnected it. Unless a BLPOP is blocked on it, a PING then makes sure what ioredis restores on reconnect
   * (subscriptions, database) is in place before the sequence goes on: it is answered after those commands.
   */
  async #drop(name: AppClient, blocked: boolean): Promise<void> {
    const client = this.#clients[name];
    const pattern = connectionNamePattern(name);
    await waitUntil(() => client.status === 'ready', {
      timeoutMs: RECONNECT_WAIT_MS,
      description: `${name} ready before the drop`,
    });
    const ids = await waitUntil(
      async () => {
        const list = String(await this.#side.server.command('CLIENT', 'LIST'));
        const found = list
          .split('\n')
          .map((line) => ({ id: /\bid=(\d+)/.exec(line)?.[1], name: /\bname=(\S*)/.exec(line)?.[1] ?? '' }))
          .filter((entry) => entry.id !== undefined && pattern.test(entry.name))
          .map((entry) => entry.id as string);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: RECONNECT_WAIT_MS, description: `a connection named ${name} on the server` },
    );
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    for (const id of ids) await this.#side.server.command('CLIENT', 'KILL', 'ID', id);
    await settle(closed, RECONNECT_WAIT_MS);
    await waitUntil(() => client.status === 'ready', {
      timeoutMs: RECONNECT_WAIT_MS,
      description: `${name} reconnected after the drop`,
    });
    if (!blocked) await client.ping();
  }
}

/** Runs `sequence` on `first`, then on `second` (which waits for the messages `first` received), and returns both. */
export async function runOnBoth(
  first: Side,
  second: Side,
  sequence: Sequence,
): Promise<{ first: Outcome; second: Outcome }> {
  const firstRun = new SequenceRun(first, sequence);
  const firstOutcome = await firstRun.run();
  const secondOutcome = await new SequenceRun(second, sequence, firstRun.deliveries).run();
  return { first: firstOutcome, second: secondOutcome };
}
