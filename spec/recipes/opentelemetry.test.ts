// ioredis majors: 5, 6
// @opentelemetry/instrumentation-ioredis over Entra ID clients, across token rotations: the application's commands
// get spans (children of the application's own spans), and no span holds a token or any part of one: names,
// attributes, events, status and links are searched for every token issued. With the default configuration the
// library's AUTH / HELLO show as root spans whose statement hides their arguments; with `requireParentSpan` they do
// not show at all (the client and its provider are made outside any span, as at startup).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import * as ioredis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';

const major = process.env.IOREDIS_MAJOR ?? '5';
const protocols: Array<2 | 3> = major === '6' ? [2, 3] : [2];
const ROTATIONS = 3;

const exporter = new InMemorySpanExporter();
const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const instrumentation = new IORedisInstrumentation();
const tracer = tracerProvider.getTracer('recipe-test');

let world: World;
before(async () => {
  tracerProvider.register(); // AsyncLocalStorage context manager: parent spans follow the application's awaits
  instrumentation.setTracerProvider(tracerProvider);
  // What the require / import hook does when the application loads ioredis (here the suite has loaded it already,
  // and under ioredis 6 it is installed under another name): wrap Redis.prototype.sendCommand and connect.
  const version = (await import('ioredis/package.json', { with: { type: 'json' } })).default.version;
  for (const definition of instrumentation.getModuleDefinitions()) definition.patch?.(ioredis, version);
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  instrumentation.disable();
  await world.stop();
  await tracerProvider.shutdown();
});

/** Every string of a span a backend receives. */
function strings(span: ReadableSpan): string[] {
  const values = (attributes: object | undefined) =>
    Object.entries(attributes ?? {}).flatMap(([k, v]) => [k, String(v)]);
  return [
    span.name,
    ...values(span.attributes),
    span.status.message ?? '',
    ...span.events.flatMap((event) => [event.name, ...values(event.attributes)]),
    ...span.links.flatMap((link) => values(link.attributes)),
  ];
}

/** Spans holding any 16 consecutive characters of any token (header, claims or signature). */
function leaks(spans: readonly ReadableSpan[], tokens: ReadonlySet<string>): string[] {
  const windows = new Set<string>();
  for (const token of tokens) for (let i = 0; i + 16 <= token.length; i++) windows.add(token.slice(i, i + 16));
  const found: string[] = [];
  for (const span of spans) {
    for (const text of strings(span)) {
      for (let i = 0; i + 16 <= text.length; i++) {
        if (windows.has(text.slice(i, i + 16))) {
          found.push(`${span.name}: ${text.slice(0, 40)}…`);
          break;
        }
      }
    }
  }
  return found;
}

for (const protocol of protocols) {
  describe(`OpenTelemetry ioredis instrumentation across rotations, RESP${protocol}`, () => {
    for (const requireParentSpan of [false, true]) {
      it(`${requireParentSpan ? 'requireParentSpan: ' : ''}spans for the application's commands, none with a token`, async (t) => {
        instrumentation.setConfig({ requireParentSpan });
        exporter.reset();
        const provider = world.provider();
        const tokens = new Set<string>();
        const remember = () => {
          const token = provider.currentToken();
          if (token) tokens.add(token.password);
        };
        provider.on('tokenRefreshed', remember);
        const options = {
          ...world.endpoint,
          credentialsProvider: provider,
          ...(major === '6' ? { protocol } : {}),
        } as RedisOptions;
        const redis = world.track(createEntraRedis(options));
        const subscriber = world.track(redis.duplicate());
        let received = 0;
        subscriber.on('message', () => {
          received++;
        });
        await subscriber.subscribe('recipe-events');
        remember();

        const rotations = countEvents(provider, 'tokenRefreshed');
        const reauths = countEvents(provider, 'reauthenticated');
        const expiryDisconnects = world.amr.counters.expiryDisconnects;
        const requests: string[] = [];
        let running = true as boolean; // cleared by the test while the loop runs
        const application = (async () => {
          for (let i = 0; running; i++) {
            await tracer.startActiveSpan('request', async (span: Span) => {
              requests.push(span.spanContext().spanId);
              await redis.set(`otel:${i}`, String(i));
              await redis.get(`otel:${i}`);
              await redis.multi().incr('otel:count').expire('otel:count', 60).exec();
              await redis.publish('recipe-events', String(i));
              span.setStatus({ code: SpanStatusCode.OK });
              span.end();
            });
            // outside any span
            await redis.exists('otel:count');
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        })();
        await waitUntil(() => rotations.count >= ROTATIONS && reauths.count >= 2 * ROTATIONS, {
          timeoutMs: 30_000,
          description: `${ROTATIONS} rotations`,
        });
        running = false;
        await application;
        await waitUntil(() => received >= requests.length, { timeoutMs: 5_000, description: 'every message' });
        await Promise.all([redis.quit(), subscriber.quit()]);

        const spans = exporter.getFinishedSpans();
        assert.deepEqual(leaks(spans, tokens), [], 'no span holds a token');
        assert.ok(tokens.size >= ROTATIONS, `tokens searched for: ${tokens.size}`);

        const inRequests = new Set(requests);
        const children = spans.filter((s) => s.parentSpanContext?.spanId && inRequests.has(s.parentSpanContext.spanId));
        const names = (list: ReadableSpan[]) => list.map((s) => s.name);
        for (const name of ['set', 'get', 'publish', 'multi', 'incr', 'expire', 'exec']) {
          assert.equal(
            names(children).filter((n) => n === name).length,
            requests.length,
            `one "${name}" span per request`,
          );
        }
        assert.equal(children.filter((s) => s.status.code === SpanStatusCode.ERROR).length, 0, 'no command failed');
        const pings = spans.filter((s) => s.name === 'exists');
        const roots = new Map<string, number>();
        for (const s of spans)
          if (!s.parentSpanContext && s.name !== 'exists') roots.set(s.name, (roots.get(s.name) ?? 0) + 1);
        t.diagnostic(
          `RESP${protocol}${requireParentSpan ? ', requireParentSpan' : ''}: ${requests.length} requests, ${spans.length} spans; ` +
            `other root spans: ${JSON.stringify(Object.fromEntries(roots))}`,
        );
        const authSpans = spans.filter((s) => s.name === 'auth' || s.name === 'hello');
        if (requireParentSpan) {
          assert.equal(pings.length, 0, 'no span outside a parent');
          assert.deepEqual(names(authSpans), [], "the library's AUTH / HELLO are not traced");
        } else {
          assert.equal(pings.length, requests.length, 'a root span for each command outside a parent');
          assert.ok(
            authSpans.some((s) => s.name === 'auth'),
            'the re-AUTHs are traced',
          );
          for (const span of authSpans) {
            assert.equal(span.parentSpanContext, undefined, `${span.name} is a root span`);
            assert.match(String(span.attributes['db.query.text']), /^(auth|hello) \[\d other arguments\]$/);
          }
        }
        assert.equal(world.amr.counters.expiryDisconnects, expiryDisconnects, 'no connection closed at token expiry');
      });
    }
  });
}
