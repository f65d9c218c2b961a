// ioredis majors: 5, 6
/**
 * No token ever leaves the library through what it emits, throws, rejects with or logs, on every failure path:
 * WRONGPASS at connect and at re-AUTH (a RESP2 subscriber's handover included), token-service failures of every kind,
 * timeouts, redis-server down, a credential whose errors quote the token, and `DEBUG=ioredis:*` in a child process.
 *
 * Captured, as a string at the moment it happens: every event of the test's clients and providers (ioredis's emit is
 * wrapped at the bottom, so this is what listeners receive), every rejection and throw (util.inspect with hidden
 * properties, stack, JSON, `%s`/`%o`/`%j`), everything written to console.* and process.stdout/stderr, the library's
 * diagnostics channels and ioredis's own, the argument of the application's `reconnectOnError`, `provider.lastError`, and util.inspect / JSON / String of EntraToken and of
 * the provider. Searched for: every raw token the library received (a recording credential wraps every credential,
 * the child process reports its own over IPC): the whole token, or any 63 consecutive characters of its signature.
 *
 * Not searched: ioredis client objects themselves (`redis.options.password` holds the current token, as it holds the
 * password of any ioredis client: it is what ioredis reconnects with) and the library's private handover connections,
 * which nothing outside the library can reach.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { format, inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ManagedIdentityCredential } from '@azure/identity';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { createCredentialsProvider, EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import type { UsernameResolver } from '../../lib/token/entra-token.js';
import type { TokenManagerOptions } from '../../lib/manager/options.js';
import type { EntraFault } from '../../lib/testing/entra-emulator.js';
import { nextEvent, waitUntil, World } from '../../harness/world.js';

const major = process.env.IOREDIS_MAJOR ?? '5';
const THIS_FILE = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------------------------------
// Capture and search.

interface Item {
  source: string;
  text: string;
}

/** Renders a value the ways an application could print it. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const parts = [
    inspect(value, {
      depth: 8,
      showHidden: true,
      maxArrayLength: 1_000,
      maxStringLength: Infinity,
      breakLength: Infinity,
    }),
  ];
  if (value instanceof Error) parts.push(String(value.stack), String(value));
  try {
    // undefined for a value JSON cannot represent (undefined, a function, a symbol), despite its declared type: join()
    // below renders it as an empty part.
    parts.push(JSON.stringify(value));
  } catch {
    // circular: inspect covers it
  }
  parts.push(format('%s %o %j', value, value, value));
  return parts.join('\n');
}

class Capture {
  readonly items: Item[] = [];
  /** Emitters whose events are captured (the test's clients and providers). */
  readonly watched = new WeakSet<object>();

  add(source: string, value: unknown): void {
    this.items.push({ source, text: render(value) });
  }

  addArgs(source: string, args: unknown[]): void {
    this.items.push({ source, text: args.map(render).join('\n') });
  }

  sources(pattern: RegExp): Item[] {
    return this.items.filter((item) => pattern.test(item.source));
  }
}

/**
 * Where any of `tokens` shows in `items`: the whole token, or any 63 or more consecutive characters of its signature
 * (every such run contains one of the signature's 32-character chunks at a multiple of 32). The header and claims
 * are not secret without the signature: ioredis's DEBUG output shows the first 200 characters of AUTH's arguments.
 */
function findLeaks(items: readonly Item[], tokens: Iterable<string>): string[] {
  const needles: Array<{ needle: string; what: string }> = [];
  for (const token of tokens) {
    const signature = token.split('.')[2] ?? '';
    needles.push({ needle: token, what: 'the token' });
    for (let start = 0; start + 32 <= signature.length; start += 32) {
      needles.push({
        needle: signature.slice(start, start + 32),
        what: `part of its signature (${start}-${start + 32})`,
      });
    }
  }
  const leaks: string[] = [];
  for (const item of items) {
    const found = needles.find(({ needle }) => item.text.includes(needle));
    if (found) leaks.push(`${found.what} in ${item.source}: ${item.text.slice(0, 300)}`);
  }
  return leaks;
}

