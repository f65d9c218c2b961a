import type { Redis } from 'ioredis';
import { redactError } from '../errors.js';
import type { EntraCredentialsProvider, TokenSubscriber } from '../identity/credentials-provider.js';
import { describeToken } from '../identity/events.js';
import type { EntraToken } from '../token/entra-token.js';
import {
  forceReconnect, handleStateRestoreRejections, hasBlockingCommandInFlight, interceptConnect, interceptEmit, isResp2Subscriber,
  redactCredentialCommands,
  setHandshakeCredentials,
} from './ioredis-internals.js';
import { isMessageEvent, SubscriberHandover } from './pubsub-handover.js';
import { publishReauthReconnect, traceReauthentication } from '../tracing.js';

/** A connection whose re-AUTH has not completed this long before its token expires is reconnected instead. */
const MAX_REAUTH_DEADLINE_MARGIN_MS = 5_000;
/** ... or this fraction of the token's lifetime, when that is less. */
const REAUTH_DEADLINE_MARGIN_FRACTION = 0.2;
/** First delay before an AUTH that was not answered OK is tried again; doubles up to the max. */
const REAUTH_RETRY_INITIAL_MS = 50;
const REAUTH_RETRY_MAX_MS = 1_000;
/** Once a RESP2 subscriber has reconnected, joining its stream to the shadow's may take this long at most. */
const HANDOVER_JOIN_MAX_MS = 15_000;

/** When a connection still authenticated with `token` is reconnected if its re-AUTH has not completed (epoch ms). */
export function reauthDeadline(token: EntraToken): number {
  return token.expiresOn - Math.min(MAX_REAUTH_DEADLINE_MARGIN_MS, token.ttl * REAUTH_DEADLINE_MARGIN_FRACTION);
}

export interface ClientBindingOptions {
  /** Spread of re-AUTH across connections, ms: each waits a random time up to this. Default 0. */
  reauthJitter?: number;
}

/** A re-authentication under way on one connection. */
interface PendingReauth {
  token: EntraToken;
  /** AUTH attempts sent for this token. */
  attempts: number;
  /** An AUTH for this token is written and its reply not yet read. */
  authInFlight: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
  deadline: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Keeps one ioredis client authenticated with the provider's current token: every connect and reconnect presents a
 * valid token (waiting for one when none is cached), and each new token is sent with AUTH on the live connection,
 * in order with other commands. A connection whose AUTH cannot complete before its token expires (blocked behind
 * BLPOP 0, or in RESP2 subscribe mode) is reconnected with the fresh token before the server would close it.
 */
export class ClientBinding implements TokenSubscriber {
  readonly redis: Redis;
  readonly provider: EntraCredentialsProvider;
  readonly #reauthJitter: number;
  #unsubscribe: (() => void) | undefined;
  /** Token presented by the connect under way. */
  #handshakeToken: EntraToken | undefined;
  /** Token the live connection is authenticated with. */
  #authenticatedWith: EntraToken | undefined;
  #pending: PendingReauth | undefined;
  /** Set when we reconnect on purpose to move a connection to a fresh token. */
  #reconnectingForToken = false;
  /** A RESP2 subscriber being moved to a fresh token. */
  #handover: SubscriberHandover | undefined;
  /** Emits to the application without our hook. */
  readonly #deliver: (event: string, ...args: unknown[]) => boolean;

