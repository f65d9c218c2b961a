/**
 * How long the server counts two subscribers during a RESP2 subscriber handover (PUBSUB NUMSUB, SHARDNUMSUB and
 * PUBLISH's reply count the shadow connection too). A probe connection publishes on the subscriber's channel back to
 * back and notes, per rotation, the span of PUBLISH replies that counted 2 (from the first such reply to the last,
 * plus one probe interval: the resolution). Writes docs/handover-window.md.
 *
 *   node --import tsx bench/handover-window.ts [rotations=20] [label]
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Redis, type RedisOptions } from 'ioredis';
import { createEntraRedis } from '../lib/create-entra-redis.js';
import { World } from '../harness/world.js';

const rotations = Number(process.argv[2] ?? 20);
const label = process.argv[3] ?? 'this version';
const world = await World.start({ tokenLifetimeSeconds: 3 });
const provider = world.provider();
const subscriber = createEntraRedis({ ...world.endpoint, credentialsProvider: provider, protocol: 2 } as RedisOptions);
await subscriber.subscribe('probe');
const probe = new Redis(world.redis.adminClientOptions());
const windows: number[] = [];
const intervals: number[] = [];
let doubleStart = Number.NaN;
let doubleEnd = Number.NaN;
/** Time covered by replies that counted 2, in the current rotation. */
let doubleTime = 0;
let handovers = 0;
provider.on('reauthenticated', (event) => {
  if (event.method === 'handover') handovers++;
});
let last = performance.now();
while (handovers < rotations) {
  const count = await probe.publish('probe', 'x');
  const now = performance.now();
  intervals.push(now - last);
  last = now;
  if (count >= 2) {
    if (Number.isNaN(doubleStart)) {
      doubleStart = now;
      doubleTime = 0;
    }
    doubleEnd = now;
    doubleTime += intervals.at(-1) ?? 0;
  } else if (!Number.isNaN(doubleStart) && now - doubleEnd > 50) {
    windows.push(doubleTime);
    doubleStart = Number.NaN;
  }
}
const resolution = intervals.sort((a, b) => a - b)[Math.floor(intervals.length / 2)] ?? 0;
const sorted = windows.sort((a, b) => a - b);
const at = (q: number) => (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) + resolution;
const line = `| ${label} | ${handovers} | ${sorted.length} | ${at(0.5).toFixed(2)} | ${at(0.95).toFixed(2)} | ${((sorted.at(-1) ?? 0) + resolution).toFixed(2)} | ${resolution.toFixed(3)} |`;
console.log(line);
writeFileSync(
  'docs/handover-window.md',
  `# Two subscribers during a RESP2 handover

Measured by \`bench/handover-window.ts\` (loopback, AMR emulator, 3 s tokens, ioredis ${process.env.IOREDIS_MAJOR ?? '5'} RESP2):
per rotation, the time covered by back-to-back PUBLISH replies that counted the subscriber twice (each such reply
counts the interval since the previous one), plus one probe interval (the resolution). Figures in ms.

| version | handovers | windows seen | median | p95 | max | probe interval |
|---|---|---|---|---|---|---|
${line}
`,
  { flag: 'a' },
);
subscriber.disconnect();
probe.disconnect();
provider.dispose();
await world.stop();
