/**
 * Make-before-break move of a RESP2 subscriber to a fresh token, with no message lost or duplicated.
 *
 * A RESP2 connection in subscribe mode cannot send AUTH, so it must reconnect before its token expires. A shadow
 * connection (fresh token) subscribed to the same channels covers the reconnect, and two markers on a private channel,
 * published by a third connection, tell exactly where each stream ends and begins (Redis delivers every message to
 * all subscribers of a node in one order):
 *
 *   what the application sees = old connection up to marker A + shadow between A and B + reconnected after B.
 *
 * It is a state machine: `#on(event)` is the only place the phase changes. Every phase has a time bound; every
 * failure of a connection it owns (shadow, publisher) or of the client, in every phase, and every timeout, leads to
 * `done` or to `fallback`, which reconnects the client plainly with the fresh token (when it has not reconnected
 * already) and leaves nothing behind: the marker is removed from the client's subscription set and unsubscribed,
 * the shadow and the publisher are closed, every listener and timer is removed.
 *
 *   preparing    shadow + publisher connect; both the shadow and the client subscribe to the marker
 *   shadowing    the shadow subscribes to the application's channels (the server now counts two subscribers)
 *   splitting    marker A published; the client's socket is ended the moment it reads A (one subscriber again)
 *   reconnecting the shadow delivers live; the client reconnects with the fresh token and resubscribes
 *   joining     marker B published after the client's resubscriptions; the shadow closes the moment it reads B
 *
 * Two subscribers are counted from the shadow's SUBSCRIBE until the server sees the old socket close (one round trip
 * to publish A, plus A's way to the client), and from the client's resubscription until the server sees the shadow
 * close (the fence reply, B's publish, B's way to the shadow): nothing else runs inside either window.
 *
 * Subscriptions the application changes while a handover runs. Each (P|S)(UN)SUBSCRIBE the client sends is observed:
 * - Before marker A is written, it is mirrored on the shadow, and A is published only once the shadow has answered
 *   every mirror: the shadow holds each channel before A, so it covers it from A on, whichever side of A the server
 *   processed the client's own command.
 * - After A is written and before the client's socket is ended, the command is held back (ioredis then sends it on
 *   the reconnected connection, before marker B) and mirrored on the shadow at once: the old connection never sees it
 *   (it is about to close) and the shadow carries the channel from its own SUBSCRIBE. Shadow messages of such a
 *   channel that arrive before A are delivered too, since the old connection does not have them.
 * - While the client reconnects, ioredis queues the command and sends it before B; it is mirrored on the shadow. One
 *   sent during the new socket's handshake is queued offline too (ioredis 5 would write it at once, ahead of the
 *   resubscriptions): sent when the client is ready, before the fence, in order with the rest of the queue.
 * - After the fence (the client's post-reconnect marker SUBSCRIBE) is written, a new channel is not mirrored: the
 *   reconnected client delivers it at once, being its only carrier. An unsubscribe is mirrored so that the shadow
 *   stops delivering it, and the shadow's messages for it are dropped from the moment the client's unsubscribe is
 *   answered: nothing published after the application saw its unsubscribe complete reaches it.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { EntraToken } from '../token/entra-token.js';
import { publishHandoverPhase, type HandoverPhaseMessage } from '../tracing.js';
import {
  forceReconnect,
  forgetSubscription,
  isWriteClosed,
  localPort,
  observeSubscriptionCommands,
  sendPrivateSubscriptionCommand,
  subscriptionCommandsInFlight,
  subscriptions,
  type SubscriptionCommand,
} from './ioredis-internals.js';

const MESSAGE_EVENTS = [
  'message',
  'messageBuffer',
  'pmessage',
  'pmessageBuffer',
  'smessage',
  'smessageBuffer',
] as const;
const MESSAGE_EVENT_SET = new Set<string>(MESSAGE_EVENTS);
const MARKER_PREFIX = '__ioredis-entraid:handover:';
/** A marker channel of any handover (sharded ones start with a hash tag). */
const isMarker = (channel: string): boolean => channel.includes(MARKER_PREFIX);
/** Longest a phase before the reconnect may take (connecting the shadow and publisher, marker A's round trip). */
const HANDOVER_STEP_MAX_MS = 5_000;

/**
 * Calls `fn` once the I/O already arrived has been read: two turns of setImmediate put one poll phase of the event
 * loop (where sockets are read) between the call and `fn`, wherever in the loop the call is made.
 */
function afterPendingIo(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}

type Phase = HandoverPhaseMessage['phase'];
type Source = 'client' | 'shadow';
interface Recorded {
  event: string;
  args: unknown[];
}
type HandoverEvent =
  | { type: 'prepared' }
  | { type: 'shadowSubscribed' }
  | { type: 'mirrorsAnswered' }
  | { type: 'marker'; source: Source; payload: string }
  | { type: 'clientReady' }
  | { type: 'fenced'; epoch: number }
  | { type: 'lost'; who: 'client' | 'shadow' | 'publisher'; error?: unknown }
  /** The client ended (`disconnect()`, `quit()`, no retry left): it will not reconnect. */
  | { type: 'ended' }
  | { type: 'timeout' }
  | { type: 'markerReleased' };

