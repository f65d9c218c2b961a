/**
 * OpenTelemetry traces of an ioredis application on Azure Managed Redis with Entra ID, with
 * @opentelemetry/instrumentation-ioredis. The library's own AUTH / HELLO never carry a token into a span; with
 * `requireParentSpan: true` they are not traced at all, and the application's commands show under its own spans.
 *
 *   REDIS_HOST=<name>.<region>.redis.azure.net node --import tsx examples/recipes/opentelemetry.ts
 *
 * In an application, put the first part (up to registerInstrumentations) in a file loaded with `node --import` so
 * that it runs before anything imports ioredis.
 */
import { register } from 'node:module';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

// ES modules: the hook that lets instrumentations patch what `import` loads (CommonJS needs no hook).
register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
// In production: an OTLP exporter and a BatchSpanProcessor. Here the spans are kept and printed at the end.
const exporter = new InMemorySpanExporter();
const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
tracerProvider.register();
registerInstrumentations({
  tracerProvider,
  instrumentations: [new IORedisInstrumentation({ requireParentSpan: true })],
});

// Loaded only now, so that ioredis is instrumented. In your application: from 'ioredis-entraid'.
const { createEntraRedis, createManagedIdentityCredentialsProvider } = await import('../../lib/index.js');

const host = process.env.REDIS_HOST;
if (!host) throw new Error('Set REDIS_HOST to the host name of the cache');
const port = Number(process.env.REDIS_PORT ?? 10000);
const credentialsProvider = createManagedIdentityCredentialsProvider(
  process.env.AZURE_CLIENT_ID ? { clientId: process.env.AZURE_CLIENT_ID } : {},
);
const redis = createEntraRedis({ host, port, tls: { servername: host }, credentialsProvider });
redis.on('error', (error: Error) => console.error('redis:', error.message));

const tracer = trace.getTracer('example');
await tracer.startActiveSpan('GET /profile', async (span) => {
  await redis.set('profile:ada', JSON.stringify({ name: 'Ada' }), 'EX', 60);
  console.log('profile:', await redis.get('profile:ada'));
  span.setStatus({ code: SpanStatusCode.OK });
  span.end();
});

await redis.quit();
credentialsProvider.dispose();
await tracerProvider.forceFlush();
const spans = exporter.getFinishedSpans();
const byId = new Map(spans.map((s) => [s.spanContext().spanId, s.name]));
for (const span of spans) {
  const parent = span.parentSpanContext ? (byId.get(span.parentSpanContext.spanId) ?? '?') : '(root)';
  const statement = span.attributes['db.query.text'];
  console.log(`span ${span.name} <- ${parent}${statement ? `: ${String(statement)}` : ''}`);
}
await tracerProvider.shutdown();
