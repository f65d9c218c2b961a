/**
 * Make-before-break move of a RESP2 subscriber to a fresh token, with no message lost or duplicated.
 *
 * A RESP2 connection in subscribe mode cannot send AUTH, so it must reconnect before its token expires. Meanwhile a
 * shadow connection (fresh token) subscribed to the same channels and patterns records what is published, and two
 * markers on a private channel tell exactly where each stream ends and begins (Redis delivers every message to all
 * subscribers of a node in the same order):
 *
 *   what the application sees = old connection up to marker A + shadow between A and B + reconnected after B.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { EntraToken } from '../token/entra-token.js';
import { forceReconnect, subscriptions } from './ioredis-internals.js';

const MESSAGE_EVENTS = new Set(['message', 'messageBuffer', 'pmessage', 'pmessageBuffer', 'smessage', 'smessageBuffer']);
const MARKER_PREFIX = '__ioredis-entraid:handover:';

type Phase = 'old' | 'gap' | 'joining' | 'done';
interface Recorded { event: string; args: unknown[] }

/** The channel a message event is for: (channel, message) or, for pattern messages, (pattern, channel, message). */
function channelOf(event: string, args: unknown[]): string {
  const value = event.startsWith('pmessage') ? args[1] : args[0];
  return Buffer.isBuffer(value) ? value.toString() : String(value);
}

function payloadOf(event: string, args: unknown[]): string {
  const value = event.startsWith('pmessage') ? args[2] : args[1];
  return Buffer.isBuffer(value) ? value.toString() : String(value);
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
  return typeof event === 'string' && MESSAGE_EVENTS.has(event);
}

