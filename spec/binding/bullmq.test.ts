// ioredis majors: 5, 6
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

it('BullMQ queue, worker and queue events run across many rotations with no failed or stalled job', async () => {
  const provider = world.provider();
  const connection = () =>
    world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: provider, maxRetriesPerRequest: null }));
  const queue = new Queue('entra-jobs', { connection: connection() });
  const events = new QueueEvents('entra-jobs', { connection: connection() });
  const completed = new Set<string>();
  const failed: string[] = [];
  const stalled: string[] = [];
  const worker = new Worker('entra-jobs', async (job) => (job.data as { n: number }).n * 2, {
    connection: connection(),
    concurrency: 5,
  });
  worker.on('completed', (job, result) => {
    if (result === (job.data as { n: number }).n * 2) completed.add(String(job.id));
  });
  worker.on('failed', (job, error) => failed.push(`${job?.id}: ${error.message}`));
  worker.on('stalled', (id) => stalled.push(id));
  events.on('stalled', ({ jobId }) => stalled.push(jobId));
  const eventCompleted = new Set<string>();
  events.on('completed', ({ jobId }) => eventCompleted.add(jobId));
  await Promise.all([worker.waitUntilReady(), events.waitUntilReady(), queue.waitUntilReady()]);
  try {
    const rotations = countEvents(provider, 'tokenRefreshed');
    const added: string[] = [];
    let running = true as boolean; // cleared by the test while the loop runs
    const producing = (async () => {
      for (let n = 0; running; n++) {
        const job = await queue.add('double', { n });
        added.push(String(job.id));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await waitUntil(() => rotations.count >= 5, { timeoutMs: 40_000, description: '5 rotations' });
    running = false;
    await producing;
    await waitUntil(() => added.every((id) => completed.has(id) && eventCompleted.has(id)), {
      timeoutMs: 20_000,
      description: 'every job completed',
    });
    assert.deepEqual(failed, []);
    assert.deepEqual(stalled, []);
    assert.equal(world.amr.counters.expiryDisconnects, 0);
    assert.ok(added.length > 50, `jobs: ${added.length}`);
  } finally {
    await worker.close();
    await events.close();
    await queue.close();
  }
});
