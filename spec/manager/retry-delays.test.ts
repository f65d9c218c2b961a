// Delays between the attempts of one refresh cycle: the exponential backoff p-retry waits, the part of the jitter
// and of a Retry-After the manager adds before it, the cap at maxDelay, and an abort that ends the wait.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { TokenManager } from '../../lib/manager/token-manager.js';
import type { RetryOptions } from '../../lib/manager/options.js';
import { ScriptedSource, failWith, issue, networkError } from '../support/fake-credential.js';

const T0 = 1_700_000_000_000;

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Fake time (ms) from the first request until `source` has been called `calls` times; fails past `limitMs`. */
async function timeUntilCalls(source: ScriptedSource, calls: number, limitMs = 120_000, step = 10): Promise<number> {
  const start = Date.now();
  while (source.calls < calls) {
    if (Date.now() - start > limitMs) assert.fail(`${calls} calls not made within ${limitMs} ms of fake time`);
    mock.timers.tick(step);
    await flush();
  }
  return Date.now() - start;
}

function managerFor(source: ScriptedSource, retryOptions: RetryOptions, random: () => number) {
  return new TokenManager(source.fetch, {
    tokenManagerOptions: { refreshJitter: 0, retryOptions: { isRetryable: () => true, ...retryOptions } },
    random,
  });
}

describe('delays between attempts (fake timers)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }));
  afterEach(() => mock.timers.reset());

  it("jitter takes random × jitter off the backoff, from the manager's random source", async () => {
    const source = new ScriptedSource(issue(60_000)).then(failWith(networkError()), failWith(networkError()));
    const manager = managerFor(source, { initialDelay: 1_000, backoffMultiplier: 2, jitter: 0.5 }, () => 0.5);
    const pending = manager.getToken({ timeout: 60_000 });
    await flush();
    const first = await timeUntilCalls(source, 2);
    assert.ok(first >= 750 && first <= 760, `first delay ${first} ms, expected 1000 − 1000 × 0.5 × 0.5 = 750`);
    const second = await timeUntilCalls(source, 3);
    assert.ok(second >= 1_500 && second <= 1_510, `second delay ${second} ms, expected 2000 − 2000 × 0.5 × 0.5 = 1500`);
    await pending;
    manager.dispose();
  });

  it('the backoff stops growing at maxDelay', async () => {
    const source = new ScriptedSource(issue(60_000)).then(
      failWith(networkError()),
      failWith(networkError()),
      failWith(networkError()),
    );
    const manager = managerFor(
      source,
      { maxAttempts: 4, initialDelay: 1_000, backoffMultiplier: 10, maxDelay: 3_000, jitter: 0 },
      () => 0,
    );
    const pending = manager.getToken({ timeout: 60_000 });
    await flush();
    const delays = [await timeUntilCalls(source, 2), await timeUntilCalls(source, 3), await timeUntilCalls(source, 4)];
    assert.deepEqual(
      delays.map((d) => Math.round(d / 100) * 100),
      [1_000, 3_000, 3_000],
    );
    await pending;
    manager.dispose();
  });

  it('a Retry-After longer than maxDelay is honoured up to maxDelay', async () => {
    const throttled = Object.assign(new Error('throttled'), { statusCode: 429, retryAfterInMs: 60_000 });
    const source = new ScriptedSource(issue(60_000)).then(failWith(throttled));
    const manager = managerFor(source, { initialDelay: 100, maxDelay: 2_000, jitter: 0 }, () => 0);
    const pending = manager.getToken({ timeout: 120_000 });
    await flush();
    const delay = await timeUntilCalls(source, 2);
    assert.ok(delay >= 2_000 && delay <= 2_010, `delay ${delay} ms, expected maxDelay (2000)`);
    await pending;
    manager.dispose();
  });

  it('dispose ends the wait for Retry-After: no further attempt', async () => {
    const throttled = Object.assign(new Error('throttled'), { statusCode: 429, retryAfterInMs: 5_000 });
    const source = new ScriptedSource(issue(60_000)).then(failWith(throttled));
    const manager = managerFor(source, { initialDelay: 100, jitter: 0 }, () => 0);
    const outcome = manager.getToken({ timeout: 60_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await flush();
    mock.timers.tick(1_000);
    await flush();
    manager.dispose();
    assert.ok((await outcome) instanceof Error);
    for (let elapsed = 0; elapsed < 10_000; elapsed += 100) {
      mock.timers.tick(100);
      await flush();
    }
    assert.equal(source.calls, 1);
  });
});
