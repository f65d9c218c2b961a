/**
 * An Azure Managed Redis emulator: a TCP (optionally TLS) proxy in front of a real redis-server that enforces what the
 * AMR front end enforces for Microsoft Entra ID authentication:
 *
 * - `AUTH <user> <jwt>` and `HELLO <ver> AUTH <user> <jwt> [SETNAME <name>]` must carry an RS256 token signed by the
 *   emulated tenant's key, with audience `https://redis.azure.com`, not expired, and a username equal to its `oid`
 *   claim. A good token is forwarded as `AUTH <oid> <secret>` for a backend ACL user named after the oid (created over
 *   an admin connection with `ACL SETUSER`); a bad one is forwarded as an AUTH that is bound to fail, so the real server
 *   answers `WRONGPASS ...` in order with the other replies. One-argument `AUTH <password>` also gets WRONGPASS.
 * - When the token a connection last authenticated with expires, both sockets are closed without a reply, even in the
 *   middle of a blocking command. A later good AUTH moves the deadline; a failed one leaves it.
 *
 * The client-to-server stream is parsed incrementally as RESP (pipelining, partial frames, large bulk strings, and
 * inline commands); server-to-client bytes are piped through untouched, so replies stay in order.
 *
 * Tokens are never logged, never sent to the backend, and never put in error messages.
 *
 * Known simplifications (the emulator follows the command stream, not the replies): AUTH inside MULTI counts at EXEC
 * even if the transaction is aborted by WATCH; subscribe-mode tracking (RESP2 connections cannot AUTH there) ignores
 * subscription commands queued inside MULTI.
 */