  constructor(redis: Redis, provider: EntraCredentialsProvider, options: ClientBindingOptions = {}) {
    this.redis = redis;
    this.provider = provider;
    this.#reauthJitter = options.reauthJitter ?? 0;
    this.#deliver = interceptEmit(redis, (event, args) => {
      if (event === 'error') args[0] = redactError(args[0]);
      else if (this.#handover && isMessageEvent(event)) return this.#handover.filter(event, args);
      return true;
    });
    redactCredentialCommands(redis, redactError);
    handleStateRestoreRejections(redis);
    redactReconnectOnError(redis);
    interceptConnect(redis, (signal) => this.#beforeConnect(signal));
    redis.on('connect', () => this.#onConnect());
    redis.on('ready', () => this.#onReady());
    redis.on('close', () => this.#onClose());
    redis.on('end', () => this.#detach());
  }

  /** Description of the connection for events: its name, else its address. Never a credential. */
  get connectionDescription(): string {
    const { connectionName, host, port, path } = this.redis.options;
    return connectionName ?? (path ? String(path) : `${host ?? 'localhost'}:${port ?? 6379}`);
  }

  onToken(token: EntraToken): void {
    this.#useForNextConnect(token);
    if (this.redis.status === 'connect') setHandshakeCredentials(this.redis, token.username, token.password);
    if (this.#acceptsAuth()) this.#reauthenticate(token);
  }

  /**
   * Ready, or connected and still in the handshake or the ready check: a server loading its dataset after a restart
   * answers LOADING to commands for as long as it loads, but accepts AUTH (ioredis writes it at once, in order after
   * the handshake). A connection waiting there is re-authenticated like a ready one, or the server would close it
   * when the token it presented expires.
   */
  #acceptsAuth(): boolean {
    if (this.redis.status === 'ready') return true;
    // Only while ioredis writes it at once: an AUTH it queued offline would be sent after the commands it resends
    // on ready, behind a blocking one among them for as long as that blocks.
    return this.redis.status === 'connect' && this.redis.stream?.writable === true;
  }

  #attach(): void {
    if (!this.#unsubscribe) this.#unsubscribe = this.provider.subscribe(this);
  }

  #detach(): void {
    this.#cancelPending();
    this.#authenticatedWith = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Runs inside every connect: a valid token now, or a wait for one. */
  #beforeConnect(signal: AbortSignal): void | Promise<void> {
    this.#attach();
    const token = this.provider.currentToken();
    if (token) {
      this.#present(token);
      return;
    }
    return this.provider.getToken({ signal }).then((fresh) => this.#present(fresh));
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
        connection: this.connectionDescription, token: describeToken(this.#authenticatedWith), method: 'reconnect',
      });
    }
    this.#catchUp();
  }

  /** A token newer than the connection's, and not already on its way to it, is sent now. */
  #catchUp(): void {
    const current = this.provider.currentToken();
    if (!current || current.sameAs(this.#authenticatedWith) || current.sameAs(this.#pending?.token)) return;
    if (current.expiresOn > (this.#authenticatedWith?.expiresOn ?? 0)) this.#reauthenticate(current);
  }

  #onClose(): void {
    this.#cancelPending();
    this.#authenticatedWith = undefined;
  }

  #cancelPending(): void {
    const pending = this.#pending;
    if (!pending) return;
    if (pending.timer) clearTimeout(pending.timer);
    if (pending.deadline) clearTimeout(pending.deadline);
    this.#pending = undefined;
  }

  #reauthenticate(token: EntraToken): void {
    if (token.sameAs(this.#authenticatedWith)) return;
    this.#cancelPending();
    const pending: PendingReauth = { token, attempts: 0, authInFlight: false, timer: undefined, deadline: undefined };
    this.#pending = pending;
    const old = this.#authenticatedWith;
    if (old) {
      const untilDeadline = reauthDeadline(old) - Date.now();
      // Past the deadline already: give AUTH half of what is left before forcing a reconnect.
      const delay = untilDeadline > 0 ? untilDeadline : Math.max(0, (old.expiresOn - Date.now()) / 2);
      pending.deadline = setTimeout(() => this.#reconnectBeforeExpiry(pending), delay);
      pending.deadline.unref?.();
    }
    if (isResp2Subscriber(this.redis)) {
      // AUTH is impossible in RESP2 subscribe mode: hand the subscriptions over to a fresh connection instead.
      if (pending.deadline) clearTimeout(pending.deadline);
      pending.deadline = undefined;
      this.#startHandover(token, old);
      return;
    }
    // Blocked (BLPOP 0, XREAD BLOCK ...): an AUTH would wait behind the command, and pile up with the next ones while
    // it stays blocked; the deadline reconnects the connection with the fresh token instead.
    if (pending.deadline && hasBlockingCommandInFlight(this.redis)) return;
    const jitter = this.#reauthJitter > 0 ? Math.random() * this.#reauthJitter : 0;
    if (jitter > 0) {
      pending.timer = setTimeout(() => this.#sendAuth(pending, REAUTH_RETRY_INITIAL_MS), jitter);
      pending.timer.unref?.();
    } else {
      this.#sendAuth(pending, REAUTH_RETRY_INITIAL_MS);
    }
  }

  #sendAuth(pending: PendingReauth, nextDelay: number): void {
    pending.timer = undefined;
    const { token } = pending;
    const connection = this.connectionDescription;
    const attempt = ++pending.attempts;
    pending.authInFlight = true;
    traceReauthentication(() => this.redis.auth(token.username, token.password), () => ({ connection, token, attempt })).then(
      (reply: unknown) => {
        pending.authInFlight = false;
        if (this.#pending !== pending) return; // superseded or cancelled
        if (reply === 'OK') {
          this.#cancelPending();
          this.#authenticatedWith = token;
          this.provider.emit('reauthenticated', { connection, token: describeToken(token), method: 'auth' });
          return;
        }
        // e.g. QUEUED inside MULTI: not done, and lost if the transaction is discarded
        this.#retryAuth(pending, nextDelay, new Error(`AUTH was answered ${JSON.stringify(String(reply))} instead of OK`));
      },
      (error: unknown) => {
        pending.authInFlight = false;
        if (this.#pending !== pending) return;
        this.#retryAuth(pending, nextDelay, redactError(error));
      },
    );
  }

  #retryAuth(pending: PendingReauth, delay: number, error: unknown): void {
    const willRetry = this.#acceptsAuth() && !isResp2Subscriber(this.redis);
    this.provider.emit('reauthenticationFailed', { connection: this.connectionDescription, error, willRetry });
    if (!willRetry) return;
    pending.timer = setTimeout(() => this.#sendAuth(pending, Math.min(REAUTH_RETRY_MAX_MS, delay * 2)), delay);
    pending.timer.unref?.();
  }

  #startHandover(token: EntraToken, old: EntraToken | undefined): void {
    if (this.#handover) return; // the one running reconnects with the newest token from options
    const handover = new SubscriberHandover(this.redis, token, this.#deliver);
    this.#handover = handover;
    const now = Date.now();
    const beforeExpiry = old ? Math.max(0, old.expiresOn - now) : HANDOVER_JOIN_MAX_MS;
    const join = Math.min(HANDOVER_JOIN_MAX_MS, Math.max(0, (token.expiresOn - now) / 2));
    const connection = this.connectionDescription;
    traceReauthentication(() => handover.run(beforeExpiry, join), () => ({ connection, method: 'handover', token, attempt: 1 })).then(
      () => {
        if (this.#handover === handover) this.#handover = undefined;
        this.provider.emit('reauthenticated', { connection, token: describeToken(token), method: 'handover' });
        // a token that arrived during the handover is picked up now
        const current = this.provider.currentToken();
        if (this.redis.status === 'ready' && current && !current.sameAs(this.#authenticatedWith)) this.#reauthenticate(current);
      },
      (error: unknown) => {
        // the handover fell back to a plain reconnect with the fresh token: nothing to retry
        if (this.#handover === handover) this.#handover = undefined;
        publishReauthReconnect(connection, token, 'handover-failed');
        this.provider.emit('reauthenticationFailed', { connection, error: redactError(error), willRetry: false });
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
    if (pending.authInFlight && untilExpiry > 0 && !hasBlockingCommandInFlight(this.redis)) {
      // The AUTH is written and no blocking command holds it up: a new connection would not be authenticated sooner,
      // and a reconnect aborts the transactions in flight. Its reply is often already waiting after an event-loop
      // stall (timers run before I/O is read); if the server closes the connection at expiry, ioredis reconnects with
      // the fresh token. Only a connection that neither answered nor was closed by then is moved.
      pending.deadline = setTimeout(() => this.#reconnectBeforeExpiry(pending), untilExpiry);
      pending.deadline.unref?.();
      return;
    }
    this.#cancelPending();
    if (this.redis.status !== 'ready') return;
    this.#reconnectingForToken = true;
    publishReauthReconnect(this.connectionDescription, pending.token, 'auth-timeout');
    forceReconnect(this.redis);
  }
}

const REDACTING = Symbol('ioredis-entraid.redactingReconnectOnError');

/**
 * ioredis calls the application's `reconnectOnError` with a failed command's ReplyError before anything else sees
 * it; for a failed AUTH or HELLO that error holds the command's arguments, the token among them. The application gets
 * it redacted. (A duplicate copies the options, wrapper included: it is not wrapped twice.)
 */
function redactReconnectOnError(redis: Redis): void {
  const options = redis.options as { reconnectOnError?: ((error: Error) => boolean | 1 | 2) | null };
  const own = options.reconnectOnError;
  if (typeof own !== 'function' || REDACTING in own) return;
  options.reconnectOnError = Object.assign((error: Error) => own(redactError(error)), { [REDACTING]: true });
}
