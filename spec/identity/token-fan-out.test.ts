/**
 * TokenFanOut: a new token reaches every subscriber, a batch per turn of the event loop, in order, and a newer token
 * supersedes a fan-out still running. The end-to-end path (real connections re-authenticated) is in spec/binding.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TokenSubscriber } from '../../lib/identity/credentials-provider.js';
import { TokenFanOut } from '../../lib/identity/token-fan-out.js';
import type { EntraToken } from '../../lib/token/entra-token.js';

const token = (name: string) => ({ name }) as unknown as EntraToken;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

class Recorder implements TokenSubscriber {
  readonly received: string[] = [];
  onToken(received: EntraToken): void {
    this.received.push((received as unknown as { name: string }).name);
  }
}

function setUp(count: number, batchSize = 10) {
  const subscribers = new Set<TokenSubscriber>();
  const recorders = Array.from({ length: count }, () => new Recorder());
  for (const recorder of recorders) subscribers.add(recorder);
  return { subscribers, recorders, fanOut: new TokenFanOut(subscribers, batchSize) };
}

describe('TokenFanOut', () => {
  it('hands the token to the first batch at once, to the rest on later turns, then reports done', async () => {
    const { recorders, fanOut } = setUp(35);
    let done = 0;
    const finished = new Promise<void>((resolve) => fanOut.deliver(token('t1'), () => { done++; resolve(); }));
    assert.equal(recorders.filter((r) => r.received.length === 1).length, 10, 'the first batch synchronously');
    assert.equal(done, 0);
    await nextTurn();
    assert.equal(recorders.filter((r) => r.received.length === 1).length, 20, 'one more batch per turn');
    await finished;
    assert.ok(recorders.every((r) => r.received.join() === 't1'), 'every subscriber got the token once');
    assert.equal(done, 1);
  });

  it('a single batch completes synchronously', () => {
    const { recorders, fanOut } = setUp(5);
    let done = false;
    fanOut.deliver(token('t1'), () => { done = true; });
    assert.ok(done);
    assert.ok(recorders.every((r) => r.received.join() === 't1'));
  });

  it('a newer token supersedes a fan-out in progress: completions in order, everybody ends with the newer token', async () => {
    const { recorders, fanOut } = setUp(35);
    const order: string[] = [];
    fanOut.deliver(token('t1'), () => order.push('t1'));
    const finished = new Promise<void>((resolve) => fanOut.deliver(token('t2'), () => { order.push('t2'); resolve(); }));
    assert.deepEqual(order, ['t1'], 'the superseded fan-out is reported done when the newer one starts');
    await finished;
    assert.deepEqual(order, ['t1', 't2']);
    assert.ok(recorders.every((r) => r.received.at(-1) === 't2'));
    assert.deepEqual(recorders.slice(0, 10).map((r) => r.received.join()), Array(10).fill('t1,t2'), 'the first batch got both');
    assert.deepEqual(recorders.slice(10).map((r) => r.received.join()), Array(25).fill('t2'), 'the rest only the newer one');
  });

  it('skips subscribers that detached meanwhile, and one that throws does not stop the others', async () => {
    const { subscribers, recorders, fanOut } = setUp(30);
    subscribers.add({ onToken: () => { throw new Error('broken subscriber'); } });
    const finished = new Promise<void>((resolve) => fanOut.deliver(token('t1'), resolve));
    const detached = recorders[25] as Recorder;
    subscribers.delete(detached);
    await finished;
    assert.deepEqual(detached.received, []);
    assert.equal(recorders.filter((r) => r.received.join() === 't1').length, 29);
  });

  it('cancel stops a fan-out in progress without reporting it done', async () => {
    const { recorders, fanOut } = setUp(35);
    let done = false;
    fanOut.deliver(token('t1'), () => { done = true; });
    fanOut.cancel();
    for (let turn = 0; turn < 5; turn++) await nextTurn();
    assert.equal(done, false);
    assert.equal(recorders.filter((r) => r.received.length > 0).length, 10, 'only the first batch');
  });
});
