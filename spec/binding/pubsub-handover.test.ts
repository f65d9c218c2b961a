// ioredis majors: 5, 6
/**
 * The RESP2 subscriber handover: subscriptions changed while it runs, its connections failing in each phase, and what
 * it leaves behind. ioredis 5, and ioredis 6 with `protocol: 2`.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Redis, RedisOptions } from 'ioredis';
import { subscriptions } from '../../lib/binding/ioredis-internals.js';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { HANDOVER_CHANNEL, type HandoverPhaseMessage } from '../../lib/tracing.js';
import { nextEvent, waitUntil, World } from '../../harness/world.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

/**
 * Each test's clients are closed when it ends, and the server must then hold no marker channel: a test that leaves
 * something behind fails on its own, and the next test starts from a clean server.
 */
const testClients: Array<{ disconnect(): void }> = [];
function perTest<T extends { disconnect(): void }>(client: T): T {
  testClients.push(world.track(client));
  return client;
}
afterEach(async () => {
  for (const client of testClients.splice(0)) client.disconnect();
  const admin = world.admin();
  try {
    await waitUntil(
      async () => ((await admin.call('PUBSUB', 'CHANNELS', `${MARKER_PREFIX}*`)) as string[]).length === 0,
      { timeoutMs: 5_000, description: "no marker channel on the server once the test's clients are closed" },
    );
  } finally {
    admin.disconnect();
  }
});

const major = process.env.IOREDIS_MAJOR ?? '5';
const MARKER_PREFIX = '__ioredis-entraid:';
type Phase = HandoverPhaseMessage['phase'];

/** Every handover phase message, from now on, for connections named `name`. */
function watchPhases(name: string, onPhase: (message: HandoverPhaseMessage) => void = () => {}) {
  const seen: HandoverPhaseMessage[] = [];
  const listener = (message: unknown) => {
    const phase = message as HandoverPhaseMessage;
    if (phase.connection !== name) return;
    seen.push(phase);
    onPhase(phase);
  };
  diagnosticsChannel.subscribe(HANDOVER_CHANNEL, listener);
  return { seen, stop: () => diagnosticsChannel.unsubscribe(HANDOVER_CHANNEL, listener) };
}

interface Received {
  [channel: string]: number[];
}

/** A RESP2 subscriber through the AMR emulator, whose application listeners record every message. */
function subscriber(provider: EntraCredentialsProvider, name: string) {
  const options = {
    ...world.endpoint,
    credentialsProvider: provider,
    connectionName: name,
    ...(major === '6' ? { protocol: 2 } : {}),
  } as RedisOptions;
  const redis = perTest(createEntraRedis(options));
  const received: Received = {};
  const markers: string[] = [];
  const record = (channel: string, message: string) => {
    if (channel.startsWith(MARKER_PREFIX)) markers.push(channel);
    else (received[channel] ??= []).push(Number(message));
  };
  redis.on('message', (channel: string, message: string) => record(channel, message));
  redis.on('pmessage', (_pattern: string, channel: string, message: string) => record(`p:${channel}`, message));
  return { redis, received, markers };
}

/** Publishes numbered messages on `channel`, one after another, until stopped; `sent` counts those answered. */
function publishing(publisher: Redis, channel: string) {
  const state = { sent: 0, stopped: false };
  const done = (async () => {
    while (!state.stopped) {
      await publisher.publish(channel, String(state.sent));
      state.sent++;
      await new Promise((resolve) => setTimeout(resolve, 4));
    }
  })();
  return {
    state,
    stop: async () => {
      state.stopped = true;
      await done;
      return state.sent;
    },
  };
}

function assertNoDuplicateInOrder(numbers: number[] | undefined, what: string): void {
  const list = numbers ?? [];
  assert.equal(new Set(list).size, list.length, `${what}: duplicates in ${list.join(',')}`);
  assert.deepEqual(
    list,
    [...list].sort((a, b) => a - b),
    `${what}: out of order`,
  );
}

