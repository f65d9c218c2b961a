/**
 * TokenFanOut: a new token reaches every subscriber, the first batch at once and one more per turn of the event loop,
 * and a newer token supersedes a fan-out still running. The end-to-end path (real connections re-authenticated, with
 * more connections than a batch) is in spec/binding and bench/reauth.ts.
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

const withToken = (recorders: Recorder[], names: string) => recorders.filter((r) => r.received.join() === names).length;

/** Turns until every recorder ended with `name`, at most `limit`. */
async function turnsUntilAllHave(recorders: Recorder[], name: string, limit = 100): Promise<number> {
  for (let turns = 0; turns < limit; turns++) {
    if (recorders.every((r) => r.received.at(-1) === name)) return turns;
    await nextTurn();
  }
  throw new Error(`not every subscriber got ${name} within ${limit} turns`);
}

describe('TokenFanOut', () => {
  it('hands the token to the first batch at once and to one more batch per turn, each subscriber once', async () => {
    const { recorders, fanOut } = setUp(35);
    fanOut.deliver(token('t1'));
    assert.equal(withToken(recorders, 't1'), 10, 'the first batch synchronously');
    await nextTurn();
    assert.equal(withToken(recorders, 't1'), 20, 'one more batch on the next turn');
    assert.equal(await turnsUntilAllHave(recorders, 't1'), 2, 'the last two batches on the two turns after');
    assert.equal(withToken(recorders, 't1'), 35, 'once each');
  });

  it('a newer token supersedes a fan-out in progress: everybody ends with it, nobody later gets the older one', async () => {
    const { recorders, fanOut } = setUp(35);
    fanOut.deliver(token('t1'));
    fanOut.deliver(token('t2'));
    await turnsUntilAllHave(recorders, 't2');
    for (let turn = 0; turn < 5; turn++) await nextTurn();
    assert.equal(withToken(recorders.slice(0, 10), 't1,t2'), 10, 'the first batch got both, in order');
    assert.equal(withToken(recorders.slice(10), 't2'), 25, 'the rest only the newer one');
  });

  it('skips subscribers that detached meanwhile; one that throws does not stop the others', async () => {
    const { subscribers, recorders, fanOut } = setUp(30);
    subscribers.add({
      onToken: () => {
        throw new Error('broken subscriber');
      },
    });
    fanOut.deliver(token('t1'));
    const detached = recorders[25] as Recorder;
    subscribers.delete(detached);
    await turnsUntilAllHave(
      recorders.filter((r) => r !== detached),
      't1',
    );
    assert.deepEqual(detached.received, []);
  });

  it('cancel stops a fan-out in progress', async () => {
    const { recorders, fanOut } = setUp(35);
    fanOut.deliver(token('t1'));
    fanOut.cancel();
    for (let turn = 0; turn < 5; turn++) await nextTurn();
    assert.equal(withToken(recorders, 't1'), 10, 'only the first batch');
  });
});
