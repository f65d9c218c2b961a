import type { Redis } from 'ioredis';
import { redactError } from '../token/redact-error.js';
import type { EntraCredentialsProvider, TokenSubscriber } from '../identity/credentials-provider.js';
import { describeToken } from '../identity/events.js';
import { emitIsolated } from '../listener-errors.js';
import { isUsable, usableUntil } from '../manager/schedule.js';
import type { EntraToken } from '../token/entra-token.js';
import { isReauthTraced, publishReauthReconnect, traceReauthentication } from '../tracing.js';
import { connectionState, reauthMethod } from './connection-state.js';
import { addDeadline, cancelDeadline, type Deadline } from './deadlines.js';
import {
  type EmitHook,
  blockingCommandInFlight,
  forceReconnect,
  hasBlockingCommandInFlight,
  interceptConnect,
  interceptEmit,
  isResp2Subscriber,
  redactCredentialCommands,
  resetTransaction,
  setHandshakeCredentials,
  watchCommands,
  withdrawCommand,
} from './ioredis-internals.js';
import { handleStateRestoreRejections } from './ioredis-workarounds.js';
import { endRefusal, heldDuringRefusal, isRefused, recordRefusal } from './refusals.js';
import { HandoverFailedError, isMessageEvent, SubscriberHandover } from './pubsub-handover.js';

/** First delay before an AUTH that was not answered OK is tried again; doubles up to the max. */
const REAUTH_RETRY_INITIAL_MS = 50;
const REAUTH_RETRY_MAX_MS = 1_000;
/** Once a RESP2 subscriber has reconnected, joining its stream to the shadow's may take this long at most. */
const HANDOVER_JOIN_MAX_MS = 15_000;

/**
 * When a connection still authenticated with `token` is reconnected if its re-AUTH has not completed (epoch ms): the
 * same margin as for presenting a token, min(5 s, 20 % of its lifetime) before it expires.
 */
export function reauthDeadline(token: EntraToken): number {
  return usableUntil(token);
}

export interface ClientBindingOptions {
  /** Spread of re-AUTH across connections, ms: each waits a random time up to this. Default 0. */
  reauthJitter?: number;
}

/**
 * A re-authentication under way on one connection, and what it waits for:
 * - `jitter`: the random spread before the first AUTH;
 * - `transaction`: the application's MULTI is open; the AUTH is written right after its EXEC or DISCARD;
 * - `blocked`: a blocking command holds the connection; the AUTH is written when it returns;
 * - `in-flight`: the AUTH is written and its reply not yet read;
 * - `retry`: the last AUTH failed (not refused by the server); the next is tried after a back-off;
 * - `handover`: a RESP2 subscriber is being moved to a connection with the token.
 * Each of them ends in {@link ClientBinding.advance}, which picks the way from the connection's state, or in the
 * deadline: a connection that still holds the old token min(5 s, 20 %) before it expires is reconnected.
 */
interface PendingReauth {
  readonly binding: ClientBinding;
  token: EntraToken;
  phase: 'jitter' | 'transaction' | 'blocked' | 'in-flight' | 'retry' | 'handover';
  /** AUTH attempts sent for this token. */
  attempts: number;
  /** Back-off before the next attempt after a failure, ms. */
  retryDelay: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Shared with every connection whose deadline is the same instant (lib/binding/deadlines.ts). */
  deadline: Deadline | undefined;
  /** The reply of the AUTH in flight (ioredis's own promise of the command), while phase is 'in-flight'. */
  sent: Promise<unknown> | undefined;
}

const BINDING = Symbol('ioredis-entraid.binding');
type Bound = Redis & { [BINDING]?: ClientBinding };

/** The binding of a client, if it has one. */
export function bindingOf(redis: Redis): ClientBinding | undefined {
  return (redis as Bound)[BINDING];
}