/** Nothing of a handover is left: no marker channel on the server, no handover connection, the set is the app's. */
async function assertNothingLeft(
  redis: Redis,
  name: string,
  expected: Partial<ReturnType<typeof subscriptions>>,
): Promise<void> {
  const admin = world.admin();
  const want = {
    subscribe: expected.subscribe?.length ?? 0,
    psubscribe: expected.psubscribe?.length ?? 0,
    ssubscribe: expected.ssubscribe?.length ?? 0,
  };
  let last = '';
  await waitUntil(
    async () => {
      // The marker is a sharded channel wherever the server takes one, a plain one elsewhere.
      const markers = [
        ...((await admin.call('PUBSUB', 'CHANNELS', `${MARKER_PREFIX}*`)) as string[]),
        ...((await admin.call('PUBSUB', 'SHARDCHANNELS', `${MARKER_PREFIX}*`)) as string[]),
      ];
      const counts = await serverSubscriptionCounts(admin, name);
      last = `markers ${JSON.stringify(markers)}, the client's connection holds ${JSON.stringify(counts)}`;
      return markers.length === 0 && counts.length === 1 && JSON.stringify(counts[0]) === JSON.stringify(want);
    },
    { description: `no marker channel on the server, the client's connection holding only ${JSON.stringify(want)}` },
  )
    .catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}; last seen: ${last}`);
    })
    .finally(() => admin.disconnect());
  await waitUntil(
    () => !world.amr.connections().some((c) => c.name === `${name}:shadow` || c.name === `${name}:handover`),
    { description: 'no handover connection' },
  );
  await waitUntil(() => redis.status === 'ready', { description: 'the client ready' });
  const held = subscriptions(redis);
  const set = {
    subscribe: held.subscribe.sort(),
    psubscribe: held.psubscribe.sort(),
    ssubscribe: held.ssubscribe.sort(),
  };
  assert.deepEqual(
    set,
    { subscribe: [], psubscribe: [], ssubscribe: [], ...expected },
    "the subscription set is the application's",
  );
}

/** What the server counts for each connection named `name`: its channels, patterns and sharded channels. */
async function serverSubscriptionCounts(admin: Redis, name: string) {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => {
      const field = (key: string) => Number((line.match(new RegExp(` ${key}=(\\d+)`)) ?? [])[1] ?? 0);
      return { subscribe: field('sub'), psubscribe: field('psub'), ssubscribe: field('ssub') };
    });
}

/** Names of this test's connections (`name`, `name:shadow`, `name:handover`) the emulator closes at token expiry. */
function expiredConnections(name: string) {
  const names: string[] = [];
  const onExpired = (info: { name?: string }) => {
    if (info.name === name || info.name?.startsWith(`${name}:`)) names.push(info.name);
  };
  world.amr.on('expired', onExpired);
  return {
    stop: () => {
      world.amr.off('expired', onExpired);
      return names;
    },
  };
}

/**
 * The application leaves its last channel: the client leaves subscribe mode, as a plain client does. Channels are
 * named: ioredis resolves an UNSUBSCRIBE without arguments only on a reply that counts 0, which it is not while
 * patterns remain (a plain client would wait for ever; a later reply of any other pub/sub command resolves it).
 */
async function assertLeavesSubscribeMode(redis: Redis, channels: string[]): Promise<void> {
  await redis.unsubscribe(...channels);
  await redis.punsubscribe();
  assert.equal(await redis.set('after-unsubscribe', '1'), 'OK');
}

/** Resolves when a handover of `name` ended (its client is on the new token, or falling back to it). */
function handoverEnded(provider: EntraCredentialsProvider, name: string) {
  return Promise.race([
    nextEvent(provider, 'reauthenticated', (event) => event.connection === name && event.method === 'handover', 20_000),
    nextEvent(provider, 'reauthenticationFailed', (event) => event.connection === name, 20_000),
  ]);
}

describe(`RESP2 subscriber handover (ioredis ${major})`, () => {
  it('case 2: channels subscribed during a handover lose and duplicate nothing', async () => {
    const provider = world.provider();
    const name = 'case2';
    const { redis, received, markers } = subscriber(provider, name);
    const publisher = perTest(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.subscribe('base');
    // One new channel per phase, subscribed the moment the phase begins (and one on tokenRefreshed, before it).
    const firstAfter: Record<string, number> = {};
    const streams: Record<string, ReturnType<typeof publishing>> = {};
    const subscribeLate = (channel: string) => {
      const stream = publishing(publisher, channel);
      streams[channel] = stream;
      void redis.subscribe(channel).then(() => {
        firstAfter[channel] = stream.state.sent + 1;
      });
    };
    const phases: Phase[] = ['preparing', 'shadowing', 'splitting', 'reconnecting', 'joining'];
    const watch = watchPhases(name, ({ phase }) => {
      if (phases.includes(phase) && !streams[`late-${phase}`]) queueMicrotask(() => subscribeLate(`late-${phase}`));
    });
    provider.once('tokenRefreshed', () => subscribeLate('late-token'));
    const base = publishing(publisher, 'base');
    await waitUntil(() => watch.seen.some((m) => m.phase === 'done'), {
      timeoutMs: 20_000,
      description: 'a handover done',
    });
    // and the next one, with all the late channels in place
    const done = watch.seen.length;
    await waitUntil(() => watch.seen.slice(done).some((m) => m.phase === 'done'), {
      timeoutMs: 20_000,
      description: 'a second handover',
    });
    watch.stop();
    const sent: Record<string, number> = { base: await base.stop() };
    for (const [channel, stream] of Object.entries(streams)) sent[channel] = await stream.stop();
    await waitUntil(
      () => Object.entries(sent).every(([channel, count]) => (received[channel]?.at(-1) ?? -1) >= count - 1),
      { timeoutMs: 5_000, description: 'the last messages' },
    ).catch(() => {});
    for (const [channel, count] of Object.entries(sent)) {
      assertNoDuplicateInOrder(received[channel], channel);
      // Everything published after the subscribe was answered arrives (what came before is a race, as on a plain client).
      const from = channel === 'base' ? 0 : (firstAfter[channel] ?? count);
      const missing = [];
      for (let n = from; n < count; n++) if (!received[channel]?.includes(n)) missing.push(n);
      assert.deepEqual(missing, [], `${channel}: lost ${missing.length} of ${count - from}`);
    }
    assert.deepEqual(markers, [], 'no marker reached the application');
    await assertNothingLeft(redis, name, { subscribe: ['base', ...Object.keys(streams)].sort() });
    await assertLeavesSubscribeMode(redis, ['base', ...Object.keys(streams)]);
  });

  it('case 4: connections dropped right after a new token leave nothing behind', async () => {
    const provider = world.provider();
    const name = 'case4';
    const { redis, received, markers } = subscriber(provider, name);
    const publisher = perTest(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
    await redis.subscribe('events');
    for (let round = 0; round < 3; round++) {
      await nextEvent(provider, 'tokenRefreshed');
      setImmediate(() => world.amr.closeAllConnections());
      await handoverEnded(provider, name);
    }
    const stream = publishing(publisher, 'events');
    await nextEvent(
      provider,
      'reauthenticated',
      (event) => event.connection === name && event.method === 'handover',
      20_000,
    );
    await stream.stop();
    assertNoDuplicateInOrder(received.events, 'events');
    assert.deepEqual(markers, [], 'no marker reached the application');
    await assertNothingLeft(redis, name, { subscribe: ['events'] });
    await assertLeavesSubscribeMode(redis, ['events']);
  });

  // Fault injection: each connection of the handover dropped at the start of each phase.
  const matrix: Array<[Phase, 'client' | 'shadow' | 'publisher']> = [];
  for (const phase of ['preparing', 'shadowing', 'splitting', 'reconnecting', 'joining'] as const) {
    for (const role of ['shadow', 'publisher', 'client'] as const) matrix.push([phase, role]);
  }
  for (const [phase, role] of matrix) {
    it(`${phase === 'splitting' && role === 'shadow' ? 'case 3: ' : ''}the ${role} connection dropped in phase ${phase}`, async () => {
      const provider = world.provider();
      const name = `fi-${phase}-${role}`;
      const { redis, received, markers } = subscriber(provider, name);
      const publisher = perTest(createEntraRedis({ ...world.endpoint, credentialsProvider: provider }));
      await redis.subscribe('events');
      await redis.psubscribe('ev*');
      const expired = expiredConnections(name);
      const failures: string[] = [];
      provider.on('reauthenticationFailed', (event) => {
        if (event.connection === name)
          failures.push(event.error instanceof Error ? event.error.message : String(event.error));
      });
      let dropped = false;
      const dropByPort = (port: number | undefined) => {
        const target = world.amr.connections().find((c) => c.remotePort === port);
        if (target) dropped = world.amr.drop(target.id);
      };
      const dropByName = (connectionName: string, except?: number) => {
        const onChange = () => {
          const target = world.amr.connections().find((c) => c.name === connectionName && c.remotePort !== except);
          if (!target || dropped) return;
          world.amr.off('change', onChange);
          dropped = world.amr.drop(target.id);
        };
        world.amr.on('change', onChange);
        onChange();
      };
      const watch = watchPhases(name, (message) => {
        if (dropped || message.phase !== phase) return;
        if (phase === 'preparing') {
          // The connections are being made: drop one as soon as the server knows it by name.
          dropByName(role === 'client' ? name : `${name}:${role === 'shadow' ? 'shadow' : 'handover'}`);
        } else if (phase === 'reconnecting' && role === 'client') {
          dropByName(name, message.ports.client); // the client's new connection
        } else {
          dropByPort(message.ports[role]);
        }
      });
      const stream = publishing(publisher, 'events');
      await waitUntil(() => dropped, { timeoutMs: 20_000, description: `${role} dropped in ${phase}` });
      // The handover in which the drop happened ends, then the next one must succeed.
      const from = watch.seen.length;
      await waitUntil(() => watch.seen.slice(from).some((m) => m.phase === 'done'), {
        timeoutMs: 20_000,
        description: 'a later handover done',
      });
      watch.stop();
      const sent = await stream.stop();
      await waitUntil(
        () => (received.events?.at(-1) ?? -1) >= sent - 1 && (received['p:events']?.at(-1) ?? -1) >= sent - 1,
        { timeoutMs: 5_000, description: 'the last messages' },
      );
      assertNoDuplicateInOrder(received.events, 'channel');
      assertNoDuplicateInOrder(received['p:events'], 'pattern');
      assert.deepEqual(markers, [], 'no marker reached the application');
      assert.deepEqual(expired.stop(), [], 'no connection left to expire');
      // A dropped connection fails the handover at once, never through a phase's time bound.
      assert.deepEqual(
        failures.filter((message) => /timed out/.test(message)),
        [],
        'no handover ended by a timeout',
      );
      await assertNothingLeft(redis, name, { subscribe: ['events'], psubscribe: ['ev*'] });
      await assertLeavesSubscribeMode(redis, ['events']);
    });
  }
  // The handover fails (its shadow dropped) while the client's marker SUBSCRIBE is written and not yet answered, and
  // the fallback reconnects the client. ioredis would restore the marker with the application's channels when the
  // reply is read after the handover removed it from the subscription set, and resend the SUBSCRIBE on the new
  // connection when the reply is lost with the old one: either way the marker would outlive the handover. Driven by the
  // phase channel: the client's socket stops reading the moment the handover begins; once it has fallen back, the
  // socket reads again, or is destroyed with the reply unread (a connection reset).
  for (const reply of ['read after the fallback', 'lost with its connection'] as const) {
    it(`a marker SUBSCRIBE of the client ${reply} does not outlive the failed handover`, async () => {
      const provider = world.provider();
      const name = reply === 'lost with its connection' ? 'marker-lost' : 'marker-late';
      const { redis, markers } = subscriber(provider, name);
      await redis.subscribe('events');
      const failures: string[] = [];
      provider.on('reauthenticationFailed', (event) => {
        if (event.connection === name)
          failures.push(event.error instanceof Error ? event.error.message : String(event.error));
      });
      let socket: { pause(): unknown; resume(): unknown; destroy(): unknown } | undefined;
      let shadowDropped = false;
      const dropShadow = () => {
        const shadow = world.amr.connections().find((c) => c.name === `${name}:shadow`);
        if (!shadow || shadowDropped) return;
        world.amr.off('change', dropShadow);
        shadowDropped = world.amr.drop(shadow.id);
      };
      const watch = watchPhases(name, (message) => {
        if (message.phase === 'preparing' && !socket) {
          // Runs before the handover writes the client's marker SUBSCRIBE: its reply is not read from now on.
          socket = redis.stream;
          socket.pause();
          world.amr.on('change', dropShadow);
          dropShadow();
        } else if (message.phase === 'fallback' && socket) {
          const old = socket;
          setImmediate(() => (reply === 'lost with its connection' ? old.destroy() : old.resume()));
        }
      });
      await waitUntil(() => watch.seen.some((m) => m.phase === 'fallback'), {
        timeoutMs: 20_000,
        description: 'the handover fallen back',
      });
      // It failed on its shadow, with the client still up (not on the client's own drop, which it handles at once).
      await waitUntil(() => failures.length > 0, { description: 'the handover failure reported' });
      assert.match(failures[0] ?? '', /phase preparing: the shadow connection closed/);
      // The client reconnects; once it answers a PING, ioredis has restored and resent all it was going to.
      await waitUntil(() => redis.status === 'ready' && redis.stream !== socket, {
        description: 'the client reconnected',
      });
      await redis.ping();
      watch.stop();
      assert.deepEqual(markers, [], 'no marker reached the application');
      await assertNothingLeft(redis, name, { subscribe: ['events'] });
      await assertLeavesSubscribeMode(redis, ['events']);
    });
  }
  it('a process stall past the bound on the marker leaving the client does not reconnect the client after its handover', async () => {
    // Straight to redis-server, which answers while this process stalls (the AMR emulator, in this process, would
    // stall with it): an identity of its own whose ACL user takes any password.
    const identity = world.entra.addManagedIdentity({ kind: 'user' });
    const admin = world.admin();
    await admin.call('ACL', 'SETUSER', identity.oid, 'on', 'nopass', '~*', '&*', '+@all');
    admin.disconnect();
    const provider = world.provider({ identity });
    const name = 'stalled-after-done';
    const redis = perTest(
      createEntraRedis({
        host: world.redis.host,
        port: world.redis.port,
        credentialsProvider: provider,
        connectionName: name,
        ...(major === '6' ? { protocol: 2 } : {}),
      } as RedisOptions),
    );
    const markers: string[] = [];
    redis.on('message', (channel: string) => {
      if (channel.startsWith(MARKER_PREFIX)) markers.push(channel);
    });
    await redis.subscribe('events');
    let stalled = false;
    let nextHandover = false;
    let closes = 0; // the client's connection closed after its handover was done, before any next one
    const watch = watchPhases(name, ({ phase }) => {
      if (stalled) {
        nextHandover ||= phase === 'preparing';
        return;
      }
      if (phase !== 'done') return;
      stalled = true;
      redis.on('close', () => {
        if (!nextHandover) closes++;
      });
      // The streams are joined; the marker's UNSUBSCRIBE is written and its bound armed (at most half the fresh
      // token's life) once this returns. The process then stalls past that bound while the server answers: when it
      // resumes, the bound's timer runs before the reply can be read.
      const token = provider.currentToken();
      const bound = token ? (token.expiresOn - token.receivedAt) / 2 : 15_000;
      queueMicrotask(() => {
        const until = Date.now() + bound + 100;
        while (Date.now() < until) {
          /* stall */
        }
      });
    });
    try {
      await nextEvent(provider, 'reauthenticated', (e) => e.connection === name && e.method === 'handover', 20_000);
      assert.ok(stalled, 'the process stalled after the handover was done');
      // Once the client answers a PING, a reconnect the handover started would have closed its connection.
      await redis.ping();
      assert.equal(closes, 0, 'the client was reconnected after its handover was done');
    } finally {
      watch.stop();
    }
    assert.deepEqual(markers, [], 'no marker reached the application');
  });
});
