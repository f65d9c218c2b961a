// One proxied client connection: follows its command stream (AUTH, HELLO, MULTI, subscriptions), swaps tokens for
// backend credentials, forwards in order with backpressure, and closes both sockets when its token expires.
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { INVALID_USER } from './backend-users.js';
import type { AmrEmulator } from './emulator.js';
import { encodeCommand, lower, RequestParser, type ParsedCommand } from './resp.js';
import type { AmrConnectionInfo, AuthOutcome } from './types.js';

/** setTimeout's maximum delay; longer deadlines are re-armed when the timer fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ProxiedConnection {
  readonly id: number;
  readonly parser = new RequestParser();
  oid: string | undefined;
  expiresAt: number | undefined;
  name: string | undefined;
  protocol: 2 | 3 = 2;
  authCount = 0;
  closed = false;
  #authenticated = false;
  #inMulti = false;
  #queuedAuth: AuthOutcome | undefined;
  #channels = new Set<string>();
  #patterns = new Set<string>();
  #shardChannels = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  /** Forwarding queue: buffers go out in order; a promise (AUTH waiting for its ACL user) holds back what follows. */
  #backlog: (Buffer | Promise<Buffer>)[] = [];
  #draining = false;
  #paused = false;
  #passthrough = false;
  /** The client sent its FIN: the backend gets one once everything before it has been forwarded. */
  #clientEnded = false;

  constructor(
    readonly emulator: AmrEmulator,
    readonly client: net.Socket,
    readonly backend: net.Socket,
    id: number,
  ) {
    this.id = id;
  }

  info(): AmrConnectionInfo {
    return {
      id: this.id,
      remotePort: this.client.remotePort,
      oid: this.oid,
      expiresAt: this.expiresAt,
      name: this.name,
      protocol: this.protocol,
      authCount: this.authCount,
    };
  }

  onClientData(data: Buffer): void {
    if (this.closed) return;
    if (this.#passthrough) {
      this.#enqueue(data);
      return;
    }
    const { commands, error, rest } = this.parser.push(data);
    for (const command of commands) this.#handle(command);
    if (error !== undefined && rest) {
      // Let redis answer the protocol error itself (it then closes the connection).
      this.#passthrough = true;
      this.#enqueue(rest);
    }
  }

  /**
   * The client half-closed its side (FIN). As redis-server does, what it sent before is still executed and the replies
   * still reach it: the backend gets the FIN after the forwarding queue, and the client's side stays open until the
   * backend closes.
   */
  onClientEnd(): void {
    this.#clientEnded = true;
    if (!this.#draining && this.#backlog.length === 0) this.backend.end();
  }

  #enqueue(item: Buffer | Promise<Buffer>): void {
    this.#backlog.push(item);
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#backlog.length > 0 && !this.closed) {
        let item = this.#backlog.shift() as Buffer | Promise<Buffer>;
        if (!Buffer.isBuffer(item)) item = await item;
        if (this.closed as boolean) return; // it may have closed during the await
        if (!this.backend.write(item) && !this.#paused) {
          // Backpressure: stop reading from the client until the backend has taken what we wrote.
          this.#paused = true;
          this.client.pause();
          this.backend.once('drain', () => {
            this.#paused = false;
            this.client.resume();
          });
        }
      }
    } finally {
      this.#draining = false;
      if (this.#clientEnded && this.#backlog.length === 0 && !this.closed) this.backend.end();
    }
  }

  get #subscribed(): boolean {
    return this.#channels.size + this.#patterns.size + this.#shardChannels.size > 0;
  }

  #handle(command: ParsedCommand): void {
    const { args } = command;
    const name = lower(args[0]);
    switch (name) {
      case 'auth':
        this.#handleAuth(args);
        return;
      case 'hello':
        this.#handleHello(args, command.raw);
        return;
      case 'multi':
        this.#inMulti = true;
        this.#queuedAuth = undefined;
        break;
      case 'exec':
        if (this.#inMulti && this.#queuedAuth) this.#applyAuth(this.#queuedAuth);
        this.#inMulti = false;
        this.#queuedAuth = undefined;
        break;
      case 'discard':
        this.#inMulti = false;
        this.#queuedAuth = undefined;
        break;
      case 'reset':
        this.#reset();
        break;
      case 'client':
        if (lower(args[1]) === 'setname' && args[2] && !this.#inMulti) this.name = args[2].toString();
        break;
      default:
        if (!this.#inMulti)
          this.#trackSubscriptions(
            name,
            args.slice(1).map((arg) => arg.toString('latin1')),
          );
    }
    this.#enqueue(command.raw);
  }

  #trackSubscriptions(name: string, names: string[]): void {
    const sets: Record<string, [Set<string>, boolean]> = {
      subscribe: [this.#channels, true],
      psubscribe: [this.#patterns, true],
      ssubscribe: [this.#shardChannels, true],
      unsubscribe: [this.#channels, false],
      punsubscribe: [this.#patterns, false],
      sunsubscribe: [this.#shardChannels, false],
    };
    const entry = sets[name];
    if (!entry) return;
    const [set, add] = entry;
    if (add) for (const item of names) set.add(item);
    else if (names.length === 0) set.clear();
    else for (const item of names) set.delete(item);
  }

  #reset(): void {
    this.#inMulti = false;
    this.#queuedAuth = undefined;
    this.#channels.clear();
    this.#patterns.clear();
    this.#shardChannels.clear();
    this.protocol = 2;
    this.name = undefined;
    this.#authenticated = false;
    this.oid = undefined;
    this.expiresAt = undefined;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.emulator.changed();
  }

  /** RESP2 connections in subscribe mode cannot AUTH or HELLO: redis rejects the command, nothing changes. */
  get #authRefusedByState(): boolean {
    return !this.#inMulti && this.protocol === 2 && this.#subscribed;
  }

  #handleAuth(args: Buffer[]): void {
    if (args.length === 3) {
      const outcome = this.emulator.verify(args[1] as Buffer, args[2] as Buffer);
      this.#forwardAuth(['AUTH'], outcome, []);
      return;
    }
    if (args.length === 2) {
      // AUTH <password> authenticates the default user, which is off: WRONGPASS, as on Azure.
      this.#forwardAuth(['AUTH'], { ok: false }, []);
      return;
    }
    // Wrong arity: keep the arity (redis answers the arity error), never the arguments.
    this.#count({ ok: false });
    this.#enqueue(encodeCommand(args.map((arg, index) => (index === 0 ? arg : 'x'))));
  }

  #handleHello(args: Buffer[], command: Buffer): void {
    const version = args[1];
    const rest: (string | Buffer)[] = [];
    let credentials: [Buffer, Buffer] | undefined;
    let setName: string | undefined;
    let malformed = false;
    for (let i = 2; i < args.length;) {
      const option = lower(args[i]);
      if (option === 'auth' && i + 2 < args.length) {
        credentials = [args[i + 1] as Buffer, args[i + 2] as Buffer];
        i += 3;
      } else if (option === 'setname' && i + 1 < args.length) {
        setName = (args[i + 1] as Buffer).toString();
        rest.push(args[i] as Buffer, args[i + 1] as Buffer);
        i += 2;
      } else {
        malformed = true;
        rest.push('x');
        i += 1;
      }
    }
    const requested = version === undefined ? undefined : Number(version.toString('latin1'));
    const switchesTo = requested === 2 || requested === 3 ? requested : undefined;
    if (!credentials) {
      // HELLO without AUTH: redis needs an authenticated connection for it.
      if (!malformed && this.#authenticated && !this.#authRefusedByState && !this.#inMulti) {
        if (switchesTo) this.protocol = switchesTo;
        if (setName !== undefined) this.name = setName;
      }
      // A malformed HELLO (say `HELLO 3 AUTH <token>`) goes out with placeholders: tokens never reach the backend.
      this.#enqueue(malformed ? encodeCommand([args[0] as Buffer, ...(version ? [version] : []), ...rest]) : command);
      return;
    }
    const outcome: AuthOutcome =
      malformed || switchesTo === undefined ? { ok: false } : this.emulator.verify(credentials[0], credentials[1]);
    const applied = this.#forwardAuth(['HELLO', version as Buffer], outcome, rest);
    if (applied && outcome.ok) {
      if (switchesTo) this.protocol = switchesTo;
      if (setName !== undefined) this.name = setName;
    }
  }

  /**
   * Forwards `<prefix> AUTH-pair <suffix>` with the token replaced: a valid backend user/secret for a good token
   * (after making sure the ACL user exists), a pair that cannot authenticate otherwise. Returns whether the outcome
   * takes effect now (not queued in MULTI, not refused in RESP2 subscribe mode).
   */
  #forwardAuth(prefix: (string | Buffer)[], outcome: AuthOutcome, suffix: (string | Buffer)[]): boolean {
    const isHello = prefix[0] === 'HELLO';
    const build = (user: string, secret: string) =>
      encodeCommand(isHello ? [...prefix, 'AUTH', user, secret, ...suffix] : [...prefix, user, secret, ...suffix]);
    if (outcome.ok) {
      const oid = outcome.oid;
      this.#enqueue(this.emulator.ensureBackendUser(oid).then(() => build(oid, this.emulator.secretFor(oid))));
    } else {
      this.#enqueue(build(INVALID_USER, randomBytes(16).toString('hex')));
    }
    if (this.#inMulti) {
      this.#queuedAuth = outcome;
      return false;
    }
    if (this.#authRefusedByState) {
      this.#count({ ok: false });
      return false;
    }
    this.#applyAuth(outcome);
    return true;
  }

  #count(outcome: AuthOutcome): void {
    if (outcome.ok) this.emulator.counters.authOk += 1;
    else this.emulator.counters.authFailed += 1;
    this.emulator.changed();
  }

  #applyAuth(outcome: AuthOutcome): void {
    if (outcome.ok) {
      this.#authenticated = true;
      this.oid = outcome.oid;
      this.expiresAt = outcome.expiresAt;
      this.authCount += 1;
      this.#armTimer();
    }
    this.#count(outcome);
  }

  #armTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.expiresAt === undefined || this.closed) return;
    const delay = this.expiresAt - Date.now();
    this.#timer = setTimeout(
      () => {
        if (this.expiresAt !== undefined && Date.now() < this.expiresAt) this.#armTimer();
        else this.emulator.expire(this);
      },
      Math.max(0, Math.min(delay, MAX_TIMER_MS)),
    );
  }

  /**
   * Closes both sockets without a reply. `graceful`: the client gets a FIN (then the socket is destroyed once the client
   * closes its side, or after 2 s); otherwise the client socket is destroyed at once (a RST when data is unread).
   */
  destroy(graceful = false): void {
    this.closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#backlog = [];
    this.backend.unpipe(this.client);
    this.backend.destroy();
    if (!graceful || this.client.destroyed) {
      this.client.destroy();
      return;
    }
    this.client.end();
    const timer = setTimeout(() => this.client.destroy(), 2_000);
    timer.unref();
    this.client.once('close', () => clearTimeout(timer));
  }
}