/** The channel a message event is for: (channel, message) or, for pattern messages, (pattern, channel, message). */
function channelOf(event: string, args: unknown[]): string {
  return text(event.startsWith('pmessage') ? args[1] : args[0]);
}

function payloadOf(event: string, args: unknown[]): string {
  return text(event.startsWith('pmessage') ? args[2] : args[1]);
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString() : String(value);
}

/** Subscription a message event belongs to: `subscribe:<channel>`, `psubscribe:<pattern>` or `ssubscribe:<channel>`. */
function keyOf(event: string, args: unknown[]): string {
  if (event.startsWith('pmessage')) return `psubscribe:${text(args[0])}`;
  return `${event.startsWith('smessage') ? 'ssubscribe' : 'subscribe'}:${text(args[0])}`;
}

/** `subscribe`, `psubscribe` or `ssubscribe` for a (un)subscribe command's name. */
function kindOf(name: string): 'subscribe' | 'psubscribe' | 'ssubscribe' {
  const base = name.replace('unsubscribe', 'subscribe');
  return base as 'subscribe' | 'psubscribe' | 'ssubscribe';
}

/** The part of a channel name Redis Cluster hashes: the first non-empty {tag}, else the whole name. */
function hashTagOf(channel: string): string {
  const open = channel.indexOf('{');
  if (open !== -1) {
    const close = channel.indexOf('}', open + 1);
    if (close > open + 1) return channel.slice(open + 1, close);
  }
  return channel;
}

/** True for the events a handover must route: messages, on any channel. */
export function isMessageEvent(event: string | symbol): event is string {
  return typeof event === 'string' && MESSAGE_EVENT_SET.has(event);
}

/**
 * Thrown (redacted of nothing: it never holds a token) when a handover ends in the fallback. `refused`: the server
 * refused the fresh token on the handover's own connection (WRONGPASS at its handshake); the client was then left on
 * the connection it has, still authenticated with the token it holds, not reconnected with a token the server refuses.
 */
export class HandoverFailedError extends Error {
  constructor(
    readonly phase: Phase,
    reason: string,
    readonly refused = false,
  ) {
    super(
      refused
        ? `subscriber handover stopped in phase ${phase}: the server refused the new token`
        : `subscriber handover fell back to a reconnect in phase ${phase}: ${reason}`,
    );
    this.name = 'HandoverFailedError';
  }
}

/** True for the server's refusal of credentials at a connection's handshake (a ReplyError of AUTH or HELLO). */
function isCredentialRefusal(error: unknown): boolean {
  if (!(error instanceof Error) || error.name !== 'ReplyError') return false;
  const name = (error as { command?: { name?: unknown } }).command?.name;
  return typeof name === 'string' && (name.toLowerCase() === 'auth' || name.toLowerCase() === 'hello');
}

/**
 * One handover of `redis` to `token`. While it runs, `onClientMessage(event, args)` takes each of the client's own
 * message events (recording the handover's marker when it arrives) and says whether it reaches the application; `deliver` emits other events to the application directly. Each `deliver` call is
 * isolated here: an exception is rethrown on process.nextTick and the rest of a batch is delivered all the same.
 */
export class SubscriberHandover {
  readonly #redis: Redis;
  readonly #token: EntraToken;
  readonly #deliver: (event: string, ...args: unknown[]) => boolean;
  #marker = `${MARKER_PREFIX}${randomUUID()}`;
  /** Marker by SSUBSCRIBE/SPUBLISH (see #chooseMarker). */
  #sharded = false;
  /**
   * The client's socket on which the server holds the marker, followed in reply order (a closed connection's
   * subscriptions are gone): the replies of the marker's kind on it count the marker.
   */
  #markerHeldOn: unknown;
  #phase: Phase | 'idle' = 'idle';
  #failure: HandoverFailedError | undefined;
  #settle: ((error?: HandoverFailedError) => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stepMs = HANDOVER_STEP_MAX_MS;
  #joinMs = HANDOVER_STEP_MAX_MS;
  readonly #cleanups: Array<() => void> = [];

