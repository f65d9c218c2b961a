/**
 * Real redis-server processes for tests: standalone servers and a 3-master Redis Cluster.
 *
 * Every server listens on 127.0.0.1 only, on an ephemeral port, in its own temporary directory, without persistence.
 * Auth is set up as on Azure Managed Redis with access keys disabled: the `default` user is off (a connection that does
 * not AUTH gets NOAUTH) and one admin user with a random password exists for the emulators and for test assertions.
 * Servers are killed on `stop()`, and with SIGKILL when the test process exits, as a safety net.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

/** Where redis-server lives; override with REDIS_SERVER_BIN. */
export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? 'redis-server';
/** Name of the ACL user with full rights that every server started here has. */
export const ADMIN_USERNAME = 'entraid-admin';
const DEFAULT_READY_TIMEOUT_MS = 15_000;
const CLUSTER_SLOTS = 16384;

/** Credentials of a server's admin ACL user. */
export interface AdminCredentials {
  username: string;
  password: string;
}

/** Options for `startRedisServer()`. */
export interface RedisServerOptions {
  /** Extra redis.conf lines (`'maxmemory 10mb'`), appended after the defaults. */
  extraConfig?: string[];
  /** How long to wait for readiness on start and restart. Default 15 s. */
  readyTimeoutMs?: number;
}

/** A running (or stopped) redis-server process with a fixed port, for the life of the handle. */
export interface RedisServerHandle {
  readonly host: string;
  readonly port: number;
  /** The admin ACL user's credentials (the `default` user is off). */
  readonly admin: AdminCredentials;
  /** The temporary directory holding the config and log file (removed on `stop()`). */
  readonly dir: string;
  /** Options for `new Redis(...)` (ioredis 5 or 6) that connect as the admin user. */
  adminClientOptions(): { host: string; port: number; username: string; password: string };
  /** Runs one command as the admin user over a connection the handle keeps (closed on stop/kill/restart). */
  command(name: string, ...args: (string | number | Buffer)[]): Promise<unknown>;
  /** Tail of the server's log file, for assertion messages. */
  log(): string;
  /** Starts the process again after `kill()` (same port, same dir); awaits readiness. */
  start(): Promise<void>;
  /** SIGKILLs the process and awaits its exit; the handle can `start()` again. */
  kill(): Promise<void>;
  /** Stops the process gracefully (SIGTERM) and starts it again on the same port; awaits readiness. */
  restart(): Promise<void>;
  /** Stops the process for good and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** True while the process runs. */
  readonly running: boolean;
}

// ---------------------------------------------------------------------------------------------------------------------
// Safety net: kill every child still alive when the test process goes away.

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let safetyNetInstalled = false;

function killAllChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.once('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      killAllChildren();
      // Let the default behaviour happen when nobody else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

/**
 * Second safety net, for a test process that dies without running exit handlers (SIGKILL, a runner's timeout): a tiny
 * shell that reads a pipe from this process and SIGKILLs the server when the pipe closes. When the server exits
 * normally, the watchdog itself is killed (so it never signals a recycled pid).
 */
function startWatchdog(pid: number): ChildProcess | undefined {
  try {
    const watchdog = spawn(
      '/bin/sh',
      ['-c', 'cat >/dev/null; kill -9 "$1" 2>/dev/null', 'redis-watchdog', String(pid)],
      {
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    );
    watchdog.on('error', () => undefined);
    watchdog.stdin.on('error', () => undefined);
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    liveChildren.add(watchdog);
    watchdog.once('exit', () => liveChildren.delete(watchdog));
    return watchdog;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Polling.

/** Options for `waitUntil()`. */
export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Describes what is awaited, for the timeout error. */
  description?: string;
}

/**
 * Polls `condition` until it returns a truthy value (which is returned). Throws after `timeoutMs` (default 15 s).
 * A helper of the emulators, not part of the documented testing API.
 * @internal
 */
export async function waitUntil<T>(
  condition: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = DEFAULT_READY_TIMEOUT_MS, intervalMs = 25, description = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      // After a stall of the process, timers run before the I/O that arrived meanwhile is read: let it be read and
      // look once more before giving up. Two turns of setImmediate put one poll phase (where I/O is read) between
      // here and the last look, wherever in the event loop this runs.
      for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
      try {
        const value = await condition();
        if (value) return value;
      } catch (error) {
        lastError = error;
      }
      const suffix = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${suffix}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Admin connections (ioredis 5, used only as a tool here; the code under test is exercised by the tests).

/**
 * A connection as the admin user that never reconnects by itself: a reconnect loop outliving its server would keep the
 * test process alive. `RedisServer#command` makes a new one when the last one has ended.
 */
function adminConnection(host: string, port: number, admin: AdminCredentials, probe = false): Redis {
  const client = new Redis({
    host,
    port,
    username: admin.username,
    password: admin.password,
    lazyConnect: probe,
    connectTimeout: probe ? 1_000 : 5_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: true,
    retryStrategy: () => null,
    disableClientInfo: true,
  });
  client.on('error', () => {
    // Connection errors show up as rejected commands; an unhandled 'error' event would only print noise.
  });
  return client;
}

/** True when the server at host:port answers PING as the admin user (and is not loading). */
async function answersPing(host: string, port: number, admin: AdminCredentials): Promise<boolean> {
  const client = adminConnection(host, port, admin, true);
  try {
    await client.connect();
    const reply: unknown = await client.ping(); // checked: the server's answer, whatever the typings promise
    return reply === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// One server process.

interface ServerSpec {
  port: number;
  dir: string;
  admin: AdminCredentials;
  /** Extra config lines (cluster settings, user extras). */
  config: string[];
  readyTimeoutMs: number;
}

function writeConfig(spec: ServerSpec): string {
  const lines = [
    `port ${spec.port}`,
    'bind 127.0.0.1',
    'protected-mode yes',
    'daemonize no',
    `dir ${spec.dir}`,
    `logfile ${join(spec.dir, 'redis.log')}`,
    'save ""',
    'appendonly no',
    'enable-debug-command local',
    // Azure-like auth: default user disabled, one admin user.
    'user default off resetpass',
    `user ${spec.admin.username} on >${spec.admin.password} ~* &* +@all`,
    ...spec.config,
  ];
  const path = join(spec.dir, 'redis.conf');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function readLogTail(dir: string, lines = 30): string {
  const path = join(dir, 'redis.log');
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
}

class RedisServer implements RedisServerHandle {
  readonly host = '127.0.0.1';
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #adminClient: Redis | undefined;
  #stopped = false;

  constructor(readonly spec: ServerSpec) {}

  get port(): number {
    return this.spec.port;
  }

  get admin(): AdminCredentials {
    return this.spec.admin;
  }

  get dir(): string {
    return this.spec.dir;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  adminClientOptions() {
    return { host: this.host, port: this.port, username: this.admin.username, password: this.admin.password };
  }

  async command(name: string, ...args: (string | number | Buffer)[]): Promise<unknown> {
    if (this.#stopped) throw new Error(`redis-server on port ${this.port} was stopped`);
    if (!this.#adminClient || this.#adminClient.status === 'end') {
      this.#adminClient = adminConnection(this.host, this.port, this.admin);
    }
    return await this.#adminClient.call(name, ...args);
  }

  log(): string {
    return readLogTail(this.dir);
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new Error('this redis-server handle was stopped for good');
    if (this.#child) return;
    installSafetyNet();
    const configPath = writeConfig(this.spec);
    const child = spawn(REDIS_SERVER_BIN, [configPath], { stdio: 'ignore', cwd: this.dir });
    child.unref();
    liveChildren.add(child);
    const watchdog = child.pid === undefined ? undefined : startWatchdog(child.pid);
    this.#child = child;
    let exitedEarly = false;
    this.#exited = new Promise<void>((resolve) => {
      const done = () => {
        exitedEarly = true;
        liveChildren.delete(child);
        watchdog?.kill('SIGKILL');
        if (this.#child === child) this.#child = undefined;
        resolve();
      };
      child.once('exit', done);
      child.once('error', done);
    });
    try {
      await waitUntil(
        async () => {
          if (exitedEarly) throw new Error(`redis-server exited during startup:\n${this.log()}`);
          return await answersPing(this.host, this.port, this.admin);
        },
        { timeoutMs: this.spec.readyTimeoutMs, description: `redis-server on port ${this.port}` },
      );
    } catch (error) {
      await this.kill();
      const log = this.log();
      throw new Error(
        `${(error as Error).message}${log && !(error as Error).message.includes(log) ? `\n${log}` : ''}`,
        { cause: error },
      );
    }
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    this.#adminClient?.disconnect();
    this.#adminClient = undefined;
    const child = this.#child;
    if (!child) return;
    child.kill(signal);
    const exited = this.#exited;
    if (signal !== 'SIGKILL') {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
  }

  async kill(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  async restart(): Promise<void> {
    await this.#signal('SIGTERM');
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#signal('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

function randomAdmin(): AdminCredentials {
  return { username: ADMIN_USERNAME, password: randomBytes(18).toString('base64url') };
}

/** Starts a standalone redis-server (default user off, admin user) on an ephemeral loopback port; awaits readiness. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  return await startServerWithRetry(
    randomAdmin(),
    options.extraConfig ?? [],
    options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    () => Promise.resolve([]),
  );
}

/**
 * Picks ports and starts a server; if the freshly picked port was taken in the meantime (redis exits at startup),
 * tries again with new ports a few times.
 */
async function startServerWithRetry(
  admin: AdminCredentials,
  extraConfig: string[],
  readyTimeoutMs: number,
  moreConfig: () => Promise<string[]>,
): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const dir = mkdtempSync(join(tmpdir(), 'entraid-redis-'));
    liveDirs.add(dir);
    const server = new RedisServer({
      port: await freePort(),
      dir,
      admin,
      config: [...(await moreConfig()), ...extraConfig],
      readyTimeoutMs,
    });
    try {
      await server.start();
      return server;
    } catch (error) {
      lastError = error;
      await server.stop();
      if (!/Address already in use/i.test((error as Error).message)) break;
    }
  }
  throw lastError;
}

// ---------------------------------------------------------------------------------------------------------------------
// Cluster.

/** Options for `startRedisCluster()`. */
export interface RedisClusterOptions {
  /** Number of masters (no replicas). Default 3. */
  masters?: number;
  /** cluster-node-timeout in ms. Default 3000. */
  nodeTimeoutMs?: number;
  /** Extra redis.conf lines for every node. */
  extraConfig?: string[];
  /** How long to wait for each readiness condition. Default 15 s. */
  readyTimeoutMs?: number;
}

/** One node of a cluster. */
export interface RedisClusterNode extends RedisServerHandle {
  /** The cluster bus port (set explicitly with `cluster-port`). */
  readonly busPort: number;
  /** The slot range this node was given at creation: [first, last], inclusive. */
  readonly slots: readonly [number, number];
}

/** A running Redis Cluster of masters, all with the same admin user. */
export interface RedisClusterHandle {
  readonly nodes: readonly RedisClusterNode[];
  /** Admin credentials, the same on every node. */
  readonly admin: AdminCredentials;
  /** `[{ host, port }]` of every node (the real redis ports). */
  startupNodes(): { host: string; port: number }[];
  /** SIGKILLs node i (its slots become unreachable; the others mark it failed after the node timeout). */
  killNode(index: number): Promise<void>;
  /** Starts node i again after `killNode(i)` (or restarts it gracefully), then awaits cluster state ok everywhere. */
  restartNode(index: number): Promise<void>;
  /** Awaits `cluster_state:ok` with every slot served and every node seeing every other node connected. */
  waitForHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their directories. Idempotent. */
  stop(): Promise<void>;
}

function slotRanges(masters: number): [number, number][] {
  const ranges: [number, number][] = [];
  for (let i = 0; i < masters; i += 1) {
    const first = Math.floor((CLUSTER_SLOTS * i) / masters);
    const last = Math.floor((CLUSTER_SLOTS * (i + 1)) / masters) - 1;
    ranges.push([first, last]);
  }
  return ranges;
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const index = line.indexOf(':');
    if (index > 0) fields[line.slice(0, index)] = line.slice(index + 1);
  }
  return fields;
}

/** True when `node` sees a healthy cluster of `size` nodes, all connected, all slots ok. */
async function nodeSeesHealthyCluster(node: RedisServer, size: number): Promise<boolean> {
  const info = parseInfo(String(await node.command('CLUSTER', 'INFO')));
  if (info.cluster_state !== 'ok') return false;
  if (Number(info.cluster_known_nodes) !== size) return false;
  if (Number(info.cluster_slots_ok) !== CLUSTER_SLOTS) return false;
  const nodesText = String(await node.command('CLUSTER', 'NODES'));
  const lines = nodesText.trim().split('\n');
  if (lines.length !== size) return false;
  return lines.every((line) => {
    const fields = line.split(' ');
    const flags = fields[2] ?? '';
    const linkState = fields[7];
    return linkState === 'connected' && !/fail|handshake|noaddr/.test(flags);
  });
}

class RedisCluster implements RedisClusterHandle {
  #stopped = false;

  constructor(
    readonly nodes: (RedisServer & RedisClusterNode)[],
    readonly admin: AdminCredentials,
    readonly readyTimeoutMs: number,
  ) {}

  startupNodes() {
    return this.nodes.map((node) => ({ host: node.host, port: node.port }));
  }

  #node(index: number): RedisServer & RedisClusterNode {
    const node = this.nodes[index];
    if (!node) throw new Error(`no cluster node ${index}`);
    return node;
  }

  async killNode(index: number): Promise<void> {
    await this.#node(index).kill();
  }

  async restartNode(index: number): Promise<void> {
    const node = this.#node(index);
    if (node.running) await node.restart();
    else await node.start();
    await this.waitForHealthy();
  }

  async waitForHealthy(timeoutMs = this.readyTimeoutMs): Promise<void> {
    await waitUntil(
      async () => {
        for (const node of this.nodes) {
          if (!(await nodeSeesHealthyCluster(node, this.nodes.length))) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 50, description: 'a healthy cluster (state ok, all slots, all links connected)' },
    );
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}

/**
 * Starts a Redis Cluster of `masters` masters (default 3, no replicas) on ephemeral loopback ports, the same admin
 * user on every node, and awaits a healthy cluster.
 *
 * Creation, by hand rather than with `redis-cli --cluster create` (no interactive prompt, no fixed sleeps):
 * each node gets `CLUSTER SET-CONFIG-EPOCH i+1` (distinct epochs, so no collision resolution is needed) and
 * `CLUSTER ADDSLOTSRANGE` for its share of the slots, then every pair of nodes `CLUSTER MEET`s directly (with the
 * explicit bus port); then every node is polled until it reports `cluster_state:ok`, all slots ok, every node known
 * and every link connected. A master reports ok 2 s after its start at the earliest (CLUSTER_WRITABLE_DELAY), so the
 * nodes are started in parallel and creation takes a little over 2 s.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 3_000;
  const ranges = slotRanges(masters);
  const admin = randomAdmin();
  const nodes: (RedisServer & RedisClusterNode)[] = [];
  try {
    // Start the processes in parallel: a master only reports cluster_state:ok 2 s after its start.
    const started = await Promise.allSettled(
      ranges.map(async (range) => {
        let busPort = 0;
        const server = await startServerWithRetry(admin, options.extraConfig ?? [], readyTimeoutMs, async () => {
          busPort = await freePort();
          return [
            'cluster-enabled yes',
            'cluster-config-file nodes.conf',
            `cluster-node-timeout ${nodeTimeoutMs}`,
            `cluster-port ${busPort}`,
            'cluster-announce-ip 127.0.0.1',
          ];
        });
        return Object.assign(server, { busPort, slots: range });
      }),
    );
    for (const result of started) if (result.status === 'fulfilled') nodes.push(result.value);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    for (const [i, node] of nodes.entries()) {
      const [first, last] = node.slots;
      await node.command('CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
      await node.command('CLUSTER', 'ADDSLOTSRANGE', first, last);
    }
    // Every pair meets directly: waiting for gossip to spread the news costs a second or two.
    for (const [i, node] of nodes.entries()) {
      for (const other of nodes.slice(i + 1)) {
        await node.command('CLUSTER', 'MEET', other.host, other.port, other.busPort);
      }
    }
    const cluster = new RedisCluster(nodes, admin, readyTimeoutMs);
    await cluster.waitForHealthy();
    return cluster;
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
}