// ---------------------------------------------------------------------------------------------------------------------
// In-process tests.

function registerTests(): void {
  let world: World;
  const capture = new Capture();
  /** Every raw token the library received in this process. */
  const tokens = new Set<string>();
  const providers: EntraCredentialsProvider[] = [];
  const restore: Array<() => void> = [];

  /** Wraps a credential and remembers every token it hands out. */
  class RecordingCredential implements TokenCredential {
    constructor(readonly inner: TokenCredential) {}
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      const token = await this.inner.getToken(scopes, options);
      if (token) tokens.add(token.token);
      return token;
    }
  }

  const managedIdentity = () =>
    new RecordingCredential(
      new ManagedIdentityCredential({ clientId: world.identity.clientId, retryOptions: { maxRetries: 0 } }),
    );

  function provider(
    options: {
      username?: UsernameResolver;
      credential?: TokenCredential;
      tokenManagerOptions?: TokenManagerOptions;
    } = {},
  ) {
    const made = createCredentialsProvider({
      credential: options.credential ?? managedIdentity(),
      tokenManagerOptions: {
        tokenRequestTimeout: 1_000,
        ...options.tokenManagerOptions,
        retryOptions: { initialDelay: 50, maxDelay: 200, ...options.tokenManagerOptions?.retryOptions },
      },
      ...(options.username ? { username: options.username } : {}),
    });
    capture.watched.add(made);
    providers.push(made);
    return made;
  }

  /** A client of the test: its events are captured; `errors` collects its 'error' events. */
  function client(
    options: RedisOptions & { credentialsProvider: EntraCredentialsProvider },
    errors?: unknown[],
  ): Redis {
    const made = world.track(createEntraRedis({ ...world.endpoint, ...options }));
    capture.watched.add(made);
    if (errors) made.on('error', (error: unknown) => errors.push(error));
    return made;
  }

  /** Awaits a promise and captures what it resolved or rejected with. */
  async function settle(label: string, promise: Promise<unknown>): Promise<unknown> {
    try {
      const value = await promise;
      capture.add(`${label}: resolved`, value);
      return value;
    } catch (error) {
      capture.add(`${label}: rejected`, error);
      return error;
    }
  }

  /** Asserts that nothing captured since `from` (an index into capture.items) holds a token. */
  function assertNoLeak(from = 0): void {
    assert.ok(tokens.size > 0, 'tokens were recorded');
    assert.deepEqual(findLeaks(capture.items.slice(from), tokens), []);
  }

  /** Subscribes to ioredis's own tracing channels (what an APM agent does) until the returned function is called. */
  function subscribeIoredisChannels(): () => void {
    const undo: Array<() => void> = [];
    for (const name of ['ioredis:command', 'ioredis:connect', 'ioredis:batch']) {
      const tracing = diagnosticsChannel.tracingChannel(name);
      const handlers = Object.fromEntries(
        ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((event) => [
          event,
          (message: unknown) => capture.add(`diagnostics channel ${name}:${event}`, message),
        ]),
      );
      tracing.subscribe(handlers as never);
      undo.push(() => tracing.unsubscribe(handlers as never));
    }
    return () => {
      for (const fn of undo) fn();
    };
  }

  const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

  before(async () => {
    world = await World.start({ tokenLifetimeSeconds: 3 });
    // Events: what listeners of the test's clients and providers receive (the library's hooks run before these).
    for (const Class of [Redis, Cluster] as const) {
      const prototype = Class.prototype as unknown as { emit: (event: string | symbol, ...args: unknown[]) => boolean };
      const emit = prototype.emit;
      prototype.emit = function capturedEmit(this: object, event: string | symbol, ...args: unknown[]) {
        if (capture.watched.has(this) && args.length > 0) capture.addArgs(`client event '${String(event)}'`, args);
        return emit.call(this, event, ...args);
      };
      restore.push(() => {
        prototype.emit = emit;
      });
      // The client objects hold the current password in `options`, as every ioredis client does: not searched.
      const custom = inspect.custom as unknown as string;
      const previous = (Class.prototype as unknown as Record<string, unknown>)[custom];
      (Class.prototype as unknown as Record<string, unknown>)[custom] = () => `[${Class.name} client]`;
      restore.push(() => {
        (Class.prototype as unknown as Record<string, unknown>)[custom] = previous;
      });
    }
    const providerPrototype = EntraCredentialsProvider.prototype as unknown as {
      emit: (event: string | symbol, ...args: unknown[]) => boolean;
    };
    providerPrototype.emit = function capturedEmit(this: object, event: string | symbol, ...args: unknown[]) {
      if (capture.watched.has(this)) capture.addArgs(`provider event '${String(event)}'`, args);
      return EventEmitter.prototype.emit.call(this, event, ...args);
    };
    restore.push(() => {
      delete (providerPrototype as { emit?: unknown }).emit;
    });
    // Console and standard streams (passed through).
    for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir'] as const) {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- captured to be called with console and restored
      const original = console[method] as (...args: unknown[]) => void;
      console[method] = (...args: unknown[]) => {
        capture.add(`console.${method}`, format(...args));
        original.apply(console, args);
      };
      restore.push(() => {
        console[method] = original as never;
      });
    }
    for (const [name, stream] of [
      ['stdout', process.stdout],
      ['stderr', process.stderr],
    ] as const) {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- captured to be called with the stream and restored
      const write = stream.write;
      stream.write = function capturedWrite(this: typeof stream, chunk: unknown, ...rest: unknown[]) {
        capture.add(`process.${name}`, Buffer.isBuffer(chunk) ? chunk.toString() : String(chunk));
        return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      };
      restore.push(() => {
        stream.write = write;
      });
    }
    // The library's diagnostics channels (ioredis's own are subscribed to in their own test).
    for (const name of ['ioredis-entraid:token', 'ioredis-entraid:reauth']) {
      const tracing = diagnosticsChannel.tracingChannel(name);
      const handlers = Object.fromEntries(
        ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((event) => [
          event,
          (message: unknown) => capture.add(`diagnostics channel ${name}:${event}`, message),
        ]),
      );
      tracing.subscribe(handlers as never);
      restore.push(() => tracing.unsubscribe(handlers as never));
    }
    const onReconnect = (message: unknown) =>
      capture.add('diagnostics channel ioredis-entraid:reauth:reconnect', message);
    diagnosticsChannel.subscribe('ioredis-entraid:reauth:reconnect', onReconnect);
    restore.push(() => diagnosticsChannel.unsubscribe('ioredis-entraid:reauth:reconnect', onReconnect));
  });

  after(async () => {
    for (const undo of restore.reverse()) undo();
    for (const made of providers) made.dispose();
    await world.stop();
  });

  describe(`no token in anything the library emits, throws or logs (ioredis ${major})`, () => {
    it('the search finds a planted token (self-test of the harness)', async () => {
      const made = provider();
      const token = await made.getToken();
      assert.ok(tokens.has(token.password), 'the recording credential saw the token');
      const planted = [
        { source: 'planted', text: `prefix ${token.password} suffix` },
        { source: 'planted signature', text: String(token.password.split('.')[2]).slice(10, 80) },
      ];
      assert.equal(findLeaks(planted, tokens).length, 2);
    });

    it('EntraToken and the provider print without the token (inspect, JSON, String, console)', async () => {
      const from = capture.items.length;
      const made = provider();
      const token = await made.getToken();
      capture.add('inspect(EntraToken)', inspect(token));
      capture.add(
        'inspect(EntraToken, no custom inspect)',
        inspect(token, { customInspect: false, showHidden: true, depth: Infinity }),
      );
      capture.add('JSON.stringify(EntraToken)', JSON.stringify(token));
      // Stringifying the token the default way is the point: it must not show the token.
      // eslint-disable-next-line @typescript-eslint/no-base-to-string, @typescript-eslint/restrict-template-expressions
      capture.add('String(EntraToken)', `${String(token)} ${token}`);
      capture.add('Object.entries(EntraToken)', Object.entries(token));
      capture.add('structuredClone(EntraToken)', structuredClone(token));
      capture.add('inspect(provider)', inspect(made, { showHidden: true, depth: 6 }));
      capture.add('inspect(currentToken)', made.currentToken());
      console.log('token: %o %O %j %s', token, token, token, token);
      console.dir(token, { showHidden: true, depth: null });
      console.error(made);
      assert.ok(capture.sources(/^console\./).length >= 3, 'console output was captured');
      assertNoLeak(from);
    });

    it("WRONGPASS at connect (username override): error events, rejected commands, ioredis's own print", async () => {
      const from = capture.items.length;
      const made = provider({ username: () => 'not-the-oid' });
      const errors: unknown[] = [];
      const redis = client({ credentialsProvider: made, maxRetriesPerRequest: 1 }, errors);
      await settle('ping through WRONGPASS', redis.ping());
      await waitUntil(() => errors.some((e) => /WRONGPASS/.test(messageOf(e))), {
        description: 'a WRONGPASS error event',
      });
      redis.disconnect();
      // Nobody listens for 'error': ioredis prints the error itself.
      const silent = world.track(
        createEntraRedis({ ...world.endpoint, credentialsProvider: made, maxRetriesPerRequest: 1 }),
      );
      capture.watched.add(silent);
      await settle('get through WRONGPASS, no error listener', silent.get('secrets:key'));
      await waitUntil(() => capture.items.some((item) => item.text.includes('[ioredis] Unhandled error event')), {
        description: "ioredis's print",
      });
      silent.disconnect();
      assertNoLeak(from);
    });

    it("an APM subscribed to ioredis:command, and the application's reconnectOnError, see no token; no command rejected by a failed AUTH carries one", async () => {
      const from = capture.items.length;
      const unsubscribe = subscribeIoredisChannels();
      try {
        const made = provider({ username: () => 'not-the-oid' });
        const errors: unknown[] = [];
        const reconnectOnError = (error: Error) => {
          capture.add('reconnectOnError argument', error);
          return false;
        };
        const redis = client({ credentialsProvider: made, maxRetriesPerRequest: 1, reconnectOnError }, errors);
        await settle('traced: ping through WRONGPASS', redis.ping());
        // ioredis 6 does not consult reconnectOnError for handshake commands; ioredis 5 does (the re-AUTH test below
        // covers both).
        if (major === '5')
          await waitUntil(() => capture.items.some((item) => item.source === 'reconnectOnError argument'), {
            description: 'reconnectOnError called',
          });
        await waitUntil(() => errors.some((e) => /WRONGPASS/.test(messageOf(e))), {
          description: 'a WRONGPASS error event',
        });
        redis.disconnect();
        const silent = world.track(
          createEntraRedis({ ...world.endpoint, credentialsProvider: made, maxRetriesPerRequest: 1 }),
        );
        capture.watched.add(silent);
        await settle('traced: get through WRONGPASS, no error listener', silent.get('secrets:key'));
        silent.disconnect();
      } finally {
        unsubscribe();
      }
      assertNoLeak(from);
    });

    it("WRONGPASS at re-AUTH, on the reconnect that follows, and in a RESP2 subscriber's handover", async () => {
      const from = capture.items.length;
      let wrong = false;
      const made = provider({ username: ({ claims }) => (wrong ? 'not-the-oid' : String(claims.oid)) });
      const errors: unknown[] = [];
      const reconnectOnError = (error: Error) => {
        capture.add('reconnectOnError argument (re-AUTH)', error);
        return false;
      };
      const redis = client({ credentialsProvider: made, reconnectOnError }, errors);
      const subscriber = client({ credentialsProvider: made, ...(major === '6' ? { protocol: 2 } : {}) }, errors);
      await redis.set('secrets:key', 'value');
      await subscriber.subscribe('secrets:channel');
      const failures: unknown[] = [];
      made.on('reauthenticationFailed', (event) => failures.push(event.error));
      wrong = true;
      await waitUntil(() => failures.some((e) => /WRONGPASS/.test(messageOf(e))), {
        timeoutMs: 15_000,
        description: 'a re-AUTH answered WRONGPASS',
      });
      await waitUntil(() => failures.some((e) => /handover|WRONGPASS/.test(messageOf(e))) && failures.length >= 2, {
        timeoutMs: 15_000,
        description: 'the subscriber handover failing too',
      });
      await waitUntil(() => errors.some((e) => /WRONGPASS/.test(messageOf(e))), {
        timeoutMs: 15_000,
        description: 'WRONGPASS on reconnect',
      });
      // The library's re-AUTH of a live connection never reaches reconnectOnError; ioredis 5 passes it the failed
      // handshake AUTH of the reconnect (ioredis 6 does not).
      if (major === '5')
        await waitUntil(() => capture.items.some((item) => item.source === 'reconnectOnError argument (re-AUTH)'), {
          description: 'reconnectOnError called for the handshake',
        });
      await settle('get while every AUTH fails', redis.get('secrets:key'));
      capture.add('provider.lastError', made.lastError);
      wrong = false;
      await waitUntil(async () => (await redis.get('secrets:key').catch(() => null)) === 'value', {
        timeoutMs: 20_000,
        description: 'recovery',
      });
      redis.disconnect();
      subscriber.disconnect();
      assertNoLeak(from);
    });

    it('token-service failures of every kind, for a provider with no token and for one refreshing', async () => {
      const from = capture.items.length;
      const warm = provider({ tokenManagerOptions: { retryOptions: { maxAttempts: 2 } } });
      const warmErrors: unknown[] = [];
      const warmClient = client({ credentialsProvider: warm }, warmErrors);
      await warmClient.ping();
      const faults: EntraFault[] = [
        { kind: 'status', status: 500 },
        { kind: 'status', status: 503 },
        { kind: 'status', status: 429, retryAfterSeconds: 1 },
        { kind: 'status', status: 400 },
        { kind: 'status', status: 401 },
        { kind: 'hang' },
        { kind: 'reset' },
        { kind: 'down' },
      ];
      for (const fault of faults) {
        const label = `${fault.kind}${'status' in fault ? ` ${fault.status}` : ''}`;
        const refreshFailed = nextEvent(warm, 'refreshFailed', () => true, 20_000);
        await world.entra.setFault(fault);
        const cold = provider({
          tokenManagerOptions: {
            tokenRequestTimeout: 300,
            retryOptions: { maxAttempts: 2, initialDelay: 20, maxDelay: 50 },
          },
        });
        await settle(`getToken, token service ${label}`, cold.getToken({ timeout: 2_000 }));
        const errors: unknown[] = [];
        const redis = client({ credentialsProvider: cold, maxRetriesPerRequest: 1 }, errors);
        await settle(`ping, token service ${label}`, redis.ping());
        capture.add(`lastError, token service ${label}`, cold.lastError);
        await settle(`refreshFailed of a refreshing provider, token service ${label}`, refreshFailed);
        // ioredis emits the connect failure as an 'error' event on its own schedule, possibly after ping() settled
        await waitUntil(() => errors.length > 0, { description: `the client reporting the ${label} failure` });
        redis.disconnect();
        cold.dispose();
        world.entra.destroyHungRequests();
        await world.entra.clearFault();
        assert.ok(errors.length > 0, `the client reported the ${label} failure`);
      }
      await waitUntil(async () => (await warmClient.ping().catch(() => null)) === 'PONG', {
        timeoutMs: 20_000,
        description: 'recovery',
      });
      warmClient.disconnect();
      assertNoLeak(from);
    });

    it('timeouts: token request, getToken, command, handshake that never answers', async () => {
      const from = capture.items.length;
      const made = provider();
      const errors: unknown[] = [];
      const redis = client({ credentialsProvider: made, commandTimeout: 100 }, errors);
      await redis.ping();
      await settle('BLPOP past commandTimeout', redis.blpop('secrets:never', 2));
      // A server that accepts and never answers: the handshake AUTH (with the token) times out.
      const sockets = new Set<net.Socket>();
      const silentServer = net.createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', () => resolve()));
      const port = (silentServer.address() as net.AddressInfo).port;
      try {
        const stuck = world.track(
          createEntraRedis({
            host: '127.0.0.1',
            port,
            credentialsProvider: made,
            commandTimeout: 100,
            connectTimeout: 300,
            maxRetriesPerRequest: 1,
            retryStrategy: (times) => (times > 2 ? null : 50),
          }),
        );
        capture.watched.add(stuck);
        stuck.on('error', (error: unknown) => errors.push(error));
        await settle('ping to a server that never answers', stuck.ping());
        stuck.disconnect();
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => silentServer.close(() => resolve()));
      }
      // The token service hangs: each request times out (TokenRequestTimeoutError), getToken gives up.
      await world.entra.setFault({ kind: 'hang' });
      try {
        const cold = provider({
          tokenManagerOptions: {
            tokenRequestTimeout: 200,
            retryOptions: { maxAttempts: 2, initialDelay: 10, maxDelay: 20 },
          },
        });
        await settle('getToken while the token service hangs', cold.getToken({ timeout: 1_000 }));
        capture.add('lastError while the token service hangs', cold.lastError);
      } finally {
        world.entra.destroyHungRequests();
        await world.entra.clearFault();
      }
      redis.disconnect();
      assert.ok(
        capture.items.slice(from).some((item) => /timed out/i.test(item.text)),
        'timeouts were captured',
      );
      assertNoLeak(from);
    });

    it('redis-server down: failed commands and connection errors', async () => {
      const from = capture.items.length;
      const made = provider();
      const errors: unknown[] = [];
      const redis = client({ credentialsProvider: made, maxRetriesPerRequest: 1 }, errors);
      await redis.set('secrets:key', 'value');
      let closes = 0;
      const outcomes: Promise<unknown>[] = [];
      await world.redis.kill();
      try {
        redis.on('close', () => {
          closes++;
        });
        outcomes.push(settle('set while redis-server is down', redis.set('secrets:key', 'value')));
        const late = client({ credentialsProvider: made, maxRetriesPerRequest: 1 }, errors);
        late.on('close', () => {
          closes++;
        });
        outcomes.push(
          settle('get from a client created while redis-server is down', late.get('secrets:key')).finally(() =>
            late.disconnect(),
          ),
        );
        // The AMR emulator accepts the connections and closes them: ioredis 5 fails the commands after one retry,
        // ioredis 6 keeps them queued (a connect to the proxy resets its retry count) until the server is back.
        await waitUntil(() => closes >= 4, { description: 'both clients to lose their connections again and again' });
      } finally {
        await world.redis.start();
      }
      await Promise.all(outcomes);
      await waitUntil(async () => (await redis.ping().catch(() => null)) === 'PONG', {
        timeoutMs: 20_000,
        description: 'recovery',
      });
      redis.disconnect();
      assert.ok(
        capture.items.slice(from).some((item) => /: (rejected|resolved)$/.test(item.source)),
        'the commands settled',
      );
      assertNoLeak(from);
    });

    type QuoteMode = 'message' | 'cause' | 'string' | 'aggregate' | 'property';

    /** A provider over a credential that mints good tokens, then throws errors quoting the last one, `modes` in turn. */
    async function quotingCredentialScenario(modes: readonly QuoteMode[]): Promise<void> {
      let mode: QuoteMode | 'token' = 'token';
      let last = '';
      const quoting: TokenCredential = {
        async getToken(): Promise<AccessToken> {
          if (mode === 'token' || !last) {
            last = world.entra.mint({ oid: world.identity.oid });
            tokens.add(last);
            return { token: last, expiresOnTimestamp: Date.now() + world.entra.tokenLifetimeSeconds * 1_000 };
          }
          switch (mode) {
            case 'message':
              throw new Error(`refresh failed, the cached token was ${last}`);
            case 'cause':
              throw new Error('refresh failed', { cause: new Error(`cached: ${last}`) });
            // A credential may reject with a bare string; the library must cope with that too.
            case 'string':
              // eslint-disable-next-line @typescript-eslint/only-throw-error -- a credential may reject with a bare string
              throw `refresh failed for ${last}`;
            case 'aggregate':
              throw new AggregateError([new Error(`first credential: ${last}`)], 'all credentials failed');
            case 'property':
              throw Object.assign(new Error('refresh failed'), {
                response: { bodyAsText: `{"access_token":"${last}"}` },
              });
          }
        },
      };
      const made = provider({ credential: quoting, tokenManagerOptions: { retryOptions: { maxAttempts: 1 } } });
      const errors: unknown[] = [];
      const redis = client({ credentialsProvider: made, maxRetriesPerRequest: 1 }, errors);
      await redis.ping();
      for (const next of modes) {
        mode = next;
        const failed = await nextEvent(made, 'refreshFailed', () => true, 15_000);
        capture.add(`refreshFailed payload, credential error by ${next}`, failed);
        await waitUntil(() => made.currentToken() === undefined, {
          timeoutMs: 15_000,
          description: 'the last token to expire',
        });
        await settle(`getToken, credential error by ${next}`, made.getToken({ timeout: 500 }));
        await settle(`ping, credential error by ${next}`, redis.ping());
        capture.add(`lastError, credential error by ${next}`, made.lastError);
        mode = 'token';
        await waitUntil(async () => (await redis.ping().catch(() => null)) === 'PONG', {
          timeoutMs: 20_000,
          description: 'recovery',
        });
      }
      redis.disconnect();
    }

    it('a credential whose errors quote the token: in the message, in a cause', async () => {
      const from = capture.items.length;
      await quotingCredentialScenario(['message', 'cause']);
      assertNoLeak(from);
    });

    it('a credential that throws a string quoting the token', async () => {
      const from = capture.items.length;
      await quotingCredentialScenario(['string']);
      assertNoLeak(from);
    });

    it('a credential whose errors quote the token: inside an AggregateError, in a nested property of the error', async () => {
      const from = capture.items.length;
      await quotingCredentialScenario(['aggregate', 'property']);
      assertNoLeak(from);
    });

    it(
      'DEBUG=ioredis:* output of a child process that rotates, fails re-AUTH and fails a connect',
      { timeout: 120_000 },
      async () => {
        const childTokens = new Set<string>();
        const child = fork(THIS_FILE, [], {
          execArgv: [
            '--import',
            'tsx',
            ...(major === '6'
              ? ['--import', fileURLToPath(new URL('../support/use-ioredis6.mjs', import.meta.url))]
              : []),
          ],
          env: {
            ...process.env,
            DEBUG: 'ioredis:*',
            SECRETS_CHILD: '1',
            SECRETS_AMR_PORT: String(world.amr.port),
            SECRETS_CLIENT_ID: world.identity.clientId,
          },
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        });
        let output = '';
        child.stdout?.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.stderr?.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.on('message', (message: { token?: string }) => {
          if (message.token) childTokens.add(message.token);
        });
        const code = await new Promise<number | null>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
          child.on('exit', (exitCode) => {
            clearTimeout(timer);
            resolve(exitCode);
          });
        });
        assert.equal(code, 0, `child exited with ${code}:\n${output.slice(-3_000)}`);
        assert.ok(childTokens.size >= 3, `the child received ${childTokens.size} tokens`);
        assert.match(output, /ioredis:redis/, 'DEBUG output was produced');
        assert.match(
          output,
          /-> (auth|hello)\(/,
          'ioredis printed the AUTH/HELLO commands (arguments cut at 200 characters)',
        );
        assert.match(output, /CHILD reauthenticationFailed/, 'the child saw the re-AUTH fail');
        assert.match(output, /Unhandled error event/, 'ioredis printed the connect failure itself');
        assert.deepEqual(
          findLeaks([{ source: 'child stdout+stderr with DEBUG=ioredis:*', text: output }], childTokens),
          [],
        );
      },
    );

    it('nothing captured over the whole file holds a token', () => {
      assert.ok(capture.items.length > 100, `${capture.items.length} items captured`);
      assert.ok(
        capture.sources(/^client event 'error'/).length > 0 &&
          capture.sources(/^provider event 'refreshFailed'/).length > 0,
        'client error events and provider refreshFailed events were captured',
      );
      assert.deepEqual(findLeaks(capture.items, tokens), []);
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// The child process of the DEBUG test: tokens go to the parent over IPC, everything else to stdout/stderr.

async function runChild(): Promise<void> {
  const watchdog = setTimeout(() => {
    process.stderr.write('CHILD timed out\n');
    process.exit(2);
  }, 90_000);
  const send = (message: object) =>
    new Promise<void>((resolve) => {
      process.send?.(message, () => resolve());
    });
  const inner = new ManagedIdentityCredential({
    clientId: process.env.SECRETS_CLIENT_ID as string,
    retryOptions: { maxRetries: 0 },
  });
  const credential: TokenCredential = {
    async getToken(scopes, options) {
      const token = await inner.getToken(scopes, options);
      await send({ token: token.token });
      return token;
    },
  };
  let wrong = false;
  const make = (username: UsernameResolver) =>
    createCredentialsProvider({
      credential,
      username,
      tokenManagerOptions: { tokenRequestTimeout: 2_000, retryOptions: { initialDelay: 50, maxDelay: 200 } },
    });
  const provider = make(({ claims }) => (wrong ? 'not-the-oid' : String(claims.oid)));
  const endpoint = { host: '127.0.0.1', port: Number(process.env.SECRETS_AMR_PORT) };
  for (const event of ['tokenRefreshed', 'refreshFailed', 'reauthenticated', 'reauthenticationFailed'] as const) {
    provider.on(event, (payload: unknown) => console.log(`CHILD ${event}`, payload));
  }
  const redis = createEntraRedis({ ...endpoint, credentialsProvider: provider });
  redis.on('error', (error: unknown) => console.error('CHILD client error', error));
  await redis.set('secrets:child', 'value');
  console.log('CHILD get', await redis.get('secrets:child'), provider.currentToken());
  await nextEvent(provider, 'reauthenticated', () => true, 20_000);
  await nextEvent(provider, 'reauthenticated', () => true, 20_000);
  wrong = true;
  await nextEvent(provider, 'reauthenticationFailed', () => true, 20_000);
  // A connect that fails with WRONGPASS, nobody listening for 'error': ioredis prints it.
  const failing = createEntraRedis({
    ...endpoint,
    credentialsProvider: make(() => 'not-the-oid'),
    maxRetriesPerRequest: 1,
  });
  console.log('CHILD rejected', await failing.ping().catch((error: unknown) => error));
  failing.disconnect();
  redis.disconnect();
  provider.dispose();
  clearTimeout(watchdog);
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
  process.exit(0);
}

// Dispatched last: the classes above must be initialised first.
if (process.env.SECRETS_CHILD === '1') await runChild();
else registerTests();