import { createHmac, randomBytes, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { Redis } from 'ioredis';
import { verifyJwt } from './jwt.js';
import { REDIS_RESOURCE } from '../token/redis-audience.js';
import type { AdminCredentials, RedisClusterHandle } from './redis-server.js';

/** The audience Azure's Redis front end accepts. */
export const AMR_AUDIENCE = REDIS_RESOURCE;
/** A backend user that never exists: AUTH with it always gets WRONGPASS. */
const INVALID_USER = 'amr-emulator-invalid-user';
/** setTimeout's maximum delay; longer deadlines are re-armed when the timer fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const DEFAULT_WAIT_TIMEOUT_MS = 15_000;

/** Options for `AmrEmulator.start()`. */
export interface AmrEmulatorOptions {
  /** The real redis-server behind the proxy. */
  backend: { host: string; port: number };
  /** Public key of the emulated tenant: tokens must be signed with its private half. */
  publicKey: KeyObject;
  /** Accepted `aud` claim. Default `https://redis.azure.com`. */
  audience?: string;
  /** When given, the proxy terminates TLS with this key and certificate (like AMR's port 10000). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Admin credentials for the backend, used to create one ACL user per oid. */
  admin: AdminCredentials;
  /** Port to listen on (127.0.0.1). Default 0: an ephemeral port. */
  port?: number;
}

/** What the emulator has seen, since it started. */
export interface AmrCounters {
  /** Client connections accepted (after the TLS handshake, with TLS). */
  accepted: number;
  /** Client connections currently open. */
  open: number;
  /** AUTH / HELLO AUTH commands with a good token (forwarded as a valid backend AUTH). */
  authOk: number;
  /** AUTH / HELLO AUTH commands that did not authenticate: bad token, wrong arity, or RESP2 subscribe mode. */
  authFailed: number;
  /** Connections closed by the emulator because their token expired. */
  expiryDisconnects: number;
}

/** Per-connection state, as the emulator sees it (never the token). */
export interface AmrConnectionInfo {
  id: number;
  /** The client's port: matches `redis.stream.localPort` on the ioredis side. */
  remotePort: number | undefined;
  /** oid of the last good token, if any. */
  oid: string | undefined;
  /** When the last good token expires (epoch ms), if any. */
  expiresAt: number | undefined;
  /** Name from `CLIENT SETNAME` or `HELLO ... SETNAME`. */
  name: string | undefined;
  /** RESP version after HELLO. */
  protocol: 2 | 3;
  /** Successful AUTHs on this connection. */
  authCount: number;
}

/** Options for the `waitFor*` helpers. */
export interface AmrWaitOptions {
  /** Default 15 s. */
  timeoutMs?: number;
}

type AuthOutcome = { ok: true; oid: string; expiresAt: number } | { ok: false };

// ---------------------------------------------------------------------------------------------------------------------
// RESP request parsing.

interface ParsedCommand {
  /** The exact bytes the client sent for this command. */
  raw: Buffer;
  /** The command's arguments (views into `raw`'s buffer, no copies). */
  args: Buffer[];
}

type ParseStep = { end: number; args: Buffer[] } | { need: number } | { error: string };

const CR = 13;
const LF = 10;
const MAX_HEADER_LINE = 64 * 1024;

function readLine(buf: Buffer, pos: number): { line: string; next: number } | undefined {
  const cr = buf.indexOf(CR, pos);
  if (cr === -1 || cr + 1 >= buf.length) return undefined;
  return { line: buf.toString('latin1', pos, cr), next: cr + 2 };
}

/** Parses one command at `pos`, or says how many bytes (counted from `pos`) are needed at least to make progress. */
function parseOne(buf: Buffer, pos: number): ParseStep {
  if (buf[pos] !== 0x2a /* '*' */) {
    // Inline command (redis-cli's and telnet's form): one line, arguments separated by spaces.
    const lf = buf.indexOf(LF, pos);
    if (lf === -1) {
      if (buf.length - pos > MAX_HEADER_LINE) return { error: 'inline command too long' };
      return { need: buf.length - pos + 1 };
    }
    const line = buf.toString('latin1', pos, lf).replace(/\r$/, '');
    const args = line.split(/[ \t]+/).filter(Boolean).map((arg) => Buffer.from(arg, 'latin1'));
    return { end: lf + 1, args };
  }
  const header = readLine(buf, pos);
  if (!header) {
    if (buf.length - pos > MAX_HEADER_LINE) return { error: 'multibulk header too long' };
    return { need: buf.length - pos + 1 };
  }
  const count = Number(header.line.slice(1));
  if (!Number.isInteger(count)) return { error: 'invalid multibulk length' };
  let cursor = header.next;
  const args: Buffer[] = [];
  for (let i = 0; i < count; i += 1) {
    if (cursor >= buf.length) return { need: cursor - pos + 1 };
    if (buf[cursor] !== 0x24 /* '$' */) return { error: 'expected a bulk string' };
    const bulkHeader = readLine(buf, cursor);
    if (!bulkHeader) {
      if (buf.length - cursor > MAX_HEADER_LINE) return { error: 'bulk header too long' };
      return { need: buf.length - pos + 1 };
    }
    const length = Number(bulkHeader.line.slice(1));
    if (!Number.isInteger(length) || length < 0) return { error: 'invalid bulk length' };
    const end = bulkHeader.next + length;
    if (end + 2 > buf.length) return { need: end + 2 - pos };
    if (buf[end] !== CR || buf[end + 1] !== LF) return { error: 'bulk string not followed by CRLF' };
    args.push(buf.subarray(bulkHeader.next, end));
    cursor = end + 2;
  }
  return { end: cursor, args };
}

/**
 * Incremental parser of a client's request stream. Chunks are only concatenated once enough bytes have arrived to make
 * progress, so a large bulk string arriving in many chunks is copied once, not once per chunk.
 */
class RequestParser {
  #chunks: Buffer[] = [];
  #length = 0;
  #need = 1;

  /** Returns complete commands, or the error that makes the rest of the stream unparseable. */
  push(data: Buffer): { commands: ParsedCommand[]; error?: string; rest?: Buffer } {
    this.#chunks.push(data);
    this.#length += data.length;
    if (this.#length < this.#need) return { commands: [] };
    const buf = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#length);
    this.#chunks = [];
    this.#length = 0;
    const commands: ParsedCommand[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const step = parseOne(buf, pos);
      if ('error' in step) return { commands, error: step.error, rest: buf.subarray(pos) };
      if ('need' in step) {
        this.#need = step.need;
        break;
      }
      commands.push({ raw: buf.subarray(pos, step.end), args: step.args });
      pos = step.end;
    }
    if (pos >= buf.length) this.#need = 1;
    else {
      const rest = buf.subarray(pos);
      this.#chunks = [rest];
      this.#length = rest.length;
    }
    return { commands };
  }
}

function encodeCommand(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const value = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${value.length}\r\n`), value, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

const lower = (arg: Buffer | undefined) => (arg === undefined ? '' : arg.toString('latin1').toLowerCase());

// ---------------------------------------------------------------------------------------------------------------------
// One proxied connection.

class ProxiedConnection {
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
        if (!this.#inMulti) this.#trackSubscriptions(name, args.slice(1).map((arg) => arg.toString('latin1')));
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
    const outcome: AuthOutcome = malformed || switchesTo === undefined
      ? { ok: false }
      : this.emulator.verify(credentials[0], credentials[1]);
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
    this.#timer = setTimeout(() => {
      if (this.expiresAt !== undefined && Date.now() < this.expiresAt) this.#armTimer();
      else this.emulator.expire(this);
    }, Math.max(0, Math.min(delay, MAX_TIMER_MS)));
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

// ---------------------------------------------------------------------------------------------------------------------
// The emulator.

/**
 * An AMR front end in front of one redis-server. Create with `AmrEmulator.start()`.
 *
 * Events (none carries a token): `'connection'` and `'disconnect'` (AmrConnectionInfo), `'expired'` (AmrConnectionInfo
 * of a connection closed because its token expired), `'change'` (any counter or connection state changed; what the
 * `waitFor*` helpers listen to).
 */
export class AmrEmulator extends EventEmitter {
  readonly host = '127.0.0.1';
  /** Live counters (see `AmrCounters`). */
  readonly counters: AmrCounters = { accepted: 0, open: 0, authOk: 0, authFailed: 0, expiryDisconnects: 0 };
  readonly #options: AmrEmulatorOptions;
  readonly #audience: string;
  readonly #server: net.Server;
  readonly #connections = new Set<ProxiedConnection>();
  readonly #secretKey = randomBytes(32);
  #admin: Redis | undefined;
  #nextId = 1;
  #port = 0;
  #stopped = false;
  #refuse: ((claims: Record<string, unknown>) => boolean) | undefined;

  private constructor(options: AmrEmulatorOptions) {
    super();
    this.setMaxListeners(0);
    this.#options = options;
    this.#audience = options.audience ?? AMR_AUDIENCE;
    const onSocket = (socket: net.Socket) => this.#accept(socket);
    this.#server = options.tls
      ? tls.createServer({ key: options.tls.key, cert: options.tls.cert }, onSocket)
      : net.createServer(onSocket);
    this.#server.on('tlsClientError', () => {
      // A client that fails the TLS handshake is simply dropped.
    });
  }

  /**
   * The admin connection to the backend, made on demand and never reconnecting by itself (a reconnect loop towards a
   * stopped backend would keep the test process alive); a new one is made after the backend restarted.
   */
  #adminClient(): Redis {
    if (this.#admin && this.#admin.status !== 'end') return this.#admin;
    const admin = new Redis({
      host: this.#options.backend.host,
      port: this.#options.backend.port,
      username: this.#options.admin.username,
      password: this.#options.admin.password,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      disableClientInfo: true,
      // AMR checks tokens in front of the server, also while a restarted server loads its dataset (redis-server
      // accepts ACL SETUSER then): no ready check, which would hold the command until the load is over.
      enableReadyCheck: false,
      connectionName: 'amr-emulator-admin',
    });
    admin.on('error', () => {
      // The backend may be down on purpose (restart tests); the command reports the failure.
    });
    this.#admin = admin;
    return admin;
  }

  /** Starts an emulator listening on 127.0.0.1 (ephemeral port unless `port` is given). */
  static async start(options: AmrEmulatorOptions): Promise<AmrEmulator> {
    const emulator = new AmrEmulator(options);
    await emulator.#listen(options.port ?? 0);
    return emulator;
  }

  get port(): number {
    return this.#port;
  }

  /** Whether the proxy terminates TLS. */
  get tls(): boolean {
    return this.#options.tls !== undefined;
  }

  async #listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, this.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    this.#port = typeof address === 'object' && address ? address.port : 0;
  }

  #accept(client: net.Socket): void {
    if (this.#stopped) {
      client.destroy();
      return;
    }
    const backend = net.connect({ host: this.#options.backend.host, port: this.#options.backend.port });
    backend.setNoDelay(true);
    client.setNoDelay(true);
    const connection = new ProxiedConnection(this, client, backend, this.#nextId);
    this.#nextId += 1;
    this.#connections.add(connection);
    this.counters.accepted += 1;
    this.counters.open += 1;

    client.on('data', (data: Buffer) => connection.onClientData(data));
    backend.pipe(client);
    client.on('error', () => connection.destroy());
    backend.on('error', () => connection.destroy());
    client.on('end', () => backend.end());
    backend.on('close', () => {
      // The server closed (QUIT, CLIENT KILL, shutdown): flush what it said, then close the client side.
      if (!connection.closed && !client.destroyed) client.end(() => client.destroy());
    });
    client.on('close', () => {
      connection.closed = true;
      backend.destroy();
      connection.destroy();
      if (this.#connections.delete(connection)) {
        this.counters.open -= 1;
        this.emit('disconnect', connection.info());
        this.changed();
      }
    });
    this.emit('connection', connection.info());
    this.changed();
  }

  /** Verifies a token presented with `user`. Never throws, never logs. */
  verify(user: Buffer, token: Buffer): AuthOutcome {
    let result: ReturnType<typeof verifyJwt>;
    try {
      result = verifyJwt(token.toString(), this.#options.publicKey, this.#audience);
    } catch {
      return { ok: false }; // e.g. a payload that is JSON but not an object
    }
    if (!result.ok) return { ok: false };
    const claims: unknown = result.claims; // a verified payload may still be any JSON value
    if (typeof claims !== 'object' || claims === null) return { ok: false };
    const { oid, exp } = result.claims;
    if (typeof oid !== 'string' || oid.length === 0 || user.toString() !== oid) return { ok: false };
    if (this.#refuse?.(result.claims) === true) return { ok: false };
    return { ok: true, oid, expiresAt: (exp as number) * 1000 };
  }

  /**
   * Refuses (WRONGPASS) every otherwise valid token whose claims match `predicate`, as Azure does for a token it
   * cannot accept yet (a signing key it has not picked up, a clock ahead of it); `undefined` accepts them again.
   * Connections already authenticated stay so.
   */
  refuseTokens(predicate: ((claims: Record<string, unknown>) => boolean) | undefined): void {
    this.#refuse = predicate;
  }

  /** The backend password of the ACL user for `oid` (derived from a per-emulator random key, never the token). */
  secretFor(oid: string): string {
    return createHmac('sha256', this.#secretKey).update(oid).digest('base64url');
  }

  /**
   * Makes sure the backend has an ACL user for `oid`. Idempotent, and run for every good AUTH, so users lost in a
   * backend restart come back. `>secret` adds a password, so emulators sharing a backend do not step on each other.
   */
  async ensureBackendUser(oid: string): Promise<void> {
    // Twice: the first attempt may hit an admin connection whose backend just went away (restart) unnoticed.
    for (let attempt = 0; attempt < 2 && !this.#stopped; attempt += 1) {
      try {
        await this.#adminClient().call('ACL', 'SETUSER', oid, 'on', `>${this.secretFor(oid)}`, '~*', '&*', '+@all');
        return;
      } catch {
        this.#admin?.disconnect();
        this.#admin = undefined;
      }
    }
    // Otherwise the AUTH that follows fails with WRONGPASS, which is what a client would see.
  }

  /** Called by a connection whose token expired. */
  expire(connection: ProxiedConnection): void {
    if (connection.closed) return;
    this.counters.expiryDisconnects += 1;
    const info = connection.info();
    connection.destroy(true);
    this.emit('expired', info);
    this.changed();
  }

  /** Signals a state change to waiters. */
  changed(): void {
    this.emit('change');
  }

  /** Snapshot of every open connection. */
  connections(): AmrConnectionInfo[] {
    return [...this.#connections].filter((connection) => !connection.closed).map((connection) => connection.info());
  }

  /** Closes one client connection (and its backend connection) at once, like a network failure. False if not open. */
  drop(id: number): boolean {
    for (const connection of this.#connections) {
      if (connection.id !== id || connection.closed) continue;
      connection.destroy();
      return true;
    }
    return false;
  }

  /** Closes every client connection at once (and its backend connection), like a network failure or failover. */
  closeAllConnections(): void {
    for (const connection of this.#connections) connection.destroy();
  }

  /** Resolves when `predicate` holds, re-checked on every state change; rejects after `timeoutMs` (default 15 s). */
  async waitFor(predicate: (emulator: AmrEmulator) => boolean, options: AmrWaitOptions & { description?: string } = {})
    : Promise<void> {
    const { timeoutMs = DEFAULT_WAIT_TIMEOUT_MS, description = 'condition' } = options;
    if (predicate(this)) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate(this)) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`AMR emulator: timed out after ${timeoutMs} ms waiting for ${description}; `
          + `counters ${JSON.stringify(this.counters)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('change', check);
      };
      this.on('change', check);
    });
  }

  /** Resolves when `counters[name] >= value`. */
  async waitForCounter(name: keyof AmrCounters, value: number, options: AmrWaitOptions = {}): Promise<void> {
    await this.waitFor((emulator) => emulator.counters[name] >= value, { ...options, description: `${name} >= ${value}` });
  }

  /** Resolves when exactly `count` client connections are open. */
  async waitForOpen(count: number, options: AmrWaitOptions = {}): Promise<void> {
    await this.waitFor((emulator) => emulator.counters.open === count, { ...options, description: `open === ${count}` });
  }

  /** Stops listening, closes every connection and the admin connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.closeAllConnections();
    this.#admin?.disconnect();
    this.#admin = undefined;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Cluster.

/** ioredis `natMap`: real node address (as redis announces it) → proxy address. */
export type AmrNatMap = Record<string, { host: string; port: number }>;

