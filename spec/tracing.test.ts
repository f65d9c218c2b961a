// ioredis majors: 5 (what this file tests does not depend on the ioredis major; the client files run on both)
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, it } from 'node:test';
import { ReplyError } from 'ioredis';
import { EntraToken } from '../lib/token/entra-token.js';
import {
  REAUTH_CHANNEL,
  REAUTH_RECONNECT_CHANNEL,
  TOKEN_REQUEST_CHANNEL,
  publishReauthReconnect,
  traceReauthentication,
  traceTokenRequest,
  type ReauthReconnectMessage,
  type ReauthTraceContext,
  type TokenRequestTraceContext,
} from '../lib/tracing.js';
import { must } from './support/must.js';

/** An unsigned JWT (the library never verifies): enough for EntraToken. */
function jwt(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk`;
}

const OID = '11111111-2222-3333-4444-555555555555';
const RAW = jwt({ oid: OID, aud: 'https://redis.azure.com', exp: Math.floor(Date.now() / 1000) + 3600 });
const RAW_PAYLOAD = must(RAW.split('.')[1], 'the payload of the raw token');
const token = EntraToken.fromAccessToken({ token: RAW, expiresOnTimestamp: Date.now() + 3_600_000 });

type Phase = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';
const PHASES: Phase[] = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'];

/** Subscribes to every phase of a tracing channel; records [phase, snapshot of the context]. */
function record<C extends object>(name: string): { events: [Phase, C][]; contexts: C[]; stop(): void } {
  const channel = diagnosticsChannel.tracingChannel<unknown, C>(name);
  const events: [Phase, C][] = [];
  const contexts: C[] = [];
  const handlers = Object.fromEntries(
    PHASES.map((phase) => [
      phase,
      (context: C) => {
        events.push([phase, { ...context }]);
        if (!contexts.includes(context)) contexts.push(context);
      },
    ]),
  ) as unknown as diagnosticsChannel.TracingChannelSubscribers<C>;
  channel.subscribe(handlers);
  return { events, contexts, stop: () => channel.unsubscribe(handlers) };
}

/** True when `value` (walked deeply, errors included) holds the raw token anywhere. */
function holdsToken(value: unknown, seen = new Set<unknown>()): boolean {
  if (typeof value === 'string') return value.includes(RAW) || value.includes(RAW_PAYLOAD);
  if (typeof value !== 'object' || value === null || seen.has(value)) return false;
  seen.add(value);
  if (value instanceof EntraToken) return true;
  const keys = new Set([...Object.getOwnPropertyNames(value), ...Object.keys(value)]);
  if (value instanceof Error) for (const key of ['message', 'stack', 'cause']) keys.add(key);
  for (const key of keys) {
    let inner: unknown;
    try {
      inner = (value as Record<string, unknown>)[key];
    } catch {
      continue;
    }
    if (holdsToken(inner, seen)) return true;
  }
  return false;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function recording<C extends object>(name: string) {
  const recorder = record<C>(name);
  cleanups.push(() => recorder.stop());
  return recorder;
}

describe('channel names', () => {
  it("are namespaced like ioredis's own channels", () => {
    assert.equal(TOKEN_REQUEST_CHANNEL, 'ioredis-entraid:token');
    assert.equal(REAUTH_CHANNEL, 'ioredis-entraid:reauth');
    assert.equal(REAUTH_RECONNECT_CHANNEL, 'ioredis-entraid:reauth:reconnect');
  });
});

describe('traceTokenRequest', () => {
  it('is the request itself when nobody subscribes: same promise, no context built', async () => {
    const pending = Promise.resolve(token);
    let built = 0;
    const result = traceTokenRequest(
      () => pending,
      () => {
        built++;
        return { attempt: 1, maxAttempts: 3, timeoutMs: 15_000 };
      },
    );
    assert.equal(result, pending);
    assert.equal(await result, token);
    assert.equal(built, 0);
  });

  it('publishes start, end, asyncStart and asyncEnd around a successful request, with the token described', async () => {
    const recorder = recording<TokenRequestTraceContext>(TOKEN_REQUEST_CHANNEL);
    const result = await traceTokenRequest(
      async () => token,
      () => ({ attempt: 2, maxAttempts: 3, timeoutMs: 1_000 }),
    );
    assert.equal(result, token, 'the caller still gets the token');
    assert.deepEqual(
      recorder.events.map(([phase]) => phase),
      ['start', 'end', 'asyncStart', 'asyncEnd'],
    );
    assert.equal(recorder.contexts.length, 1, 'one context object travels through all phases');
    const context = must(recorder.contexts[0], 'the traced context');
    assert.deepEqual(
      { ...context, result: undefined },
      { attempt: 2, maxAttempts: 3, timeoutMs: 1_000, result: undefined },
    );
    assert.deepEqual(context.result, {
      username: OID,
      oid: OID,
      expiresOn: token.expiresOn,
      receivedAt: token.receivedAt,
    });
    assert.ok(!(context.result instanceof EntraToken));
    assert.equal(holdsToken(recorder.events), false, 'no payload holds the token');
  });

  it('publishes error with a redacted error when the request fails, and rejects with it', async () => {
    const recorder = recording<TokenRequestTraceContext>(TOKEN_REQUEST_CHANNEL);
    const failure = new Error(`credential said no; it had ${RAW}`, { cause: new Error(`inner ${RAW}`) });
    await assert.rejects(
      traceTokenRequest(
        async () => {
          throw failure;
        },
        () => ({ attempt: 1, maxAttempts: 1, timeoutMs: 5 }),
      ),
      (error: unknown) => error === failure,
    );
    assert.deepEqual(
      recorder.events.map(([phase]) => phase),
      ['start', 'end', 'error', 'asyncStart', 'asyncEnd'],
    );
    const context = must(recorder.contexts[0], 'the traced context');
    assert.equal(context.error, failure);
    assert.equal(context.result, undefined);
    assert.match(failure.message, /<redacted>/);
    assert.equal(holdsToken(recorder.events), false);
  });

  it('runs the request inside start and end, so async context stores bind to it', async () => {
    const order: string[] = [];
    const channel = diagnosticsChannel.tracingChannel(TOKEN_REQUEST_CHANNEL);
    const handlers = { start: () => order.push('start'), end: () => order.push('end') };
    channel.subscribe(handlers as unknown as diagnosticsChannel.TracingChannelSubscribers<object>);
    cleanups.push(() =>
      channel.unsubscribe(handlers as unknown as diagnosticsChannel.TracingChannelSubscribers<object>),
    );
    await traceTokenRequest(
      async () => {
        order.push('request');
        return token;
      },
      () => ({ attempt: 1, maxAttempts: 1, timeoutMs: 5 }),
    );
    assert.deepEqual(order, ['start', 'request', 'end']);
  });

  it('stops publishing once the subscriber leaves', async () => {
    const recorder = record<TokenRequestTraceContext>(TOKEN_REQUEST_CHANNEL);
    await traceTokenRequest(
      async () => token,
      () => ({ attempt: 1, maxAttempts: 1, timeoutMs: 5 }),
    );
    recorder.stop();
    const before = recorder.events.length;
    await traceTokenRequest(
      async () => token,
      () => ({ attempt: 1, maxAttempts: 1, timeoutMs: 5 }),
    );
    assert.equal(recorder.events.length, before);
  });

  it('also works for a subscriber of a single phase channel', async () => {
    const seen: TokenRequestTraceContext[] = [];
    const onAsyncEnd = (message: unknown) => seen.push(message as TokenRequestTraceContext);
    diagnosticsChannel.subscribe(`tracing:${TOKEN_REQUEST_CHANNEL}:asyncEnd`, onAsyncEnd);
    cleanups.push(() => diagnosticsChannel.unsubscribe(`tracing:${TOKEN_REQUEST_CHANNEL}:asyncEnd`, onAsyncEnd));
    await traceTokenRequest(
      async () => token,
      () => ({ attempt: 1, maxAttempts: 3, timeoutMs: 5 }),
    );
    assert.equal(seen.length, 1);
    assert.equal(must(seen[0], 'the asyncEnd message').result?.oid, OID);
  });
});

describe('traceReauthentication', () => {
  it('is the AUTH itself when nobody subscribes', async () => {
    const pending = Promise.resolve('OK');
    let built = 0;
    const result = traceReauthentication(
      () => pending,
      () => {
        built++;
        return { connection: 'c', token, attempt: 1 };
      },
    );
    assert.equal(result, pending);
    assert.equal(built, 0);
  });

  it("publishes the connection, the described token, the attempt and the server's reply", async () => {
    const recorder = recording<ReauthTraceContext>(REAUTH_CHANNEL);
    const reply = await traceReauthentication(
      async () => 'OK',
      () => ({ connection: 'orders-cache', token, attempt: 1 }),
    );
    assert.equal(reply, 'OK');
    assert.deepEqual(
      recorder.events.map(([phase]) => phase),
      ['start', 'end', 'asyncStart', 'asyncEnd'],
    );
    const context = must(recorder.contexts[0], 'the traced context');
    assert.equal(context.connection, 'orders-cache');
    assert.equal(context.method, 'auth', 'AUTH unless told otherwise');
    assert.equal(context.attempt, 1);
    assert.equal(context.result, 'OK');
    assert.deepEqual(context.token, {
      username: OID,
      oid: OID,
      expiresOn: token.expiresOn,
      receivedAt: token.receivedAt,
    });
    assert.equal(holdsToken(recorder.events), false);
  });

  it('reports a reply other than OK as the result (QUEUED inside MULTI)', async () => {
    const recorder = recording<ReauthTraceContext>(REAUTH_CHANNEL);
    await traceReauthentication(
      async () => 'QUEUED',
      () => ({ connection: 'c', token, attempt: 3 }),
    );
    const context = must(recorder.contexts[0], 'the traced context');
    assert.equal(context.result, 'QUEUED');
    assert.equal(context.attempt, 3);
  });

  it('traces a subscriber handover, whose promise resolves without a reply', async () => {
    const recorder = recording<ReauthTraceContext>(REAUTH_CHANNEL);
    await traceReauthentication(
      async () => undefined,
      () => ({ connection: 'events', method: 'handover', token, attempt: 1 }),
    );
    const context = must(recorder.contexts[0], 'the traced context');
    assert.equal(context.method, 'handover');
    assert.equal(context.result, undefined);
    assert.deepEqual(
      recorder.events.map(([phase]) => phase),
      ['start', 'end', 'asyncStart', 'asyncEnd'],
    );
  });

  it('removes the token from a failed AUTH (ioredis puts it in command.args) before subscribers see it', async () => {
    const recorder = recording<ReauthTraceContext>(REAUTH_CHANNEL);
    const failure = Object.assign(
      new (ReplyError as new (message: string) => Error)(
        'WRONGPASS invalid username-password pair or user is disabled.',
      ),
      {
        command: { name: 'auth', args: [OID, RAW] },
      },
    );
    await assert.rejects(
      traceReauthentication(
        async () => {
          throw failure;
        },
        () => ({ connection: 'c', token, attempt: 1 }),
      ),
      /WRONGPASS/,
    );
    assert.deepEqual(
      recorder.events.map(([phase]) => phase),
      ['start', 'end', 'error', 'asyncStart', 'asyncEnd'],
    );
    assert.equal(must(recorder.contexts[0], 'the traced context').error, failure);
    assert.deepEqual((failure as unknown as { command: { args: string[] } }).command.args, [OID, '<redacted>']);
    assert.equal(holdsToken(recorder.events), false);
  });
});

describe('publishReauthReconnect', () => {
  it('publishes the connection, the described token and the reason', () => {
    const messages: ReauthReconnectMessage[] = [];
    const listener = (message: unknown) => messages.push(message as ReauthReconnectMessage);
    diagnosticsChannel.subscribe(REAUTH_RECONNECT_CHANNEL, listener);
    cleanups.push(() => diagnosticsChannel.unsubscribe(REAUTH_RECONNECT_CHANNEL, listener));
    publishReauthReconnect('127.0.0.1:10000', token, 'auth-timeout');
    assert.deepEqual(messages, [
      {
        connection: '127.0.0.1:10000',
        token: { username: OID, oid: OID, expiresOn: token.expiresOn, receivedAt: token.receivedAt },
        reason: 'auth-timeout',
      },
    ]);
    assert.equal(holdsToken(messages), false);
  });

  it('does nothing without subscribers', () => {
    assert.equal(diagnosticsChannel.hasSubscribers(REAUTH_RECONNECT_CHANNEL), false);
    assert.doesNotThrow(() => publishReauthReconnect('c', token, 'handover-failed'));
  });
});
