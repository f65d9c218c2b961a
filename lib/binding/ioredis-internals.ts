/**
 * Every reliance on ioredis internals (private fields and methods, identical in ioredis 5.x and 6.x) lives here,
 * so that it is visible in one place and tested against both majors. Nothing else in the library touches them, but
 * lib/binding/ioredis-workarounds.ts (workarounds of ioredis bugs) and lib/binding/ioredis-contract.ts (the checks of
 * this list that run when a client is bound, and in spec/binding/ioredis-contract.test.ts).
 *
 * Relied upon:
 * - `redis.connector.connect(onEvent)` is called by `Redis#connect()` on every connect and reconnect, after
 *   `redis.condition` was built from `redis.options`, and returns a promise of the socket;
 * - `connector.connecting` is cleared by `disconnect()`; `connector.firstError` is reported when the returned socket
 *   is already destroyed, after which ioredis runs its own close handler and retry loop;
 * - `redis.condition.auth` is read by the handshake (`AUTH` or `HELLO 3 AUTH`) when the socket connects, and
 *   `redis.condition.subscriber` marks subscribe mode;
 * - `redis.flushQueue(error)` rejects the queued commands;
 * - `redis.commandQueue` (a Denque of `{ command }`) holds the commands sent and not yet answered, in order;
 * - `disconnect()` sets `manuallyClosing` and clears `reconnectTimeout` before it calls `connector.disconnect()`;
 *   `setStatus('end')` then `flushQueue(...)` is how ioredis's close handler ends a manually closed client;
 * - ioredis's ready handler calls `setStatus('ready')` and then, in the same synchronous run, restores the state of a
 *   reconnected client with `select()`, `subscribe()`, `psubscribe()` and `ssubscribe()` on the instance;
 *   `setStatus` emits the status event on a later tick; `silentEmit('error', e)` reports an error the way ioredis
 *   reports its own (nothing for a manually closed client);
 * - every command passes through `redis.sendCommand(command, stream?)` on the instance (pipelines and `multi()` too,
 *   with a buffering `stream`, and the commands ioredis resends or replays from its offline queue on ready), which
 *   either writes it and pushes `{ command }` onto `commandQueue` or pushes it onto `offlineQueue` (both Denques with
 *   `peekBack()`), or rejects it at once; a command has `name`, `args` and `promise`;
 * - `redis.emit` is the instance's EventEmitter emit, through which ioredis delivers every event, messages included;
 * - `redis.condition.subscriber` / `redis.prevCondition.subscriber` (a SubscriptionSet with `channels()`/`del()`) is
 *   what the ready handler resubscribes; `commandQueue`, `offlineQueue` and `prevCommandQueue` are Denques of
 *   `{ command }`; every command goes through `redis.sendCommand(command)`, and one sent while the socket is ended is
 *   queued offline and sent after the resubscriptions on the next ready;
 * - the close handler keeps `commandQueue` as `prevCommandQueue` (resent on the next ready when
 *   `autoResendUnfulfilledCommands`; flushed at once when the client ends or `maxRetriesPerRequest` is reached) and
 *   emits `close` on the next tick, before the next connect; a queued command has `reject()`.
 */
import { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { endIfStrandedInReconnect } from './ioredis-workarounds.js';

/** ioredis's own message for a connection closed on purpose. */
export const CONNECTION_CLOSED_ERROR_MSG = 'Connection is closed.';

export interface ConnectorInternals {
  connecting: boolean;
  firstError?: unknown;
  connect(onEvent: unknown): Promise<unknown>;
  disconnect(): void;
}

export interface RedisInternals {
  connector: ConnectorInternals;
  manuallyClosing?: boolean;
  reconnectTimeout?: unknown;
  setStatus(status: string, ...rest: unknown[]): void;
  silentEmit(event: string, arg: unknown): unknown;
  commandQueue?: {
    length: number;
    peekAt(index: number): { command?: { name?: string; args?: unknown[] } } | undefined;
  };
  condition?: { auth?: string | [string, string]; subscriber?: unknown; protocol?: number };
  flushQueue(error: Error, options?: { offlineQueue?: boolean; commandQueue?: boolean }): void;
  options: Redis['options'] & { protocol?: number };
}

export const internals = (redis: Redis) => redis as unknown as RedisInternals;

/**
 * Runs `prepare(redis, signal)` before every connect and reconnect of `redis`. When it returns a promise, the connect
 * waits for it:
 * - a `disconnect()` during the wait is honoured (the client stays disconnected);
 * - a rejection flushes the queued commands with that error, reports it as an `error` event and hands control back
 *   to ioredis's retry loop (`retryStrategy`), exactly as a refused connection does.
 * `prepare` is meant to be one function for every client: the connector gets two shared functions and one small
 * object, no closure per client.
 */
export function interceptConnect(
  redis: Redis,
  prepare: (redis: Redis, signal: AbortSignal) => void | Promise<void>,
): void {
  const connector = internals(redis).connector as InterceptedConnector;
  connector[CONNECT_INTERCEPTION] = {
    redis,
    prepare,
    connect: connector.connect,
    disconnect: connector.disconnect,
    waiting: undefined,
  };
  connector.disconnect = interceptedDisconnect;
  connector.connect = interceptedConnect;
}

const CONNECT_INTERCEPTION = Symbol('ioredis-entraid.connectInterception');
/** What the shared connect and disconnect of one connector need: its client, the hook, ioredis's own methods. */
interface ConnectInterception {
  readonly redis: Redis;
  readonly prepare: (redis: Redis, signal: AbortSignal) => void | Promise<void>;
  readonly connect: ConnectorInternals['connect'];
  readonly disconnect: ConnectorInternals['disconnect'];
  /** The wait for `prepare` under way, if any. */
  waiting: AbortController | undefined;
}
type InterceptedConnector = ConnectorInternals & { [CONNECT_INTERCEPTION]?: ConnectInterception };

// disconnect() during the wait ends the wait at once, so the client reaches 'end' without waiting for a token.
function interceptedDisconnect(this: InterceptedConnector): void {
  const interception = this[CONNECT_INTERCEPTION] as ConnectInterception;
  interception.disconnect.call(this);
  interception.waiting?.abort(new Error(CONNECTION_CLOSED_ERROR_MSG));
  endIfStrandedInReconnect(interception.redis);
}

function interceptedConnect(this: InterceptedConnector, onEvent: unknown): Promise<unknown> {
  const interception = this[CONNECT_INTERCEPTION] as ConnectInterception;
  const { redis, connect } = interception;
  const wait = new AbortController();
  let pending: void | Promise<void>;
  try {
    pending = interception.prepare(redis, wait.signal);
  } catch (error) {
    pending = Promise.reject(error);
  }
  if (!(pending instanceof Promise)) return connect.call(this, onEvent);
  interception.waiting = wait;
  pending = pending.finally(() => {
    if (interception.waiting === wait) interception.waiting = undefined;
  });
  // Marks the connect as under way, so that disconnect() during the wait clears it and we can see that it did.
  this.connecting = true;
  return pending.then(
    () => {
      if (!this.connecting) throw new Error(CONNECTION_CLOSED_ERROR_MSG);
      return connect.call(this, onEvent);
    },
    (error: unknown) => {
      if (!this.connecting) throw new Error(CONNECTION_CLOSED_ERROR_MSG);
      this.connecting = false;
      const failure = error instanceof Error ? error : new Error(String(error));
      internals(redis).flushQueue(failure, { offlineQueue: true, commandQueue: false });
      // A socket that is already destroyed makes ioredis report firstError and run its close handler: the retry loop.
      this.firstError = failure;
      const socket = new Socket();
      socket.destroy();
      return socket;
    },
  );
}

/** Puts credentials into the handshake of the connect under way (ioredis built it from options a moment ago). */
export function setHandshakeCredentials(redis: Redis, username: string, password: string): void {
  const condition = internals(redis).condition;
  if (condition) condition.auth = [username, password];
}

/** True when the connection is in RESP2 subscribe mode, where Redis accepts no AUTH. */
export function isResp2Subscriber(redis: Redis): boolean {
  const condition = internals(redis).condition;
  if (!condition?.subscriber) return false;
  return (condition.protocol ?? internals(redis).options.protocol ?? 2) !== 3;
}

/**
 * Puts `hook(redis, event, args)` in front of every event the client emits: it may change the arguments in place (to
 * redact a token from an `error`) and returns false to drop the event (a message a handover delivers another way).
 * `hook` is meant to be one function for every client: the client gets one shared `emit`, no closure of its own.
 */
export function interceptEmit(redis: Redis, hook: EmitHook): void {
  const client = redis as unknown as HookedEmitter;
  const own = client.emit;
  // ioredis's emit is EventEmitter's, on the prototype; one the instance already has of its own is kept and called.
  if (Object.prototype.hasOwnProperty.call(client, 'emit') && own !== emitThroughHook) client[OWN_EMIT] = own;
  client[EMIT_HOOK] = hook;
  client.emit = emitThroughHook;
}

export type EmitHook = (redis: Redis, event: string | symbol, args: unknown[]) => boolean;
const EMIT_HOOK = Symbol('ioredis-entraid.emitHook');
const OWN_EMIT = Symbol('ioredis-entraid.ownEmit');
type EmitFunction = (event: string | symbol, ...args: unknown[]) => boolean;
type HookedEmitter = { emit: EmitFunction; [EMIT_HOOK]?: EmitHook; [OWN_EMIT]?: EmitFunction };

function emitThroughHook(this: HookedEmitter, event: string | symbol, ...args: unknown[]): boolean {
  const hook = this[EMIT_HOOK];
  if (hook && !hook(this as unknown as Redis, event, args)) return false;
  const emit = this[OWN_EMIT] ?? (Object.getPrototypeOf(this) as HookedEmitter).emit;
  return emit.call(this, event, ...args);
}

export interface CommandInternals {
  name?: string;
  reject?: (error: unknown) => void;
  promise?: unknown;
}
export type SendCommand = (command: CommandInternals, ...rest: unknown[]) => unknown;

/**
 * Redacts the error of every failed AUTH and HELLO the client sends (ioredis's handshake calls `redis.auth()` /
 * `redis.hello()` on the instance) before anything sees it. ioredis attaches the command's arguments, token included,
 * to the ReplyError, publishes the rejection on its `ioredis:command` tracing channel, rejects the queued commands with
 * that same object and may print it when nobody listens for `error`. The command's `reject` is wrapped while
 * `auth()`/`hello()` hands it to `sendCommand`, so the error is redacted before the promise settles; other commands
 * never pass through here.
 */
export function redactCredentialCommands(redis: Redis, redact: (error: unknown) => unknown): void {
  const client = redis as unknown as RedactingClient;
  client[REDACT] = redact;
  for (const name of ['auth', 'hello'] as const) {
    const original = client[name];
    if (typeof original !== 'function' || original === REDACTED_COMMANDS[name]) continue;
    // ioredis's own are on the prototype; one the instance already has of its own is kept and called.
    if (Object.prototype.hasOwnProperty.call(client, name)) (client[OWN_COMMANDS] ??= {})[name] = original;
    client[name] = REDACTED_COMMANDS[name];
  }
}

const REDACT = Symbol('ioredis-entraid.redact');
const OWN_COMMANDS = Symbol('ioredis-entraid.ownCredentialCommands');
type CredentialCommand = (...args: unknown[]) => unknown;
type RedactingClient = Record<'auth' | 'hello', CredentialCommand> & {
  sendCommand: SendCommand;
  [REDACT]?: (error: unknown) => unknown;
  [OWN_COMMANDS]?: Partial<Record<'auth' | 'hello', CredentialCommand>>;
};

/**
 * The `sendCommand` to put back once the credential command of the client whose `auth()`/`hello()` runs is handed
 * over. One record for the process: the command reaches `sendCommand` synchronously, and nothing in between runs
 * another client's `auth()`/`hello()` (a nested run is saved and restored all the same).
 */
const redaction: { hadOwn: boolean; own: SendCommand | undefined } = { hadOwn: false, own: undefined };

/** `auth` and `hello` of every redacting client: one function each for the process, no closure per client. */
const REDACTED_COMMANDS: Record<'auth' | 'hello', CredentialCommand> = {
  auth: function redactedAuth(this: RedactingClient, ...args: unknown[]): unknown {
    return runRedacted(this, 'auth', args);
  },
  hello: function redactedHello(this: RedactingClient, ...args: unknown[]): unknown {
    return runRedacted(this, 'hello', args);
  },
};

function runRedacted(client: RedactingClient, name: 'auth' | 'hello', args: unknown[]): unknown {
  const original = client[OWN_COMMANDS]?.[name] ?? (Object.getPrototypeOf(client) as RedactingClient)[name];
  if (!client[REDACT]) return original.apply(client, args);
  const savedHadOwn = redaction.hadOwn,
    savedOwn = redaction.own;
  // No closure per call but the one that wraps `reject`: a rotation sends one AUTH per connection.
  redaction.hadOwn = Object.prototype.hasOwnProperty.call(client, 'sendCommand');
  redaction.own = client.sendCommand;
  client.sendCommand = sendRedacted;
  try {
    return original.apply(client, args);
  } finally {
    if (client.sendCommand === sendRedacted) restoreSendCommand(client);
    redaction.hadOwn = savedHadOwn;
    redaction.own = savedOwn;
  }
}

function restoreSendCommand(client: RedactingClient): void {
  if (redaction.hadOwn) client.sendCommand = redaction.own as SendCommand;
  else delete (client as Partial<RedactingClient>).sendCommand;
}

/** The `sendCommand` of a client while its `auth()`/`hello()` runs: wraps the command's `reject`, once. */
function sendRedacted(this: RedactingClient, command: CommandInternals, stream?: unknown): unknown {
  const own = redaction.own as SendCommand;
  restoreSendCommand(this);
  const reject = command.reject;
  const redact = this[REDACT] as (error: unknown) => unknown;
  if (typeof reject === 'function') command.reject = (error: unknown) => reject.call(command, redact(error));
  return own.call(this, command, stream);
}

/**
 * Reconnects a live client at once, keeping the same object and its unanswered commands (ioredis resends them, and
 * resubscribes its channels). One immediate attempt even when the client's retryStrategy is null (cluster nodes and
 * subscribers), then its own strategy again.
 */
export function forceReconnect(redis: Redis): void {
  // The connection must come back as the application left it: ioredis restores its subscriptions; the name and the
  // database are those the server accepted.
  prepareRestore(redis);
  const options = internals(redis).options as { retryStrategy?: unknown };
  const own = options.retryStrategy;
  options.retryStrategy = () => {
    options.retryStrategy = own;
    return 0;
  };
  redis.disconnect(true);
}

/**
 * Channels, patterns and sharded channels the connection is subscribed to; until a reconnect is ready (ioredis has
 * moved the old state to `prevCondition` and restores it when ready), those it will restore. That is also the case
 * while it reconnects again after a drop in a handshake: the live `condition` is then the dropped socket's, empty.
 */
export function subscriptions(redis: Redis): { subscribe: string[]; psubscribe: string[]; ssubscribe: string[] } {
  type Condition = { subscriber?: { channels?(type: string): string[] } | false } | null | undefined;
  const client = internals(redis) as { condition?: Condition; prevCondition?: Condition };
  const set = client.condition?.subscriber || (redis.status !== 'ready' ? client.prevCondition?.subscriber : undefined);
  const read = (type: string) => (set && typeof set.channels === 'function' ? set.channels(type) : []);
  return { subscribe: read('subscribe'), psubscribe: read('psubscribe'), ssubscribe: read('ssubscribe') };
}

interface ClusterInternals {
  subscriber?: Record<string, unknown> & { subscriber?: Redis | null };
  shardedSubscribers?: { shardedSubscribers?: Map<string, { instance?: Redis }> };
}

/**
 * Calls `onConnection` for every Redis connection a Cluster makes, before it connects: node connections ('+node'),
 * the pub/sub subscriber (created inside ClusterSubscriber#selectSubscriber, which subscribes at once: caught by a
 * setter on its `subscriber` field) and sharded subscribers (caught when ClusterSubscriberGroup stores them).
 * Slot-refresh connections are duplicates of node connections, covered by the caller's duplicate() wrapper.
 */
export function watchClusterConnections(
  cluster: import('ioredis').Cluster,
  onConnection: (redis: Redis) => void,
): void {
  cluster.on('+node', (redis: Redis) => onConnection(redis));
  const { subscriber, shardedSubscribers } = cluster as unknown as ClusterInternals;
  if (subscriber && typeof subscriber === 'object') {
    let current = subscriber.subscriber ?? null;
    if (current) onConnection(current);
    Object.defineProperty(subscriber, 'subscriber', {
      configurable: true,
      enumerable: true,
      get: () => current,
      set: (value: Redis | null) => {
        current = value;
        if (value) onConnection(value);
      },
    });
  }
  const group = shardedSubscribers?.shardedSubscribers;
  if (group instanceof Map) {
    const set = group.set.bind(group);
    group.set = (key: string, value: { instance?: Redis }) => {
      const given = value as { instance?: Redis } | undefined; // ioredis's own value; not trusted to be set
      if (given?.instance) onConnection(given.instance);
      return set(key, value);
    };
    for (const value of group.values()) if (value.instance) onConnection(value.instance);
  }
}

/** The startup nodes a Cluster was created with (what Cluster#duplicate() reuses). */
export function clusterStartupNodes(cluster: import('ioredis').Cluster): import('ioredis').ClusterNode[] {
  const nodes = (cluster as unknown as { startupNodes?: import('ioredis').ClusterNode[] }).startupNodes;
  return Array.isArray(nodes) ? nodes.slice() : [];
}

/**
 * What the library follows of a connection's state that ioredis does not get right on a reconnect: whether the
 * application's MULTI is open, and the name and database the server has accepted for the connection (ioredis restores
 * its `connectionName` option and the database of the last SELECT it sent, even one the server refused or that a
 * DISCARD dropped; it does not know a name set by command).
 */
interface CommandWatch {
  transactionOpen: boolean;
  /** Commands queued in the open transaction so far (their positions in EXEC's reply). */
  queuedInTransaction: number;
  /** Name and database changes queued in the open transaction: they take effect only if EXEC runs them. */
  changesInTransaction: Array<{ index: number; apply: () => void }> | undefined;
  /** The name of the last CLIENT SETNAME (or HELLO SETNAME) the server answered OK, if any. */
  clientName: string | undefined;
  /** The database of the last SELECT the server answered OK, if any. */
  db: number | undefined;
}

/** Set on a watched client: what runs after its transaction closed. */
const TRANSACTION_CLOSED = Symbol('ioredis-entraid.transactionClosed');
/** Made on the first command that has something to follow (most clients never send one). */
const COMMAND_WATCH = Symbol('ioredis-entraid.commandWatch');
type WatchedClient = RedisInternals & {
  sendCommand: SendCommand;
  [TRANSACTION_CLOSED]?: (redis: Redis) => void;
  [COMMAND_WATCH]?: CommandWatch;
};

function commandWatch(client: WatchedClient): CommandWatch {
  return (client[COMMAND_WATCH] ??= {
    transactionOpen: false,
    queuedInTransaction: 0,
    changesInTransaction: undefined,
    clientName: undefined,
    db: undefined,
  });
}
interface QueuedCommand {
  command?: unknown;
}
interface QueueInternals {
  peekBack?(): QueuedCommand | undefined;
}
type WatchedCommand = CommandInternals & { args?: unknown[] };

/**
 * Watches the commands a client sends for MULTI, EXEC and DISCARD, in every form (`multi({ pipeline: false })`,
 * `call('MULTI')`, pipelined `multi()`), so that the library never writes an AUTH inside an application's transaction:
 * there it would be answered QUEUED, and its OK would become an extra element of the application's EXEC reply.
 * `onTransactionClosed` runs on the next tick after EXEC or DISCARD was written (a pipeline writes its buffered
 * commands at the end of its synchronous run, so an AUTH written then comes after them). Also follows the name and the
 * database the server accepted (CLIENT SETNAME, HELLO ... SETNAME, SELECT: by their replies, and inside a transaction
 * by EXEC's), which {@link forceReconnect} restores. Only commands ioredis accepted (written or queued offline) count;
 * one rejected at once (subscriber mode, a closed client) does not. The transaction state is reset by
 * {@link resetTransaction} when the connection closes: the server discards an open transaction with it, and ioredis
 * resends an unanswered MULTI through here again. One shared function per process, and `onTransactionClosed(redis)`
 * is meant to be one too; a small object per client once it sends one of these commands.
 */
export function watchCommands(redis: Redis, onTransactionClosed: (redis: Redis) => void): void {
  const client = redis as unknown as WatchedClient;
  client[TRANSACTION_CLOSED] = onTransactionClosed;
  if (client.sendCommand !== sendCommandWatched) client.sendCommand = sendCommandWatched;
}

/** True while a MULTI the client sent has not been followed by EXEC or DISCARD on the same connection. */
export function isTransactionOpen(redis: Redis): boolean {
  return (redis as unknown as WatchedClient)[COMMAND_WATCH]?.transactionOpen === true;
}

/** The connection closed: the server dropped any transaction open on it. */
export function resetTransaction(redis: Redis): void {
  const watch = (redis as unknown as WatchedClient)[COMMAND_WATCH];
  if (!watch) return;
  watch.transactionOpen = false;
  watch.queuedInTransaction = 0;
  watch.changesInTransaction = undefined;
}

/**
 * Before a reconnect the library causes: the new connection must look as the old one did. The database ioredis will
 * select is set to the one the server accepted (ioredis takes a SELECT's database when it sends it), and the name the
 * server accepted is sent again with CLIENT SETNAME once the socket connects (written at once in the handshake,
 * CLIENT being allowed while ioredis connects, before the commands ioredis resends on ready). Read now: the new
 * connection's handshake sends ioredis's own CLIENT SETNAME <connectionName>.
 */
function prepareRestore(redis: Redis): void {
  const watch = (redis as unknown as WatchedClient)[COMMAND_WATCH];
  if (!watch) return;
  const condition = internals(redis).condition as { select?: number } | undefined;
  if (watch.db !== undefined && condition) condition.select = watch.db;
  const name = watch.clientName;
  if (name !== undefined) {
    redis.once('connect', () => {
      redis.call('CLIENT', 'SETNAME', name).catch(() => {
        // the connection failed again: ioredis reports that itself
      });
    });
  }
}

function sendCommandWatched(this: WatchedClient, command: WatchedCommand, stream?: unknown): unknown {
  // On every command: no allocation, a property read, and two comparisons for most commands (their names are not 4
  // to 7 letters long, or not one of these).
  const result = (Object.getPrototypeOf(this) as { sendCommand: SendCommand }).sendCommand.call(this, command, stream);
  const watch = this[COMMAND_WATCH];
  const name = command.name;
  if (!this[TRANSACTION_CLOSED] || name === undefined) return result;
  if (name.length < 4 || name.length > 7) {
    if (watch?.transactionOpen && accepted(this, command)) watch.queuedInTransaction++;
    return result;
  }
  const lower = name.toLowerCase();
  if (
    lower !== 'multi' &&
    lower !== 'exec' &&
    lower !== 'discard' &&
    lower !== 'client' &&
    lower !== 'select' &&
    lower !== 'hello'
  ) {
    if (watch?.transactionOpen && accepted(this, command)) watch.queuedInTransaction++;
    return result;
  }
  if (!accepted(this, command)) return result;
  switch (lower) {
    case 'multi': {
      const opened = commandWatch(this);
      opened.transactionOpen = true;
      opened.queuedInTransaction = 0;
      opened.changesInTransaction = undefined;
      return result;
    }
    case 'exec':
    case 'discard': {
      if (!watch?.transactionOpen) return result;
      watch.transactionOpen = false;
      const changes = watch.changesInTransaction;
      watch.changesInTransaction = undefined;
      if (lower === 'exec' && changes) {
        (command.promise as Promise<unknown> | undefined)?.then(
          (reply) => {
            if (!Array.isArray(reply)) return; // aborted by WATCH
            for (const change of changes) if (!failed(reply[change.index])) change.apply();
          },
          () => undefined,
        );
      }
      process.nextTick(this[TRANSACTION_CLOSED], this);
      return result;
    }
    default: {
      const apply = stateChange(lower, command.args ?? [], this);
      if (watch?.transactionOpen) {
        const index = watch.queuedInTransaction++;
        if (apply) (watch.changesInTransaction ??= []).push({ index, apply });
      } else if (apply) {
        (command.promise as Promise<unknown> | undefined)?.then(apply, () => undefined);
      }
      return result;
    }
  }
}

/** What CLIENT SETNAME, HELLO ... SETNAME or SELECT changes once the server runs it, or undefined for other commands. */
function stateChange(name: string, args: unknown[], client: WatchedClient): (() => void) | undefined {
  const text = (value: unknown) => (Buffer.isBuffer(value) ? value.toString() : String(value));
  if (name === 'select') {
    const db = Number(text(args[0]));
    return Number.isInteger(db)
      ? () => {
          commandWatch(client).db = db;
        }
      : undefined;
  }
  const at =
    name === 'client'
      ? text(args[0]).toLowerCase() === 'setname'
        ? 1
        : -1
      : name === 'hello'
        ? args.findIndex((arg, i) => i > 0 && text(arg).toLowerCase() === 'setname') + 1
        : -1;
  if (at <= 0 || args[at] === undefined) return undefined;
  const value = text(args[at]);
  return () => {
    commandWatch(client).clientName = value;
  };
}

/** An element of EXEC's reply that failed: an error, or ioredis's `[error, result]` pair holding one. */
function failed(element: unknown): boolean {
  return element instanceof Error || (Array.isArray(element) && element[0] instanceof Error);
}

/** Whether ioredis took the command (wrote it, or queued it until the connection is ready) rather than rejecting it. */
function accepted(client: WatchedClient, command: unknown): boolean {
  const queues = [client.commandQueue, (client as unknown as { offlineQueue?: unknown }).offlineQueue] as Array<
    QueueInternals | undefined
  >;
  return queues.some((queue) => typeof queue?.peekBack === 'function' && queue.peekBack()?.command === command);
}

/** Commands that hold the connection until data arrives (their timeout may be 0: for ever). */
const BLOCKING_COMMANDS = new Set([
  'blpop',
  'brpop',
  'brpoplpush',
  'blmove',
  'blmpop',
  'bzpopmin',
  'bzpopmax',
  'bzmpop',
  'wait',
  'waitaof',
]);

/**
 * True when a blocking command (BLPOP, XREAD BLOCK, ...) is in flight on the connection: an AUTH sent now would wait
 * behind it, and pile up with the next ones if the connection stays blocked.
 */
export function hasBlockingCommandInFlight(redis: Redis): boolean {
  return blockingCommandInFlight(redis) !== undefined;
}

/**
 * The reply promise of the last blocking command in flight on the connection, if any: once it settles (answered,
 * timed out, or failed with the connection), an AUTH written after it is no longer held up by it.
 */
export function blockingCommandInFlight(redis: Redis): Promise<unknown> | undefined {
  const queue = internals(redis).commandQueue;
  if (!queue || typeof queue.peekAt !== 'function') return undefined;
  let found: Promise<unknown> | undefined;
  for (let i = 0; i < queue.length; i++) {
    const command: (CommandInternals & { args?: unknown[]; promise?: Promise<unknown> }) | undefined =
      queue.peekAt(i)?.command;
    const name = command?.name?.toLowerCase();
    if (!name) continue;
    const blocking =
      BLOCKING_COMMANDS.has(name) ||
      ((name === 'xread' || name === 'xreadgroup') &&
        command?.args?.some((arg) => String(arg).toUpperCase() === 'BLOCK'));
    if (blocking && command?.promise instanceof Promise) found = command.promise;
  }
  return found;
}

/** The pub/sub commands whose effect a subscriber handover must know. */
const SUBSCRIPTION_COMMANDS = new Set([
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
]);

/** A pub/sub command as sent: its name (lower case) and its channel or pattern arguments. */
export interface SubscriptionCommand {
  name: string;
  args: string[];
}

interface QueueInternals {
  length: number;
  peekAt(
    index: number,
  ): { command?: CommandInternals & { args?: unknown[]; resolve?: (value: unknown) => void } } | undefined;
  removeOne?(index: number): unknown;
  remove?(index: number, count: number): unknown;
}

function toSubscriptionCommand(
  command: { name?: string; args?: unknown[] } | undefined,
): SubscriptionCommand | undefined {
  const name = command?.name?.toLowerCase();
  if (!name || !SUBSCRIPTION_COMMANDS.has(name)) return undefined;
  const args = (command?.args ?? [])
    .flat(Infinity as 1)
    .map((arg) => (Buffer.isBuffer(arg) ? arg.toString() : String(arg)));
  return { name, args };
}

/** The queues ioredis keeps commands in until they are answered (the previous connection's too, until ready). */
function commandQueues(redis: Redis): QueueInternals[] {
  const client = redis as unknown as Record<
    'commandQueue' | 'offlineQueue' | 'prevCommandQueue',
    QueueInternals | null | undefined
  >;
  return [client.prevCommandQueue, client.commandQueue, client.offlineQueue].filter(
    (queue): queue is QueueInternals => !!queue && typeof queue.peekAt === 'function',
  );
}

/** Pub/sub commands written and not yet answered, or queued to be written, in the order ioredis will send them. */
export function subscriptionCommandsInFlight(redis: Redis): SubscriptionCommand[] {
  const found: SubscriptionCommand[] = [];
  for (const queue of commandQueues(redis)) {
    for (let i = 0; i < queue.length; i++) {
      const command = toSubscriptionCommand(queue.peekAt(i)?.command);
      if (command) found.push(command);
    }
  }
  return found;
}

/**
 * Removes `channel` from the client's subscription set (the live one and the one ioredis restores after a
 * reconnect), and drops not-yet-written or to-be-resent pub/sub commands for it alone (resolved with undefined), so
 * that no reconnect restores it. The server is not told: send the unsubscribe as well when the connection is up.
 */
export function forgetSubscription(redis: Redis, type: 'subscribe' | 'ssubscribe', channel: string): void {
  const client = redis as unknown as {
    condition?: { subscriber?: unknown };
    prevCondition?: { subscriber?: unknown } | null;
  };
  for (const set of [client.condition?.subscriber, client.prevCondition?.subscriber]) {
    if (set && typeof (set as { del?: unknown }).del === 'function')
      (set as { del(type: string, channel: string): void }).del(type, channel);
  }
  const queues = [
    (redis as unknown as { offlineQueue?: QueueInternals }).offlineQueue,
    (redis as unknown as { prevCommandQueue?: QueueInternals | null }).prevCommandQueue,
  ];
  for (const queue of queues) {
    if (!queue || typeof queue.peekAt !== 'function') continue;
    for (let i = queue.length - 1; i >= 0; i--) {
      const command = queue.peekAt(i)?.command;
      const parsed = toSubscriptionCommand(command);
      if (!parsed || parsed.args.length !== 1 || parsed.args[0] !== channel) continue;
      removeAt(queue, i);
      command?.resolve?.(undefined);
    }
  }
}

function removeAt(queue: QueueInternals, index: number): void {
  if (typeof queue.removeOne === 'function') queue.removeOne(index);
  else queue.remove?.(index, 1);
}

/**
 * Takes the command whose promise is `reply` (what `redis.auth()` and the like return) out of the client's queues and
 * rejects it with "Connection is closed.", as ioredis rejects what it does not resend. Called from the client's
 * `close` listener: ioredis emits `close` after its close handler kept the unanswered commands (as
 * `prevCommandQueue`, searched here) and before the next connect resends them, so a command taken back then is neither
 * resent nor sent from the offline queue. Returns whether it was found.
 */
export function withdrawCommand(redis: Redis, reply: Promise<unknown>): boolean {
  for (const queue of commandQueues(redis)) {
    for (let i = 0; i < queue.length; i++) {
      const command = queue.peekAt(i)?.command;
      if (command?.promise !== reply) continue;
      removeAt(queue, i);
      command.reject?.(new Error(CONNECTION_CLOSED_ERROR_MSG));
      return true;
    }
  }
  return false;
}

const PRIVATE_CHANNEL_GUARD = Symbol('ioredis-entraid.privateChannelGuard');
interface PrivateChannelGuard {
  isPrivate: (channel: string) => boolean;
  sendingOwn: boolean;
  /** Set while an own command is sent: called with it before ioredis takes it. */
  onOwn?: (command: CommandInternals & { resolve?: (value: unknown) => void }) => void;
}
type GuardedClient = { sendCommand: SendCommand; [PRIVATE_CHANNEL_GUARD]?: PrivateChannelGuard };

/**
 * Keeps the library's private channels (those `isPrivate` accepts) out of everything ioredis sends on its own: once
 * installed (once per client, for its lifetime), a pub/sub command that does not come from
 * {@link sendPrivateSubscriptionCommand} at that moment is stripped of its private channels, and sent without them,
 * or not at all when nothing else is left (then resolved with undefined, which no reply of Redis is). That covers the SUBSCRIBE ioredis restores
 * after a reconnect (its subscription set takes a private channel back in when a SUBSCRIBE reply is read after the
 * library removed it), the unanswered commands it resends on the new connection, and the offline queue it flushes:
 * a private (un)subscribe is written at most once, on the connection it was meant for, and dies with it.
 */
export function guardPrivateChannels(redis: Redis, isPrivate: (channel: string) => boolean): void {
  const client = redis as unknown as GuardedClient;
  if (client[PRIVATE_CHANNEL_GUARD]) return;
  const guard: PrivateChannelGuard = { isPrivate, sendingOwn: false };
  client[PRIVATE_CHANNEL_GUARD] = guard;
  const previous = client.sendCommand;
  client.sendCommand = function sendWithoutPrivateChannels(
    this: unknown,
    command: CommandInternals & { args?: unknown[]; resolve?: (value: unknown) => void },
    ...rest: unknown[]
  ) {
    if (guard.sendingOwn) guard.onOwn?.(command);
    else if (SUBSCRIPTION_COMMANDS.has(command.name?.toLowerCase() ?? '') && Array.isArray(command.args)) {
      const args = command.args.flat(Infinity as 1);
      const kept = args.filter((arg) => !isPrivate(Buffer.isBuffer(arg) ? arg.toString() : String(arg)));
      if (kept.length !== args.length) {
        if (kept.length === 0) {
          // Not rejected: ioredis awaits neither its restore nor its resends (a rejection would be reported as an
          // error of the application's client).
          command.resolve?.(undefined);
          return command.promise;
        }
        command.args = kept;
      }
    }
    return previous.call(this, command, ...rest);
  };
}

/**
 * Sends one of the library's own (un)subscribes of a private channel (`send` calls `redis.subscribe()` or the like,
 * which hands the command to ioredis synchronously): written now, or queued until the connection is ready, and never
 * resent or restored by ioredis afterwards (see {@link guardPrivateChannels}, installed here if it was not): a
 * resend resolves the promise with undefined instead of a reply.
 */
export function sendPrivateSubscriptionCommand<T>(
  redis: Redis,
  isPrivate: (channel: string) => boolean,
  send: () => Promise<T>,
  options: PrivateCommandOptions = {},
): Promise<T> {
  guardPrivateChannels(redis, isPrivate);
  const guard = (redis as unknown as GuardedClient)[PRIVATE_CHANNEL_GUARD] as PrivateChannelGuard;
  const client = redis as unknown as { condition?: { subscriber?: SubscriptionSetInternals | false } };
  guard.sendingOwn = true;
  guard.onOwn = (command) => {
    const resolve = command.resolve;
    if (typeof resolve !== 'function') return;
    const condition = client.condition;
    const set = condition?.subscriber;
    // ioredis resolves a pub/sub command synchronously while it reads the command's last reply: what runs here runs
    // before anything later on the connection is read. A resend the guard drops resolves with undefined.
    command.resolve = (value: unknown) => {
      if (value !== undefined) {
        if (
          options.keepSubscriberMode &&
          set &&
          client.condition === condition &&
          condition.subscriber === false &&
          !set.isEmpty()
        ) {
          condition.subscriber = set;
        }
        options.onAnswer?.(value);
      }
      resolve.call(command, value);
    };
  };
  try {
    return send();
  } finally {
    guard.sendingOwn = false;
    guard.onOwn = undefined;
  }
}

interface SubscriptionSetInternals {
  isEmpty(): boolean;
}

/** What {@link sendPrivateSubscriptionCommand} does when the server answers (a resend dropped by the guard: nothing). */
export interface PrivateCommandOptions {
  /** Called with the reply, synchronously as ioredis reads it, before anything later on the connection is read. */
  onAnswer?: (reply: unknown) => void;
  /**
   * For an unsubscribe: keep the client in subscriber mode if the reply takes it out while the client still holds
   * subscriptions. ioredis leaves subscriber mode on any unsubscribe reply that counts 0, but Redis counts sharded
   * channels apart from channels and patterns: the last channel of one kind leaves the connection in subscribe mode
   * as long as it holds one of the other.
   */
  keepSubscriberMode?: boolean;
}

/**
 * Calls `observe` with every pub/sub command the client sends from now on (and the promise of its reply), before
 * ioredis handles it. `onReply(transform)` changes what the command resolves with (the reply's subscription count);
 * the transform runs as the command's last reply is read, before anything later on the connection. `observe`
 * returns a function to postpone the send (ioredis sends the command when that function is called: queued offline if
 * the connection is down by then), `'offline'` to put it in ioredis's offline queue now (sent by ioredis when ready,
 * in order with what is queued there), or undefined to send it now. Returns `stop()`, after which nothing is observed.
 */
export function observeSubscriptionCommands(
  redis: Redis,
  observe: (
    command: SubscriptionCommand,
    answered: Promise<unknown>,
    onReply: (transform: (reply: unknown) => unknown) => void,
  ) => ((send: () => void) => void) | 'offline' | undefined,
): () => void {
  const client = redis as unknown as { sendCommand: SendCommand };
  const hadOwn = Object.prototype.hasOwnProperty.call(client, 'sendCommand');
  const previous = client.sendCommand;
  let active = true;
  const observing: SendCommand = function sendObserved(this: unknown, command, ...rest) {
    const parsed = active ? toSubscriptionCommand(command) : undefined;
    const onReply = (transform: (reply: unknown) => unknown) => {
      const target = command as { resolve?: (value: unknown) => void };
      const resolve = target.resolve;
      if (typeof resolve === 'function') target.resolve = (value: unknown) => resolve.call(command, transform(value));
    };
    const postpone =
      parsed && command.promise instanceof Promise ? observe(parsed, command.promise, onReply) : undefined;
    if (!postpone) return previous.call(this, command, ...rest);
    if (postpone === 'offline') {
      queueOffline(redis, command, rest[0]);
      return command.promise;
    }
    postpone(() => {
      previous.call(this, command, ...rest);
    });
    return command.promise;
  };
  client.sendCommand = observing;
  return () => {
    active = false; // stays a pass-through when something wrapped it since
    if (client.sendCommand !== observing) return;
    if (hadOwn) client.sendCommand = previous;
    else delete (client as Partial<typeof client>).sendCommand;
  };
}

/**
 * Puts `command` at the end of the client's offline queue, as ioredis does with a command it cannot write: its ready
 * handler sends the queue after the resubscriptions and the resent commands, in order with every command queued
 * there before or after it (a close keeps the queue; a flush rejects it).
 */
function queueOffline(redis: Redis, command: CommandInternals, stream: unknown): void {
  const client = redis as unknown as {
    offlineQueue: { push(item: unknown): unknown };
    condition?: { select?: unknown } | null;
  };
  client.offlineQueue.push({ command, stream, select: client.condition?.select });
}

/** The local port of the client's socket, when connected (what the server, or a proxy, sees as its peer port). */
export function localPort(redis: Redis): number | undefined {
  return (redis as unknown as { stream?: { localPort?: number } }).stream?.localPort;
}

/** True when the client's socket no longer accepts writes (ended or destroyed): what it sends now is queued offline. */
export function isWriteClosed(redis: Redis): boolean {
  const stream = (redis as unknown as { stream?: { writable?: boolean } }).stream;
  return !stream || stream.writable !== true;
}