/** One emulator per cluster node, and the address translation ioredis needs. */
export interface AmrCluster {
  readonly emulators: readonly AmrEmulator[];
  /** For ioredis `Cluster`'s `natMap` option: `{ '127.0.0.1:<redisPort>': { host: '127.0.0.1', port: <proxyPort> } }`. */
  readonly natMap: AmrNatMap;
  /** Proxy addresses, for ioredis `Cluster`'s startup nodes. */
  startupNodes(): { host: string; port: number }[];
  /** Sum of one counter over every emulator. */
  total(name: keyof AmrCounters): number;
  /** Resolves when the sum of `name` over every emulator reaches `value`. */
  waitForTotal(name: keyof AmrCounters, value: number, options?: AmrWaitOptions): Promise<void>;
  closeAllConnections(): void;
  stop(): Promise<void>;
}

/** Options for `startAmrCluster()`: those of `AmrEmulator.start()` without the backend; admin defaults to the cluster's. */
export type AmrClusterOptions = Omit<AmrEmulatorOptions, 'backend' | 'admin' | 'port'> & { admin?: AdminCredentials };

/**
 * Starts one emulator in front of each node of `cluster`. Redis keeps announcing its own addresses (CLUSTER SLOTS,
 * CLUSTER NODES, MOVED, ASK): the client translates them with `natMap`, as with Azure's OSS cluster policy.
 */