/** The functions a binding gives ioredis (listeners get the client as `this`, as EventEmitter calls them). */
interface SharedHooks {
  emit: EmitHook;
  transactionClosed: (redis: Redis) => void;
  beforeConnect: (redis: Redis, signal: AbortSignal) => void | Promise<void>;
  connect: (this: Redis) => void;
  ready: (this: Redis) => void;
  close: (this: Redis) => void;
  end: (this: Redis) => void;
  /** A re-authentication's deadline came (lib/binding/deadlines.ts). */
  deadline: (pending: PendingReauth) => void;
}

/**
 * Keeps one ioredis client authenticated with the provider's current token: every connect and reconnect presents a
 * valid token (waiting for one when none is cached), and each new token is applied to the live connection in the way
 * its state allows (lib/binding/connection-state.ts): AUTH in order with other commands, AUTH right after the
 * application's transaction, AUTH once a blocking command returns, a make-before-break handover of a RESP2
 * subscriber, or a reconnect with the fresh token before the server would close the connection. The application
 * sees none of it: no AUTH joins its transaction, no message of a handover reaches it, and an exception of its own
 * listeners never stops this work (lib/listener-errors.ts).
 *
 * Memory: a process may hold thousands of bound clients, so a binding is one object and what ioredis is given (its
 * event listeners, hooks and wrappers) is shared by every client and finds the client's binding through it; the
 * state of a re-authentication, a transaction or a handover exists only while one is under way.
 */
export class ClientBinding implements TokenSubscriber {
  readonly redis: Redis;
  readonly provider: EntraCredentialsProvider;
  /** Spread of re-AUTH across connections, ms (duplicates get the same unless told otherwise). */
  readonly reauthJitter: number;
  /** Subscribed to the provider's tokens. */
  #attached = false;
  /** Token presented by the connect under way. */
  #handshakeToken: EntraToken | undefined;
  /** Token the live connection is authenticated with. */
  #authenticatedWith: EntraToken | undefined;
  #pending: PendingReauth | undefined;
  /** Set when we reconnect on purpose to move a connection to a fresh token. */
  #reconnectingForToken = false;
  /** A RESP2 subscriber being moved to a fresh token. */
  #handover: SubscriberHandover | undefined;
  /** The connection's address as events describe it, and the options it was built from. */
  #address: { host: string | undefined; port: number | undefined; text: string } | undefined;
  /** The blocking command whose reply a re-AUTH waits for (one wake-up per command, however many tokens). */
  #watchedBlocking: Promise<unknown> | undefined;

  /** Binds `redis` (see {@link bindingOf}); the client must not have connected yet. */
  constructor(redis: Redis, provider: EntraCredentialsProvider, options: ClientBindingOptions = {}) {
    this.redis = redis;
    this.provider = provider;
    this.reauthJitter = options.reauthJitter ?? 0;
    (redis as Bound)[BINDING] = this;
    const shared = ClientBinding.#shared;
    interceptEmit(redis, shared.emit);
    redactCredentialCommands(redis, redactError);
    handleStateRestoreRejections(redis);
    guardReconnectOnError(redis, () => this.#pending?.phase === 'in-flight');
    watchCommands(redis, shared.transactionClosed);
    interceptConnect(redis, shared.beforeConnect);
    redis.on('connect', shared.connect);
    redis.on('ready', shared.ready);
    redis.on('close', shared.close);
    redis.on('end', shared.end);
  }

  /** What every bound client's hooks and listeners are: one function each for the process, finding the binding. */
  static readonly #shared: SharedHooks = {
    emit: (redis: Redis, event: string | symbol, args: unknown[]): boolean => {
      if (event === 'error') {
        args[0] = redactError(args[0]);
        return true;
      }
      const binding = bindingOf(redis);
      const handover = binding && binding.#handover;
      return handover && isMessageEvent(event) ? handover.onClientMessage(event, args) : true;
    },
    transactionClosed: (redis: Redis): void => {
      const binding = bindingOf(redis);
      if (binding) binding.#onTransactionClosed();
    },
    beforeConnect: (redis: Redis, signal: AbortSignal): void | Promise<void> => {
      return (bindingOf(redis) as ClientBinding).#beforeConnect(signal);
    },
    connect: function (this: Redis): void {
      const binding = bindingOf(this);
      if (binding) binding.#onConnect();
    },
    ready: function (this: Redis): void {
      const binding = bindingOf(this);
      if (binding) binding.#onReady();
    },
    close: function (this: Redis): void {
      const binding = bindingOf(this);
      if (binding) binding.#onClose();
    },
    end: function (this: Redis): void {
      const binding = bindingOf(this);
      if (binding) binding.#detach();
    },
    deadline: (pending: PendingReauth): void => {
      pending.binding.#reconnectBeforeExpiry(pending);
    },
  };