  #shadow: Redis | undefined;
  #publisher: Redis | undefined;
  /** Subscriptions (`kind:name`) the shadow holds or has been asked to hold. */
  readonly #shadowKeys = new Set<string>();
  /** Commands sent by the client before the shadow subscribed to the application's channels, replayed on it then. */
  readonly #mirrorBacklog: SubscriptionCommand[] = [];
  #mirrorsInFlight = 0;
  #markerAWritten = false;
  /** The shadow has answered its subscriptions to the application's channels. */
  #shadowSubscribed = false;
  /** Marker payloads whose PUBLISH was answered. */
  readonly #published = new Set<string>();
  #fenceWritten = false;
  /** Client commands held back between marker A and the end of the old socket. */
  #heldCommands: Array<() => void> = [];
  /** Subscriptions the old connection never carried (held back): the shadow delivers them even before A. */
  readonly #notOnOld = new Set<string>();
  /** Subscriptions only the reconnected client carries: it delivers them at once. */
  readonly #clientOnly = new Set<string>();
  /** Subscriptions the application has left (its unsubscribe answered): the shadow's messages for them are dropped. */
  readonly #left = new Set<string>();

  #clientSawA = false;
  #shadowSawA = false;
  #clientSawB = false;
  #shadowSawB = false;
  /** B's payload carries an epoch: a client that reconnects again during `joining` gets a new B. */
  #epoch = 0;
  /** Shadow messages waiting for the client to read A (the old connection delivers until then). */
  readonly #shadowBuffer: Recorded[] = [];
  /** Client messages after B, waiting for the shadow to read B. */
  readonly #clientHeld: Recorded[] = [];
  /** The shadow is done (stopped, failed or read B): nothing more is taken from it. */
  #shadowClosed = false;
  /** After a shadow failure past the reconnect: the client's messages are dropped until this fence is answered. */
  #dropUntilFence = false;
  /** The application left its last subscription while the handover ran: no reconnect, the client can take AUTH. */
  #appLeft = false;
  /** The server refused the fresh token on the shadow or the publisher: the client is not reconnected with it. */
  #refused = false;

  constructor(redis: Redis, token: EntraToken, deliver: (event: string, ...args: unknown[]) => boolean) {
    this.#redis = redis;
    this.#token = token;
    this.#deliver = deliver;
  }

  /** The current phase (for diagnostics and tests). */
  get phase(): Phase | 'idle' {
    return this.#phase;
  }