/** Resolves when `check()` is true, re-checked on every `poke()`; rejects after `ms`. */
class Gate {
  #waiters: Array<() => void> = [];
  poke(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }
  async until(check: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`subscriber handover: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        timer.unref?.();
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }
}

/**
 * One handover of `redis` to `token`. While it runs, `filter(event, args)` decides which of the client's own message
 * events reach the application; `deliver` emits recorded events to the application directly.
 */
export class SubscriberHandover {
  readonly #redis: Redis;
  readonly #token: EntraToken;
  readonly #deliver: (event: string, ...args: unknown[]) => boolean;
  #marker = `${MARKER_PREFIX}${randomUUID()}`;
  /** Marker by SSUBSCRIBE/SPUBLISH, for a connection with sharded subscriptions only. */
  #sharded = false;
  readonly #gate = new Gate();
  #phase: Phase = 'old';
  #shadowSawA = false;
  #shadowSawB = false;
  /** Shadow messages between A and B. */
  readonly #recorded: Recorded[] = [];
  /** The client's own messages after B, held until the shadow's part is delivered. */
  readonly #held: Recorded[] = [];
  #shadow: Redis | undefined;
  #publisher: Redis | undefined;

  constructor(redis: Redis, token: EntraToken, deliver: (event: string, ...args: unknown[]) => boolean) {
    this.#redis = redis;
    this.#token = token;
    this.#deliver = deliver;
  }

  /** Whether the client's own message event goes to the application now. */
  filter(event: string, args: unknown[]): boolean {
    const channel = channelOf(event, args);
    if (channel === this.#marker) {
      if (event === 'messageBuffer' || event === 'smessageBuffer') this.#onOwnMarker(payloadOf(event, args));
      return false;
    }
    switch (this.#phase) {
      case 'old':
      case 'done':
        return true;
      case 'gap':
        return false; // the shadow has these
      case 'joining':
        this.#held.push({ event, args });
        return false;
    }
  }

  /**
   * Runs the handover. Until marker A has been seen on both connections it races the old token's expiry
   * (`beforeExpiryMs`); from then on the old connection is no longer needed (if the server closes it, ioredis
   * reconnects it with the fresh token all the same), and reconnecting and joining the streams may take up to
   * `joinMs`. On failure the client is still moved to the token (with a plain reconnect).
   */
  async run(beforeExpiryMs: number, joinMs: number): Promise<void> {
    const started = Date.now();
    let deadline = started + beforeExpiryMs;
    const left = () => Math.max(0, deadline - Date.now());
    let onReady: (() => void) | undefined;
    try {
      const subscribed = subscriptions(this.#redis);
      const [firstShardChannel] = subscribed.ssubscribe;
      if (subscribed.subscribe.length === 0 && subscribed.psubscribe.length === 0 && firstShardChannel !== undefined) {
        // Only sharded subscriptions: a plain UNSUBSCRIBE of the marker would report 0 channels left and make ioredis
        // leave subscribe mode. A sharded marker in the same slot avoids that, and SPUBLISH stays on this node.
        this.#sharded = true;
        this.#marker = `{${hashTagOf(firstShardChannel)}}${this.#marker}`;
      }
      const shadow = this.#connection('shadow');
      this.#shadow = shadow;
      this.#publisher = this.#connection('handover');
      this.#publisher.on('error', () => {
        // a failed publisher fails the handover through its commands
      });
      this.#watchShadow(shadow);
      // All at once: the old token's remaining life bounds this part. Only marker A must come after the rest.
      await Promise.all([
        this.#subscribeMarker(shadow),
        subscribed.subscribe.length > 0 ? shadow.subscribe(...subscribed.subscribe) : undefined,
        subscribed.psubscribe.length > 0 ? shadow.psubscribe(...subscribed.psubscribe) : undefined,
        ...subscribed.ssubscribe.map((channel) => shadow.ssubscribe(channel)),
        this.#subscribeMarker(this.#redis),
        this.#publisher.ping(),
      ]);
      await this.#publishMarker('A');
      await this.#gate.until(() => this.#phase === 'gap' && this.#shadowSawA, left(), 'marker A');
      deadline = Date.now() + joinMs;
      let reconnected = false;
      onReady = () => { reconnected = true; this.#gate.poke(); };
      this.#redis.once('ready', onReady);
      // Already reconnecting when the server closed the old connection: ioredis brings it back with the fresh token.
      if (this.#redis.status === 'ready') forceReconnect(this.#redis);
      await this.#gate.until(() => reconnected, left(), 'the reconnect');
      // Sent after ioredis's own resubscriptions: its reply means they are all in place.
      await this.#subscribeMarker(this.#redis);
      await this.#publishMarker('B');
      await this.#gate.until(() => this.#phase === 'joining' && this.#shadowSawB, left(), 'marker B');
      this.#finish();
      await (this.#sharded ? this.#redis.sunsubscribe(this.#marker) : this.#redis.unsubscribe(this.#marker)).catch(() => {});
    } catch (error) {
      this.#finish();
      if (this.#redis.status === 'ready' && !this.#reconnected()) forceReconnect(this.#redis);
      throw error;
    } finally {
      if (onReady) this.#redis.off('ready', onReady);
      this.#shadow?.disconnect();
      this.#publisher?.disconnect();
    }
  }

  async #subscribeMarker(client: Redis): Promise<void> {
    await (this.#sharded ? client.ssubscribe(this.#marker) : client.subscribe(this.#marker));
  }

  async #publishMarker(payload: 'A' | 'B'): Promise<void> {
    const publisher = this.#publisher as Redis;
    await (this.#sharded ? publisher.spublish(this.#marker, payload) : publisher.publish(this.#marker, payload));
  }

  #reconnected(): boolean {
    return this.#phase === 'joining' || this.#phase === 'done';
  }

  /** Delivers the shadow's part, then what the client held back; from then on the client delivers. */
  #finish(): void {
    if (this.#phase === 'done') return;
    const wasOld = this.#phase === 'old';
    this.#phase = 'done';
    if (wasOld) return;
    for (const { event, args } of this.#recorded.splice(0)) this.#deliver(event, ...args);
    for (const { event, args } of this.#held.splice(0)) this.#deliver(event, ...args);
  }

  #onOwnMarker(payload: string): void {
    // marker A before the reconnect, B after it
    if (payload === 'A' && this.#phase === 'old') this.#phase = 'gap';
    else if (payload === 'B' && this.#phase === 'gap') this.#phase = 'joining';
    this.#gate.poke();
  }

  #watchShadow(shadow: Redis): void {
    shadow.on('error', () => {
      // a failed shadow fails the handover through its commands
    });
    for (const event of MESSAGE_EVENTS) {
      shadow.on(event, (...args: unknown[]) => {
        if (channelOf(event, args) === this.#marker) {
          if (event === 'messageBuffer' || event === 'smessageBuffer') {
            const payload = payloadOf(event, args);
            if (payload === 'A') this.#shadowSawA = true;
            if (payload === 'B') this.#shadowSawB = true;
            this.#gate.poke();
          }
          return;
        }
        if (this.#shadowSawA && !this.#shadowSawB) this.#recorded.push({ event, args });
      });
    }
  }

  /** A plain, short-lived connection to the same server with the fresh token. */
  #connection(role: string): Redis {
    const options = this.#redis.options as RedisOptions;
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