  /** Description of the connection for events: its name, else its address. Never a credential. */
  get connectionDescription(): string {
    const { connectionName, host, port, path } = this.redis.options;
    const name = connectionName as string | null | undefined; // null on some connections, whatever the typings say
    if (name !== undefined && name !== null) return name;
    if (path) return path;
    // Built once per address, not once per event: a rotation describes every connection.
    const address = this.#address;
    if (address && address.host === host && address.port === port) return address.text;
    const text = `${host ?? 'localhost'}:${port ?? 6379}`;
    this.#address = { host, port, text };
    return text;
  }

  onToken(token: EntraToken): void {
    this.#useForNextConnect(token);
    if (this.redis.status === 'connect') setHandshakeCredentials(this.redis, token.username, token.password);
    if (connectionState(this.redis) !== 'down') this.#reauthenticate(token);
  }

  #attach(): void {
    if (this.#attached) return;
    this.#attached = true;
    this.provider.subscribe(this);
  }

  #detach(): void {
    this.#cancelPending();
    this.#authenticatedWith = undefined;
    if (!this.#attached) return;
    this.#attached = false;
    this.provider.unsubscribe(this);
  }

  /** Runs inside every connect: a valid token now, or a wait for one. */
  #beforeConnect(signal: AbortSignal): void | Promise<void> {
    this.#attach();
    const token = this.#tokenToPresent();
    if (token) {
      this.#present(token);
      return;
    }
    return this.provider.getToken({ signal }).then((fresh) => this.#present(fresh));
  }