export async function startAmrCluster(cluster: RedisClusterHandle, options: AmrClusterOptions): Promise<AmrCluster> {
  const emulators: AmrEmulator[] = [];
  try {
    for (const node of cluster.nodes) {
      emulators.push(await AmrEmulator.start({
        ...options,
        admin: options.admin ?? cluster.admin,
        backend: { host: node.host, port: node.port },
      }));
    }
  } catch (error) {
    await Promise.all(emulators.map((emulator) => emulator.stop()));
    throw error;
  }
  const natMap: AmrNatMap = {};
  cluster.nodes.forEach((node, index) => {
    const emulator = emulators[index] as AmrEmulator;
    natMap[`${node.host}:${node.port}`] = { host: emulator.host, port: emulator.port };
  });
  const total = (name: keyof AmrCounters) => emulators.reduce((sum, emulator) => sum + emulator.counters[name], 0);
  return {
    emulators,
    natMap,
    startupNodes: () => emulators.map((emulator) => ({ host: emulator.host, port: emulator.port })),
    total,
    async waitForTotal(name, value, waitOptions = {}) {
      const { timeoutMs = DEFAULT_WAIT_TIMEOUT_MS } = waitOptions;
      const deadline = Date.now() + timeoutMs;
      while (total(name) < value) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`AMR cluster: timed out waiting for total ${name} >= ${value} (is ${total(name)})`);
        // Wake up on the next change of any emulator.
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            for (const emulator of emulators) emulator.off('change', wake);
            resolve();
          };
          const timer = setTimeout(wake, remaining);
          for (const emulator of emulators) emulator.on('change', wake);
        });
      }
    },
    closeAllConnections: () => {
      for (const emulator of emulators) emulator.closeAllConnections();
    },
    stop: async () => {
      await Promise.all(emulators.map((emulator) => emulator.stop()));
    },
  };
}
