// The AMR emulator's front end: listens (plain or TLS), accepts client connections and pairs each with a backend
// connection, keeps the counters, offers the fault controls and the waits, and stops.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { BackendUsers } from './backend-users.js';
import { ProxiedConnection } from './connection.js';
import { AMR_AUDIENCE, TokenVerifier } from './token-verifier.js';
import type { AmrConnectionInfo, AmrCounters, AmrEmulatorOptions, AmrWaitOptions, AuthOutcome } from './types.js';

/** Default timeout of the `waitFor*` helpers, ms. */
export const DEFAULT_WAIT_TIMEOUT_MS = 15_000;

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
  readonly #verifier: TokenVerifier;
  readonly #users: BackendUsers;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #connections = new Set<ProxiedConnection>();
  #nextId = 1;
  #port = 0;
  #stopped = false;

  private constructor(options: AmrEmulatorOptions) {
    super();
    this.setMaxListeners(0);
    this.#options = options;
    this.#verifier = new TokenVerifier(options.publicKey, options.audience ?? AMR_AUDIENCE);
    this.#users = new BackendUsers(options.backend, options.admin);
    const onSocket = (socket: net.Socket) => this.#accept(socket);
    // Half-open connections, as redis-server allows: a client that sends its FIN still gets the replies to what it
    // sent before (ioredis's disconnect() ends the socket that way).
    this.#server = options.tls
      ? tls.createServer({ key: options.tls.key, cert: options.tls.cert, allowHalfOpen: true }, onSocket)
      : net.createServer({ allowHalfOpen: true }, onSocket);
    this.#server.on('tlsClientError', (_error: Error, socket: tls.TLSSocket) => {
      // A client that fails the TLS handshake is dropped.
      socket.destroy();
    });
    // Every accepted socket, so that stop() ends those that never became a proxied connection (a TLS client that gave
    // up on the certificate leaves a half-open socket behind).
    this.#server.on('connection', (socket: net.Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
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
    client.on('end', () => connection.onClientEnd());
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
    return this.#verifier.verify(user, token);
  }

  /** The backend password of the ACL user for `oid` (derived from a per-emulator random key, never the token). */
  secretFor(oid: string): string {
    return this.#users.secretFor(oid);
  }

  /**
   * Makes sure the backend has an ACL user for `oid`. Idempotent, and run for every good AUTH, so users lost in a
   * backend restart come back. `>secret` adds a password, so emulators sharing a backend do not step on each other.
   */
  async ensureBackendUser(oid: string): Promise<void> {
    await this.#users.ensure(oid);
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

  // Faults.

  /**
   * Refuses (WRONGPASS) every otherwise valid token whose claims match `predicate`, as Azure does for a token it
   * cannot accept yet (a signing key it has not picked up, a clock ahead of it); `undefined` accepts them again.
   * Connections already authenticated stay so.
   */
  refuseTokens(predicate: ((claims: Record<string, unknown>) => boolean) | undefined): void {
    this.#verifier.refuseTokens(predicate);
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

  // Waiting for state.

  /** Resolves when `predicate` holds, re-checked on every state change; rejects after `timeoutMs` (default 15 s). */
  async waitFor(
    predicate: (emulator: AmrEmulator) => boolean,
    options: AmrWaitOptions & { description?: string } = {},
  ): Promise<void> {
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
        reject(
          new Error(
            `AMR emulator: timed out after ${timeoutMs} ms waiting for ${description}; ` +
              `counters ${JSON.stringify(this.counters)}`,
          ),
        );
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
    await this.waitFor((emulator) => emulator.counters[name] >= value, {
      ...options,
      description: `${name} >= ${value}`,
    });
  }

  /** Resolves when exactly `count` client connections are open. */
  async waitForOpen(count: number, options: AmrWaitOptions = {}): Promise<void> {
    await this.waitFor((emulator) => emulator.counters.open === count, {
      ...options,
      description: `open === ${count}`,
    });
  }

  /** Stops listening, closes every connection and the admin connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.closeAllConnections();
    this.#users.stop();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}