  /**
   * The provider's current token; but after the server refused a new token on a connection of the provider, while the
   * token that connection held is still good, that one: a reconnect (a network blip), a duplicate or another client
   * made meanwhile must not trade a valid token for one the server may refuse. That holds for the refused token and
   * for any replacement that came while the connection was down and could not be tried in place; once connected, a
   * newer token is tried in place (#catchUp), and one the server accepts ends the refusal.
   */
  #tokenToPresent(): EntraToken | undefined {
    return heldDuringRefusal(this.provider, Date.now()) ?? this.provider.currentToken();
  }

  #present(token: EntraToken): void {
    this.#useForNextConnect(token);
    setHandshakeCredentials(this.redis, token.username, token.password);
    this.#handshakeToken = token;
  }

  /** Options are what ioredis (and duplicate()) read on the next connect. */
  #useForNextConnect(token: EntraToken): void {
    this.redis.options.username = token.username;
    this.redis.options.password = token.password;
  }

  /** The socket is connected and ioredis has written the handshake, with the token presented for this connect. */
  #onConnect(): void {
    this.#cancelPending();
    this.#authenticatedWith = this.#handshakeToken;
    if (!this.#handover) this.#catchUp(); // a handover reconnects with the newest token itself
  }

  #onReady(): void {
    if (this.#handover) return; // the handover reconnected us and reports the result
    if (this.#reconnectingForToken && this.#authenticatedWith) {
      this.#reconnectingForToken = false;
      this.provider.emit('reauthenticated', {
        connection: this.connectionDescription,
        token: describeToken(this.#authenticatedWith),
        method: 'reconnect',
      });
    }
    this.#catchUp();
  }

  /** A token newer than the connection's, not already on its way to it and not refused here, is applied now. */
  #catchUp(): void {
    const current = this.provider.currentToken();
    if (!current || current.sameAs(this.#authenticatedWith) || current.sameAs(this.#pending?.token)) return;
    if (isRefused(this.provider, current)) return;
    if (current.expiresOn > (this.#authenticatedWith?.expiresOn ?? 0)) this.#reauthenticate(current);
  }

  #onClose(): void {
    // An AUTH of ours still unanswered would be resent by ioredis on the next connection, after the handshake that
    // presents the token of our choice: it could move that connection to an older token behind our back, or be
    // refused there and reach the application's reconnectOnError. Taken back instead; the handshake decides.
    const pending = this.#pending;
    if (pending?.phase === 'in-flight' && pending.sent) withdrawCommand(this.redis, pending.sent);
    this.#cancelPending();
    this.#authenticatedWith = undefined;
    resetTransaction(this.redis);
  }

  #cancelPending(): void {
    const pending = this.#pending;
    if (!pending) return;
    if (pending.timer) clearTimeout(pending.timer);
    if (pending.deadline) cancelDeadline(pending.deadline);
    this.#pending = undefined;
  }

  #reauthenticate(token: EntraToken): void {
    if (token.sameAs(this.#authenticatedWith) || isRefused(this.provider, token)) return;
    this.#cancelPending();
    const pending: PendingReauth = {
      binding: this,
      token,
      phase: 'jitter',
      attempts: 0,
      retryDelay: REAUTH_RETRY_INITIAL_MS,
      timer: undefined,
      deadline: undefined,
      sent: undefined,
    };
    this.#pending = pending;
    const old = this.#authenticatedWith;
    if (old) {
      const now = Date.now();
      const deadline = reauthDeadline(old);
      // Past the deadline already: give AUTH half of what is left before forcing a reconnect.
      const at = deadline > now ? deadline : now + Math.max(0, (old.expiresOn - now) / 2);
      pending.deadline = addDeadline(at, ClientBinding.#shared.deadline, pending);
    }
    const jitter = this.reauthJitter > 0 ? Math.random() * this.reauthJitter : 0;
    if (jitter > 0 && reauthMethod(this.redis) === 'auth') {
      pending.timer = setTimeout(() => this.#advance(pending), jitter);
      (pending.timer as { unref?: () => void }).unref?.(); // a timer from a fake-timer library may lack unref
    } else {
      this.#advance(pending);
    }
  }

  /** The one place that moves a re-authentication on: the connection's state decides how the token is applied. */
  #advance(pending: PendingReauth): void {
    if (this.#pending !== pending) return; // superseded or cancelled
    pending.timer = undefined;
    switch (reauthMethod(this.redis)) {
      case 'auth':
        this.#sendAuth(pending);
        return;
      case 'after-transaction':
        pending.phase = 'transaction'; // #onTransactionClosed moves it on
        return;
      case 'after-blocking':
        pending.phase = 'blocked';
        this.#wakeWhenUnblocked();
        return;
      case 'handover':
        // AUTH is impossible in RESP2 subscribe mode: the subscriptions move to a fresh connection instead, within
        // the handover's own bounds.
        if (pending.deadline) cancelDeadline(pending.deadline);
        pending.deadline = undefined;
        pending.phase = 'handover';
        this.#startHandover(pending.token, this.#authenticatedWith);
        return;
      case 'next-connect':
        return; // the next handshake presents the newest token; #onConnect cancels this one
    }
  }

  /** EXEC or DISCARD of the application's transaction was written: a re-AUTH waiting for it goes now. */
  #onTransactionClosed(): void {
    const pending = this.#pending;
    if (pending?.phase === 'transaction') this.#advance(pending);
  }

  /** Moves a re-AUTH waiting behind a blocking command on when that command returns (or fails). */
  #wakeWhenUnblocked(): void {
    const blocking = blockingCommandInFlight(this.redis);
    if (!blocking || blocking === this.#watchedBlocking) return;
    this.#watchedBlocking = blocking;
    const wake = () => {
      if (this.#watchedBlocking === blocking) this.#watchedBlocking = undefined;
      const pending = this.#pending;
      if (pending?.phase === 'blocked') this.#advance(pending);
    };
    blocking.then(wake, wake);
  }

  #sendAuth(pending: PendingReauth): void {
    const { token } = pending;
    const attempt = ++pending.attempts;
    pending.phase = 'in-flight';
    const send = () => (pending.sent = this.redis.auth(token.username, token.password));
    // One AUTH per connection per rotation: nothing is built for tracing unless someone traces.
    const reply = isReauthTraced()
      ? traceReauthentication(send, () => ({ connection: this.connectionDescription, token, attempt }))
      : send();
    reply.then(
      (reply: unknown) => {
        if (this.#pending !== pending) return; // superseded or cancelled
        if (reply === 'OK') {
          this.#cancelPending();
          this.#authenticatedWith = token;
          endRefusal(this.provider, token);
          if (this.provider.listenerCount('reauthenticated') > 0) {
            this.provider.emit('reauthenticated', {
              connection: this.connectionDescription,
              token: describeToken(token),
              method: 'auth',
            });
          }
          return;
        }
        this.#retryAuth(pending, new Error(`AUTH was answered ${JSON.stringify(String(reply))} instead of OK`));
      },
      (error: unknown) => {
        if (this.#pending !== pending) return;
        if (isServerReply(error)) this.#onRefused(pending.token, redactError(error));
        else this.#retryAuth(pending, redactError(error));
      },
    );
  }

  #retryAuth(pending: PendingReauth, error: unknown): void {
    const willRetry = connectionState(this.redis) !== 'down';
    pending.phase = 'retry';
    const delay = pending.retryDelay;
    pending.retryDelay = Math.min(REAUTH_RETRY_MAX_MS, delay * 2);
    if (willRetry) {
      pending.timer = setTimeout(() => this.#advance(pending), delay);
      (pending.timer as { unref?: () => void }).unref?.(); // a timer from a fake-timer library may lack unref
    }
    this.provider.emit('reauthenticationFailed', {
      connection: this.connectionDescription,
      error,
      willRetry,
      refused: false,
      authenticatedUntil: this.#authenticatedWith?.expiresOn,
    });
  }

  /**
   * The server answered the AUTH with an error (WRONGPASS), or refused the token on a subscriber handover's own
   * connection: it refused the token, and the connection is still authenticated with the one it held. It stays on
   * that one (no early reconnect with a refused token, and a reconnect presents the held token while it is good), the
   * same token is not sent again (lib/binding/refusals.ts), and the provider is asked for a replacement; a newer token
   * is applied as usual.
   */
  #onRefused(token: EntraToken, error: unknown): void {
    this.#cancelPending();
    const held = this.#authenticatedWith;
    recordRefusal(this.provider, token, held);
    if (isUsable(held, Date.now())) this.#useForNextConnect(held);
    this.provider.emit('reauthenticationFailed', {
      connection: this.connectionDescription,
      error,
      willRetry: false,
      refused: true,
      authenticatedUntil: held?.expiresOn,
    });
    this.provider.replaceRefusedToken(token);
  }

  #startHandover(token: EntraToken, old: EntraToken | undefined): void {
    if (this.#handover) return; // the one running reconnects with the newest token from options
    // Delivers to the application without the emit hook, each listener on its own.
    const redis = this.redis;
    const deliver = (event: string, ...args: unknown[]) => emitIsolated(redis, event, args);
    const handover = new SubscriberHandover(redis, token, deliver);
    this.#handover = handover;
    const now = Date.now();
    const beforeExpiry = old ? Math.max(0, old.expiresOn - now) : HANDOVER_JOIN_MAX_MS;
    const join = Math.min(HANDOVER_JOIN_MAX_MS, Math.max(0, (token.expiresOn - now) / 2));
    const connection = this.connectionDescription;
    traceReauthentication(
      () => handover.run(beforeExpiry, join),
      () => ({ connection, method: 'handover', token, attempt: 1 }),
    ).then(
      () => {
        if (this.#handover === handover) this.#handover = undefined;
        this.provider.emit('reauthenticated', { connection, token: describeToken(token), method: 'handover' });
        // a token that arrived during the handover is picked up now
        const current = this.provider.currentToken();
        if (this.redis.status === 'ready' && current && !current.sameAs(this.#authenticatedWith))
          this.#reauthenticate(current);
      },
      (error: unknown) => {
        if (this.#handover === handover) this.#handover = undefined;
        if (error instanceof HandoverFailedError && error.refused) {
          // The server refused the token on the handover's connection: the client stays on its connection and the
          // token it holds, as when AUTH is refused in place; a token newer than the refused one is handed over.
          this.#onRefused(token, error);
          if (this.redis.status === 'ready') this.#catchUp();
          return;
        }
        // the handover fell back to a plain reconnect with the fresh token: nothing to retry
        publishReauthReconnect(connection, token, 'handover-failed');
        this.provider.emit('reauthenticationFailed', {
          connection,
          error: redactError(error),
          willRetry: false,
          refused: false,
          authenticatedUntil: undefined,
        });
        // Not reconnected when the application left subscribe mode during the handover: AUTH it now.
        if (this.redis.status === 'ready' && !isResp2Subscriber(this.redis)) {
          this.#cancelPending();
          this.#catchUp();
        }
      },
    );
  }

  /** The AUTH did not complete in time: reconnect now, with the fresh token, before the server closes us. */
  #reconnectBeforeExpiry(pending: PendingReauth): void {
    if (this.#pending !== pending) return;
    // While a re-AUTH is pending, #authenticatedWith is still the token it replaces (any change cancels the pending).
    const untilExpiry = (this.#authenticatedWith?.expiresOn ?? 0) - Date.now();
    if (pending.phase === 'in-flight' && untilExpiry > 0 && !hasBlockingCommandInFlight(this.redis)) {
      // The AUTH is written and no blocking command holds it up: a new connection would not be authenticated sooner,
      // and a reconnect aborts the transactions in flight. Its reply is often already waiting after an event-loop
      // stall (timers run before I/O is read); if the server closes the connection at expiry, ioredis reconnects with
      // the fresh token. Only a connection that neither answered nor was closed by then is moved.
      pending.deadline = addDeadline(Date.now() + untilExpiry, ClientBinding.#shared.deadline, pending);
      return;
    }
    this.#cancelPending();
    if (this.redis.status !== 'ready') return;
    this.#reconnectingForToken = true;
    publishReauthReconnect(this.connectionDescription, pending.token, 'auth-timeout');
    forceReconnect(this.redis);
  }
}

/** True when the server answered with an error (a ReplyError such as WRONGPASS), not a failure to get an answer. */
function isServerReply(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

/** The application's own `reconnectOnError`, kept on the library's wrapper of it. */
const APPLICATION_RECONNECT_ON_ERROR = Symbol('ioredis-entraid.applicationReconnectOnError');
type ReconnectOnError = ((error: Error) => boolean | 1 | 2) & { [APPLICATION_RECONNECT_ON_ERROR]?: ReconnectOnError };

/**
 * ioredis calls the application's `reconnectOnError` with every failed command's ReplyError. Two of those are the
 * library's business, not the application's: the error of a failed AUTH or HELLO holds the command's arguments, the
 * token among them, so the application gets it redacted; and the library's own re-AUTH of a live connection (a plain
 * client never sends one) is not shown at all: the library handles its failure itself (`inLibraryReauth` is true
 * while such an AUTH is in flight, which is when ioredis reads its reply). A duplicate copies the options, wrapper
 * included: it is unwrapped and wrapped again for its own binding.
 */
function guardReconnectOnError(redis: Redis, inLibraryReauth: () => boolean): void {
  const options = redis.options as { reconnectOnError?: ReconnectOnError | null };
  const given = options.reconnectOnError;
  if (typeof given !== 'function') return;
  const own = given[APPLICATION_RECONNECT_ON_ERROR] ?? given;
  const guarded: ReconnectOnError = (error: Error) => {
    const command = (error as { command?: { name?: string } }).command?.name?.toLowerCase();
    if (command === 'auth' && inLibraryReauth()) return false;
    return own(redactError<Error>(error));
  };
  guarded[APPLICATION_RECONNECT_ON_ERROR] = own;
  options.reconnectOnError = guarded;
}
