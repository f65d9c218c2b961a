/**
 * What an enabled AsyncLocalStorage costs the application's command path: on Node.js 22 its first `run()` turns on a
 * process-wide promise hook (every promise created afterwards pays for it) until `disable()`. One plain `new Redis()`
 * client straight to redis-server; blocks with the hook off and on alternate, CPU time per operation of each block.
 *
 *   node --import tsx bench/promise-hook.ts [blocks=12] [block ms=1000]
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { startRedisServer } from '../lib/testing/redis-server.js';
import { summarize } from './support/stats.js';

const BLOCKS = Number(process.argv[2] ?? 12);
const BLOCK_MS = Number(process.argv[3] ?? 1_000);

async function block(client: Redis, mode: 'sequential' | 'pipelined'): Promise<number> {
  const cpu = process.cpuUsage();
  const end = performance.now() + BLOCK_MS;
  let ops = 0;
  while (performance.now() < end) {
    if (mode === 'sequential') {
      await client.set('k', 'v');
      await client.get('k');
      ops += 2;
    } else {
      const pipeline = client.pipeline();
      for (let i = 0; i < 50; i++) pipeline.set('k', 'v').get('k');
      await pipeline.exec();
      ops += 100;
    }
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / ops;
}

async function main(): Promise<void> {
  const server = await startRedisServer();
  const client = new Redis({ host: server.host, port: server.port, ...server.admin });
  const storage = new AsyncLocalStorage<number>();
  try {
    await client.ping();
    for (const mode of ['sequential', 'pipelined'] as const) {
      await block(client, mode); // warm-up
      const off: number[] = [];
      const on: number[] = [];
      for (let i = 0; i < BLOCKS; i++) {
        for (const hook of i % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
          if (hook === 'on') storage.run(1, () => undefined);
          else storage.disable();
          (hook === 'on' ? on : off).push(await block(client, mode));
        }
      }
      storage.disable();
      const s = (values: number[]) => {
        const { median, min, max } = summarize(values);
        return `${median.toFixed(3)} (${min.toFixed(3)}-${max.toFixed(3)})`;
      };
      const ratios = summarize(on.map((value, i) => value / (off[i] as number)));
      process.stdout.write(
        `${process.version} ${mode}: CPU µs/op hook off ${s(off)}, on ${s(on)}; on/off per pair ` +
          `${ratios.median.toFixed(3)} (${ratios.min.toFixed(3)}-${ratios.max.toFixed(3)})\n`,
      );
    }
  } finally {
    client.disconnect();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