  /**
   * Takes one of the client's own message events: records the handover's marker when this is it, and returns whether
   * the event goes to the application now.
   */
  onClientMessage(event: string, args: unknown[]): boolean {
    if (channelOf(event, args) === this.#marker) {
      if (event === 'messageBuffer' || event === 'smessageBuffer')
        this.#on({ type: 'marker', source: 'client', payload: payloadOf(event, args) });
      return false;
    }
    switch (this.#phase) {
      case 'idle':
      case 'preparing':
      case 'shadowing':
      case 'done':
        return true;
      case 'fallback':
        return !this.#dropUntilFence;
      case 'splitting':
        return !this.#clientSawA; // after A the shadow has them
      case 'reconnecting':
      case 'joining':
        if (this.#dropUntilFence) return false;
        if (this.#clientSawB) {
          if (this.#shadowSawB || this.#shadowClosed) return true;
          this.#clientHeld.push({ event, args });
          return false;
        }
        return this.#clientOnly.has(keyOf(event, args)); // before B the shadow has the rest
    }
  }

  /**
   * Runs the handover. The phases up to the client's reconnect take at most `min(5 s, beforeExpiryMs)` each; the
   * reconnect and the join at most `joinMs` each. Resolves when the client is on the fresh token with its streams
   * joined; rejects with a {@link HandoverFailedError} after the fallback (the client is then reconnected, or
   * reconnecting, with the fresh token). Settles only once nothing of the handover remains.
   */
  run(beforeExpiryMs: number, joinMs: number): Promise<void> {
    this.#stepMs = Math.max(1, Math.min(HANDOVER_STEP_MAX_MS, beforeExpiryMs));
    this.#joinMs = Math.max(1, joinMs);
    return new Promise<void>((resolve, reject) => {
      this.#settle = (error) => (error ? reject(error) : resolve());
      try {
        this.#start();
      } catch (error) {
        this.#fail(String(error));
      }
    });
  }

  #start(): void {
    const subscribed = subscriptions(this.#redis);
    const [firstShardChannel] = subscribed.ssubscribe;
    const shardedOnly =
      subscribed.subscribe.length === 0 && subscribed.psubscribe.length === 0 && firstShardChannel !== undefined;
    if (shardedOnly) {
      // Only sharded subscriptions: a sharded marker in the same slot, so that SPUBLISH stays on this node (a cluster
      // node owns that slot, since it holds the application's channel).
      this.#sharded = true;
      this.#marker = `{${hashTagOf(firstShardChannel)}}${this.#marker}`;
    }
    // What the shadow must hold: the set now, then every command in flight or sent from now on, in order.
    for (const kind of ['subscribe', 'psubscribe', 'ssubscribe'] as const) {
      for (const name of subscribed[kind]) {
        if (name !== this.#marker) this.#mirrorBacklog.push({ name: kind, args: [name] });
      }
    }
    this.#mirrorBacklog.push(...subscriptionCommandsInFlight(this.#redis));
    this.#cleanups.push(
      observeSubscriptionCommands(this.#redis, (command, answered, onReply) =>
        this.#onClientCommand(command, answered, onReply),
      ),
    );
    const onClose = () => this.#on({ type: 'lost', who: 'client' });
    const onReady = () => this.#on({ type: 'clientReady' });
    const onEnd = () => this.#on({ type: 'ended' });
    this.#redis.on('close', onClose);
    this.#redis.on('ready', onReady);
    this.#redis.on('end', onEnd);
    this.#cleanups.push(() => {
      this.#redis.off('close', onClose);
      this.#redis.off('ready', onReady);
      this.#redis.off('end', onEnd);
    });
    this.#enter('preparing');

    const shadow = this.#connection('shadow');
    const publisher = this.#connection('handover');
    this.#shadow = shadow;
    this.#publisher = publisher;
    this.#watch(shadow, 'shadow');
    this.#watch(publisher, 'publisher');
    for (const event of MESSAGE_EVENTS) shadow.on(event, (...args: unknown[]) => this.#onShadowMessage(event, args));
    (shardedOnly ? publisher.ping() : this.#chooseMarker(publisher))
      .then(() => {
        // Nothing of ours goes on the client once the handover has ended (it failed while the marker was chosen).
        if (this.#phase !== 'preparing') return undefined;
        return Promise.all([
          this.#markerCommand(shadow, 'subscribe'),
          this.#markerCommand(this.#redis, 'subscribe'),
        ]).then(
          // undefined: the client's was not sent on this connection (it closed: that is the failure)
          ([, client]) =>
            client === undefined ? this.#fail('the client connection closed') : this.#on({ type: 'prepared' }),
        );
      })
      .catch((error: unknown) => this.#onCommandFailure(error));
  }

  /**
   * A sharded marker wherever the server takes one for this name (Redis 7 or later, standalone, or the cluster node
   * that owns the name's slot), else a plain one (Redis 6: unknown command; another node's slot: MOVED). Sharded, the
   * marker is out of sight: pattern subscribers never receive SPUBLISH messages, and the counts that SUBSCRIBE and
   * PSUBSCRIBE reply with leave sharded channels out. Order holds across kinds: a connection reads the messages of
   * both kinds in the order they were published. The probe is an SPUBLISH of the marker before anyone subscribes to
   * it: delivered to nobody. Not with a `keyPrefix`: ioredis would prefix the client's SSUBSCRIBE of the marker.
   */
  #chooseMarker(publisher: Redis): Promise<void> {
    if (this.#redis.options.keyPrefix) return publisher.ping().then(() => undefined);
    return publisher.spublish(this.#marker, 'probe').then(
      () => {
        this.#sharded = true;
      },
      (error: unknown) => {
        if (!(error instanceof Error && error.name === 'ReplyError')) throw error;
      },
    );
  }

  /** The one place the phase changes. */
  #on(event: HandoverEvent): void {
    const phase = this.#phase;
    if (phase === 'done' || phase === 'fallback' || phase === 'idle') {
      if (event.type === 'markerReleased' && this.#settle) this.#finish();
      return;
    }
    switch (event.type) {
      case 'prepared':
        if (phase !== 'preparing') return;
        this.#enter('shadowing');
        this.#subscribeShadow();
        return;
      case 'shadowSubscribed':
      case 'mirrorsAnswered':
        // A comes after the shadow holds every subscription, mirrored ones included.
        if (phase === 'shadowing' && this.#shadowSubscribed && this.#mirrorsInFlight === 0) this.#publishA();
        return;
      case 'marker':
        this.#onMarker(event.source, event.payload);
        return;
      case 'clientReady':
        // After ioredis's resubscriptions and offline queue (written before 'ready'): the fence follows them.
        if (phase === 'reconnecting') this.#fence();
        return;
      case 'fenced':
        if (phase !== 'reconnecting' || event.epoch !== this.#epoch) return;
        this.#enter('joining');
        this.#publish(`B${this.#epoch}`);
        return;
      case 'lost':
        this.#onLost(event.who);
        return;
      case 'timeout':
        this.#fail(`timed out in phase ${phase}`);
        return;
      case 'ended':
        // Nothing to wait for in any phase: the shadow and the publisher close now, not at a phase's bound.
        this.#fail('the client was closed');
        return;
      case 'markerReleased':
        return;
    }
  }

  #subscribeShadow(): void {
    const shadow = this.#shadow as Redis;
    const backlog = this.#mirrorBacklog.splice(0);
    const sends = backlog.map((command) => this.#mirror(shadow, command));
    // Nothing to subscribe (the application left all its channels): the split still needs A.
    Promise.all(sends).then(
      () => {
        this.#shadowSubscribed = true;
        this.#on({ type: 'shadowSubscribed' });
      },
      (error: unknown) => this.#onCommandFailure(error),
    );
  }

  /** Sends `command` on the shadow, translated so that it never touches the marker; tracks what the shadow holds. */
  #mirror(shadow: Redis, command: SubscriptionCommand): Promise<unknown> {
    const kind = kindOf(command.name);
    const subscribing = command.name === kind;
    let args = command.args.filter((name) => name !== this.#marker);
    if (!subscribing && command.args.length === 0) {
      // UNSUBSCRIBE with no argument leaves every channel of that kind, the marker excepted.
      args = [...this.#shadowKeys].filter((key) => key.startsWith(`${kind}:`)).map((key) => key.slice(kind.length + 1));
    }
    if (args.length === 0) return Promise.resolve();
    for (const name of args) {
      if (subscribing) this.#shadowKeys.add(`${kind}:${name}`);
      else this.#shadowKeys.delete(`${kind}:${name}`);
    }
    const send = (shadow as unknown as Record<string, (...a: string[]) => Promise<unknown>>)[command.name] as (
      ...a: string[]
    ) => Promise<unknown>;
    if (kind === 'ssubscribe') return Promise.all(args.map((name) => send.call(shadow, name)));
    return send.call(shadow, ...args);
  }

  /**
   * Whether, once `command` (an unsubscribe) is done, the application holds no subscription of that command's kind
   * (channels and patterns, or sharded channels, which Redis counts apart; its reply counts 0 on a plain client and
   * ioredis leaves subscriber mode), and whether it holds none at all. The marker must be gone by then: of the same
   * kind it would keep the count above 0, and it must not keep a connection the application left in subscribe mode.
   */
  #leavesItsKind(command: SubscriptionCommand): { kind: boolean; all: boolean } {
    const held = subscriptions(this.#redis);
    const sets = {
      subscribe: new Set(held.subscribe),
      psubscribe: new Set(held.psubscribe),
      ssubscribe: new Set(held.ssubscribe),
    };
    for (const queued of [...subscriptionCommandsInFlight(this.#redis), command]) {
      const set = sets[kindOf(queued.name)];
      if (queued.name === kindOf(queued.name)) for (const name of queued.args) set.add(name);
      else if (queued.args.length === 0) set.clear();
      else for (const name of queued.args) set.delete(name);
    }
    sets.subscribe.delete(this.#marker);
    sets.ssubscribe.delete(this.#marker);
    const channelsAndPatterns = sets.subscribe.size + sets.psubscribe.size;
    const kind = kindOf(command.name) === 'ssubscribe' ? sets.ssubscribe.size === 0 : channelsAndPatterns === 0;
    return { kind, all: channelsAndPatterns + sets.ssubscribe.size === 0 };
  }

  /**
   * Every pub/sub command the client sends while the handover runs. One sent while the client's new socket is in its
   * handshake (status `connect`: the ready check's INFO written, the resubscriptions not yet) goes to ioredis's offline
   * queue: ioredis 5 would write it at once, ahead of the resubscriptions (its reply would count only what the new
   * connection holds so far) and ahead of the ready check's answer (which subscribe mode then refuses). Queued offline,
   * it is sent when the client is ready, after the resubscriptions, and in order with every command the application
   * sends after it, also across a drop of that socket (held apart, it would follow those queued offline meanwhile: an
   * UNSUBSCRIBE held across a drop undid the SUBSCRIBE the application sent after it). ioredis 6 queues it offline
   * itself while its handshake runs; a plain client on a connection that stays up never meets the case.
   */
  #onClientCommand(
    command: SubscriptionCommand,
    answered: Promise<unknown>,
    onReply: (transform: (reply: unknown) => unknown) => void,
  ): ((send: () => void) => void) | 'offline' | undefined {
    const postpone = this.#routeClientCommand(command, answered, onReply);
    if (postpone || command.args.includes(this.#marker) || !this.#inHandshake()) return postpone;
    return 'offline';
  }

  /** The client reconnects for this handover and its new socket is in its handshake. */
  #inHandshake(): boolean {
    return (this.#phase === 'reconnecting' || this.#phase === 'joining') && this.#redis.status === 'connect';
  }

  /** How a pub/sub command the client sends while the handover runs is carried (see the module comment). */
  #routeClientCommand(
    command: SubscriptionCommand,
    answered: Promise<unknown>,
    onReply: (transform: (reply: unknown) => unknown) => void,
  ): ((send: () => void) => void) | undefined {
    if (command.args.includes(this.#marker)) return undefined; // ours, or ioredis restoring ours
    const kind = kindOf(command.name);
    const subscribing = command.name === kind;
    // The count the application's command resolves with is the server's, less the marker when the server counts it
    // among this kind as it answers.
    onReply((count) => {
      const counted =
        this.#markerHeldOn !== undefined &&
        this.#markerHeldOn === this.#redis.stream &&
        (kind === 'ssubscribe') === this.#sharded;
      return typeof count === 'number' && counted ? count - 1 : count;
    });
    const phase = this.#phase;
    if (phase === 'done' || phase === 'fallback' || phase === 'idle') return undefined;
    const keys = command.args.map((name) => `${kind}:${name}`);
    const leaves = subscribing ? undefined : this.#leavesItsKind(command);
    if (leaves?.kind) {
      // The application leaves its last subscription of a kind: the marker must be gone before. The fallback's
      // unsubscribe of the marker is written before the application's command, so the latter's reply counts 0 and
      // ioredis leaves subscriber mode exactly as on a plain client (the marker's own reply does not take it out).
      // Left with nothing, the client is not reconnected: it takes AUTH.
      this.#appLeft = leaves.all;
      this.#fail('the application left subscribe mode');
      return undefined;
    }
    if (subscribing) for (const key of keys) this.#left.delete(key);
    else {
      // From the moment the application's unsubscribe is answered, the shadow's messages for it are dropped.
      const affected = keys.length > 0 ? keys : [...this.#shadowKeys].filter((key) => key.startsWith(`${kind}:`));
      answered.then(
        () => {
          for (const key of affected) this.#left.add(key);
        },
        () => {},
      );
    }
    if (this.#fenceWritten) {
      // The reconnected client carries what it subscribes from now on; the shadow only stops what is left.
      if (subscribing) {
        for (const key of keys) if (!this.#shadowKeys.has(key)) this.#clientOnly.add(key);
      } else if (this.#shadow && !this.#shadowClosed) {
        this.#mirror(this.#shadow, command).catch(() => {});
      }
      return undefined;
    }
    if (phase === 'preparing') {
      this.#mirrorBacklog.push(command);
      return undefined;
    }
    const shadow = this.#shadow as Redis;
    this.#mirrorsInFlight++;
    this.#mirror(shadow, command).then(
      () => {
        this.#mirrorsInFlight--;
        this.#on({ type: 'mirrorsAnswered' });
      },
      (error: unknown) => {
        this.#mirrorsInFlight--;
        this.#onCommandFailure(error);
      },
    );
    if (this.#markerAWritten && !this.#clientSawA && !isWriteClosed(this.#redis)) {
      if (subscribing) for (const key of keys) this.#notOnOld.add(key);
      return (send) => {
        this.#heldCommands.push(send);
      };
    }
    return undefined;
  }

  #publishA(): void {
    this.#markerAWritten = true;
    this.#enter('splitting');
    this.#publish('A');
  }

  #publish(payload: string): void {
    const publisher = this.#publisher as Redis;
    (this.#sharded ? publisher.spublish(this.#marker, payload) : publisher.publish(this.#marker, payload)).then(
      () => {
        this.#published.add(payload);
      },
      (error: unknown) => this.#onCommandFailure(error),
    );
  }

  #onMarker(source: Source, payload: string): void {
    const phase = this.#phase;
    if (payload === 'A') {
      if (source === 'client' && phase === 'splitting' && !this.#clientSawA) {
        this.#clientSawA = true;
        // Everything up to A is delivered; end the old socket now (this ends the first two-subscriber window).
        forceReconnect(this.#redis);
        for (const send of this.#heldCommands.splice(0)) send();
      } else if (source === 'shadow' && phase === 'splitting') {
        this.#shadowSawA = true;
      }
      if (this.#phase === 'splitting' && this.#clientSawA && this.#shadowSawA) {
        this.#enter('reconnecting');
        this.#flush(this.#shadowBuffer);
        // ioredis may have become ready already (a fast reconnect) while we waited for the shadow's A.
        if (this.#redis.status === 'ready') this.#fence();
      }
      return;
    }
    if (payload !== `B${this.#epoch}` || phase !== 'joining') return;
    if (source === 'client') this.#clientSawB = true;
    else {
      this.#shadowSawB = true;
      this.#closeShadow(); // ends the second two-subscriber window
    }
    if (this.#clientSawB && this.#shadowSawB) this.#succeed();
  }

  #onShadowMessage(event: string, args: unknown[]): void {
    if (this.#shadowClosed) return;
    if (channelOf(event, args) === this.#marker) {
      if (event === 'messageBuffer' || event === 'smessageBuffer')
        this.#on({ type: 'marker', source: 'shadow', payload: payloadOf(event, args) });
      return;
    }
    const key = keyOf(event, args);
    if (this.#left.has(key)) return;
    if (!this.#shadowSawA) {
      // Before A the old connection delivers, except what it never carried.
      if (this.#notOnOld.has(key)) this.#shadowBuffer.push({ event, args });
      return;
    }
    if (this.#phase === 'splitting') this.#shadowBuffer.push({ event, args });
    else this.#emit(event, args);
  }

  /** The client's resubscriptions are sent (ioredis sends them before its 'ready' event): SUBSCRIBE the marker again
   * and, once answered, publish B: everything the reconnected client reads after B comes after its resubscriptions. */
  #fence(): void {
    const epoch = ++this.#epoch;
    this.#fenceWritten = true;
    this.#markerCommand(this.#redis, 'subscribe').then(
      // undefined: not sent (its connection dropped before it was written; the next ready sends a new fence)
      (reply) => {
        if (reply !== undefined) this.#on({ type: 'fenced', epoch });
      },
      () => {
        /* the client dropped: its 'close' is the event */
      },
    );
  }

  #onLost(who: 'client' | 'shadow' | 'publisher'): void {
    const phase = this.#phase;
    if (who === 'client') {
      // The end of the old socket after A is ours.
      if (phase === 'splitting' && this.#clientSawA) return;
      if (phase === 'reconnecting') return; // ioredis keeps reconnecting; the phase's bound applies
      if (phase === 'joining') {
        if (this.#clientSawB) return; // what it held after B stays valid; the shadow covers up to B
        // Reconnected again before B: the shadow still covers; a new fence and a new B follow the next ready.
        this.#clientHeld.length = 0;
        this.#enter('reconnecting');
        return;
      }
      this.#fail('the client connection closed');
      return;
    }
    if (who === 'shadow' && this.#shadowSawB) return;
    // The publisher is needed until the last B is published.
    if (who === 'publisher' && phase === 'joining' && this.#published.has(`B${this.#epoch}`)) return;
    this.#fail(`the ${who} connection closed`);
  }

  #onCommandFailure(error: unknown): void {
    if (isCredentialRefusal(error)) this.#refused = true;
    this.#fail(error instanceof Error ? error.message : String(error));
  }

  #succeed(): void {
    this.#enter('done');
    this.#flush(this.#clientHeld);
    this.#teardown();
  }

  /**
   * Any failure, in any phase. What the application gets: everything up to the failure from the source that was
   * delivering, then the client again; what a connection drop loses, and never a message twice.
   */
  #fail(reason: string): void {
    const phase = this.#phase;
    if (phase === 'done' || phase === 'fallback' || phase === 'idle') return;
    this.#failure = new HandoverFailedError(phase, reason, this.#refused && !this.#clientSawA);
    const clientMoved = this.#clientSawA;
    this.#enter('fallback');
    this.#closeShadow();
    for (const send of this.#heldCommands.splice(0)) send();
    if (!clientMoved) {
      // The old connection delivered everything so far; of the shadow's part, only what it never carried is needed.
      this.#flush(this.#shadowBuffer.splice(0).filter(({ event, args }) => this.#notOnOld.has(keyOf(event, args))));
      // Not reconnected when the server refuses the fresh token (the reconnect would present it and be refused in
      // a loop, while the connection the client has is good until the token it holds expires), nor when the
      // application left subscribe mode (the client takes AUTH again).
      if (this.#redis.status === 'ready' && !isWriteClosed(this.#redis) && !this.#appLeft && !this.#refused)
        forceReconnect(this.#redis);
    } else {
      // The shadow delivered up to its end. The client's messages after B (if it read B) come after everything the
      // shadow had; without B, a fence sent now splits the client's stream: what it reads before the fence's answer
      // may be older than the shadow's end, and is dropped (lost, as across a reconnect), never delivered twice.
      this.#flush(this.#shadowBuffer);
      if (this.#clientSawB) this.#flush(this.#clientHeld);
      else if (this.#redis.status === 'ready' && !isWriteClosed(this.#redis) && this.#shadowSawA) {
        this.#dropUntilFence = true;
        const stopDropping = () => {
          this.#dropUntilFence = false;
        };
        this.#redis.ping().then(stopDropping, stopDropping);
      }
      // Not ready yet: its resubscriptions are written after the shadow's end, so all it reads is newer.
    }
    this.#teardown();
  }

  /** Removes the marker from the client, closes the handover's connections, and settles once the marker is gone. */
  #teardown(): void {
    this.#clearTimer();
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#closeShadow();
    this.#publisher?.disconnect();
    this.#publisher?.removeAllListeners();
    const type = this.#sharded ? 'ssubscribe' : 'subscribe';
    forgetSubscription(this.#redis, type, this.#marker);
    if (this.#redis.status === 'ready' && isWriteClosed(this.#redis)) {
      // Ended by us a moment ago: what is still on its way in may hold a marker; done once the socket is closed.
      const closed = () => this.#on({ type: 'markerReleased' });
      this.#redis.once('close', closed);
      this.#armFinishBound(() => this.#redis.off('close', closed));
      return;
    }
    if (this.#redis.status !== 'ready') {
      // Reconnecting: the marker is no longer in what ioredis restores, so nothing of it comes back.
      this.#finish();
      return;
    }
    // In order behind everything sent before: once answered, no marker message can reach the client any more.
    const released = () => this.#on({ type: 'markerReleased' });
    this.#markerCommand(this.#redis, 'unsubscribe').then(released, released);
    // An unanswered UNSUBSCRIBE means a stuck connection: reconnecting it drops the marker for good.
    this.#armFinishBound(() => {
      if (this.#redis.status === 'ready') forceReconnect(this.#redis);
    });
  }

  /** The last wait (for the marker to be gone) is bounded too. */
  #armFinishBound(onTimeout: () => void): void {
    this.#arm(this.#joinMs, () => {
      onTimeout();
      this.#finish();
    });
  }

  /**
   * Arms the bound of what the handover waits for now: `onExpiry` runs after `ms` unless the wait ends first (any
   * {@link #clearTimer}). After a stall of the process (a loaded machine), timers run before the I/O that arrived
   * meanwhile is read, so the awaited reply or marker may already be in the socket when the timer fires: it is read
   * first, and `onExpiry` runs only if the wait is still on then. Acting on the timer alone would fail a handover, or
   * reconnect a client whose handover is done, losing the messages published while it reconnects.
   */
  #arm(ms: number, onExpiry: () => void): void {
    this.#clearTimer();
    const timer = setTimeout(() => {
      afterPendingIo(() => {
        if (this.#timer !== timer) return; // the wait ended meanwhile
        this.#timer = undefined;
        onExpiry();
      });
    }, ms);
    (timer as { unref?: () => void }).unref?.(); // a timer from a fake-timer library may lack unref
    this.#timer = timer;
  }

  #finish(): void {
    this.#clearTimer();
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.(this.#phase === 'done' ? undefined : this.#failure);
  }

  #closeShadow(): void {
    if (this.#shadowClosed && !this.#shadow) return;
    this.#shadowClosed = true;
    this.#shadow?.disconnect();
    this.#shadow?.removeAllListeners();
    this.#shadow?.on('error', () => {});
  }

  #enter(phase: Phase): void {
    this.#phase = phase;
    this.#clearTimer();
    if (phase !== 'done' && phase !== 'fallback') {
      const bound = phase === 'reconnecting' || phase === 'joining' ? this.#joinMs : this.#stepMs;
      this.#arm(bound, () => this.#on({ type: 'timeout' }));
    }
    publishHandoverPhase(() => ({
      connection: this.#description(),
      phase,
      ports: {
        client: localPort(this.#redis),
        shadow: this.#shadow && localPort(this.#shadow),
        publisher: this.#publisher && localPort(this.#publisher),
      },
    }));
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Delivers recorded events in order; one throwing listener does not stop the rest (rethrown on the next tick). */
  #flush(list: Recorded[]): void {
    for (const { event, args } of list.splice(0)) this.#emit(event, args);
  }

  #emit(event: string, args: unknown[]): void {
    try {
      this.#deliver(event, ...args);
    } catch (error) {
      process.nextTick(() => {
        throw error;
      });
    }
  }

  #watch(connection: Redis, who: 'shadow' | 'publisher'): void {
    connection.on('error', (error: unknown) => {
      // its 'close' (or a failed command) is what fails the handover; a refused handshake says why
      if (isCredentialRefusal(error)) this.#refused = true;
    });
    connection.on('close', () => this.#on({ type: 'lost', who }));
  }

  /**
   * (UN)SUBSCRIBE of the marker. On the client it is written once, on the connection it is meant for: ioredis neither
   * resends it after a reconnect nor restores the marker with the application's channels (a reply read after the
   * handover forgot the marker would otherwise put it back in the set ioredis restores).
   */
  #markerCommand(client: Redis, action: 'subscribe' | 'unsubscribe'): Promise<unknown> {
    const send = () => {
      if (this.#sharded)
        return action === 'subscribe' ? client.ssubscribe(this.#marker) : client.sunsubscribe(this.#marker);
      return action === 'subscribe' ? client.subscribe(this.#marker) : client.unsubscribe(this.#marker);
    };
    if (client !== this.#redis) return send();
    return sendPrivateSubscriptionCommand(client, isMarker, send, {
      onAnswer: () => {
        this.#markerHeldOn = action === 'subscribe' ? client.stream : undefined;
      },
      keepSubscriberMode: action === 'unsubscribe',
    });
  }

  #description(): string {
    const { connectionName, host, port, path } = this.#redis.options;
    return connectionName ?? (path ? path : `${host ?? 'localhost'}:${port ?? 6379}`);
  }

  /** A plain, short-lived connection to the same server with the fresh token. */
  #connection(role: string): Redis {
    const options = this.#redis.options;
    return new Redis({
      ...options,
      username: this.#token.username,
      password: this.#token.password,
      connectionName: options.connectionName ? `${options.connectionName}:${role}` : undefined,
      keyPrefix: undefined,
      lazyConnect: false,
      autoResubscribe: false,
      enableOfflineQueue: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 1,
      ...({ Connector: undefined } as object),
    });
  }
}
