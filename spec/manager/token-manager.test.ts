import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { DisposedError, InvalidTokenError, TokenRequestTimeoutError, TokenUnavailableError } from '../../lib/errors.js';
import { TokenManager, type RefreshFailure } from '../../lib/manager/token-manager.js';
import type { TokenManagerOptions } from '../../lib/manager/options.js';
import type { EntraToken } from '../../lib/token/entra-token.js';
import {
  ScriptedSource,
  failWith,
  hang,
  hangDeaf,
  issue,
  makeAccessToken,
  networkError,
} from '../support/fake-credential.js';
import { must } from '../support/must.js';

const T0 = 1_700_000_000_000;
const retryAll = () => true;

/** Lets promise chains run between fake-timer ticks. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Advances the fake clock by `ms` in `step` increments, running promise chains in between. */
async function advance(ms: number, step = 50): Promise<void> {
  for (let elapsed = 0; elapsed < ms; elapsed += step) {
    mock.timers.tick(Math.min(step, ms - elapsed));
    await flush();
  }
}

/** Advances until `condition` holds, failing after `limitMs` of fake time. */
async function advanceUntil(condition: () => boolean, limitMs: number, step = 50): Promise<number> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > limitMs) assert.fail(`condition not met within ${limitMs} ms of fake time`);
    mock.timers.tick(step);
    await flush();
  }
  return Date.now() - start;
}

function managerWith(source: ScriptedSource, tokenManagerOptions: TokenManagerOptions = {}) {
  const tokens: EntraToken[] = [];
  const failures: RefreshFailure[] = [];
  const manager = new TokenManager(source.fetch, {
    tokenManagerOptions: {
      refreshJitter: 0,
      ...tokenManagerOptions,
      retryOptions: { jitter: 0, isRetryable: retryAll, ...tokenManagerOptions.retryOptions },
    },
    hooks: { onToken: (t) => tokens.push(t), onRefreshFailed: (f) => failures.push(f) },
    random: () => 0.5,
  });
  return { manager, tokens, failures };
}

describe('TokenManager schedule (fake timers)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }));
  afterEach(() => mock.timers.reset());

  it('refreshes at expirationRefreshRatio of the lifetime', async () => {
    const source = new ScriptedSource(issue(100_000));
    const { manager, tokens } = managerWith(source);
    manager.start();
    await flush();
    assert.equal(tokens.length, 1);
    await advance(69_900, 100);
    assert.equal(source.calls, 1);
    await advance(200);
    assert.equal(source.calls, 2);
    assert.equal(tokens.length, 2);
    manager.dispose();
  });

  it('lowerRefreshBounds brings the refresh forward', async () => {
    const source = new ScriptedSource(issue(100_000));
    const { manager } = managerWith(source, { lowerRefreshBounds: 40_000 });
    manager.start();
    await flush();
    await advance(59_900, 100);
    assert.equal(source.calls, 1);
    await advance(200);
    assert.equal(source.calls, 2);
    manager.dispose();
  });

  it('ratio 1 refreshes at expiry and the next caller waits for the fresh token', async () => {
    const source = new ScriptedSource(issue(10_000));
    const { manager } = managerWith(source, { expirationRefreshRatio: 1 });
    manager.start();
    await flush();
    await advance(9_500, 100);
    assert.equal(source.calls, 1);
    await advance(600);
    assert.equal(source.calls, 2);
    assert.ok(manager.validToken());
    manager.dispose();
  });

  it('a short token (2 s) is refreshed at 1.4 s, repeatedly', async () => {
    const source = new ScriptedSource(issue(2_000));
    const { manager, tokens } = managerWith(source);
    manager.start();
    await flush();
    await advance(1_450, 10);
    assert.equal(source.calls, 2);
    await advance(1_400, 10);
    assert.equal(source.calls, 3);
    assert.equal(tokens.length, 3);
    manager.dispose();
  });

  it('a lower bound longer than the lifetime refreshes early without a tight loop', async () => {
    const source = new ScriptedSource(issue(3_000));
    const { manager } = managerWith(source, { lowerRefreshBounds: 10_000 });
    manager.start();
    await flush();
    await advance(10_000, 50);
    // one request per second at most (the floor), never a burst
    assert.ok(source.calls >= 9 && source.calls <= 11, `calls: ${source.calls}`);
    manager.dispose();
  });

  it('refreshJitter only brings the refresh forward, within its fraction', async () => {
    const source = new ScriptedSource(issue(100_000));
    const manager = new TokenManager(source.fetch, { tokenManagerOptions: { refreshJitter: 0.1 }, random: () => 0.99 });
    manager.start();
    await flush();
    await advance(60_900, 100);
    assert.equal(source.calls, 1);
    await advance(9_100, 100);
    assert.equal(source.calls, 2);
    manager.dispose();
  });

  it('an already-expired token is rejected clearly and never handed out', async () => {
    const expired = makeAccessToken(-1_000);
    const source = new ScriptedSource(async () => expired);
    const { manager, failures } = managerWith(source, {
      retryOptions: { isRetryable: (e) => !(e instanceof InvalidTokenError) },
    });
    await assert.rejects(manager.getToken(), (error: unknown) => {
      assert.ok(error instanceof TokenUnavailableError);
      assert.match(error.message, /expired/);
      assert.ok(error.cause instanceof InvalidTokenError);
      assert.ok(!error.message.includes(expired.token) && !String(error.stack).includes(expired.token));
      return true;
    });
    assert.equal(source.calls, 1, 'an invalid token is not retried when isRetryable says no');
    assert.equal(failures.length, 1);
    manager.dispose();
  });

  it('an unchanged token is not announced, and a new one arrives well before expiry', async () => {
    const first = makeAccessToken(60_000);
    // MSAL-like cache: the same token until 5 s before expiry, then a new one
    const source = new ScriptedSource(async () =>
      Date.now() < first.expiresOnTimestamp - 5_000 ? first : makeAccessToken(60_000),
    );
    const { manager, tokens } = managerWith(source);
    manager.start();
    await flush();
    assert.equal(tokens.length, 1);
    await advance(42_000, 100);
    assert.equal(source.calls, 2);
    assert.equal(tokens.length, 1, 'an unchanged token is not announced');
    const waited = await advanceUntil(() => tokens.length === 2, 18_000, 100);
    assert.ok(
      Date.now() < first.expiresOnTimestamp - 1_000,
      `new token only ${first.expiresOnTimestamp - Date.now()} ms before expiry`,
    );
    // `as number`: the assertion of 2 above narrowed its type, but the calls went on during advanceUntil.
    assert.ok((source.calls as number) < 20, `re-checks: ${source.calls}`);
    assert.ok(waited > 0);
    manager.dispose();
  });

  it('a credential that keeps returning the same token inside the margin: that token is handed out until it expires', async () => {
    // A cache that never renews: the margin (min(5 s, 20 % of the life)) is then not kept, because no other valid
    // token exists; an expired one is never handed out.
    const only = makeAccessToken(60_000);
    const source = new ScriptedSource(async () => only);
    const { manager } = managerWith(source, { retryOptions: { maxAttempts: 1 } });
    assert.ok((await manager.getToken()).sameAs(await manager.getToken()));
    await advance(57_000, 500);
    assert.equal(manager.validToken(), undefined, 'inside the margin: not served from the cache');
    const late = manager.getToken({ timeout: 1_000 });
    await flush();
    const token = await late;
    assert.ok(
      token.expiresOn - Date.now() <= 5_000 && token.expiresOn > Date.now(),
      'the only valid token, with less than the margin left',
    );
    await advance(3_500, 500);
    const expired = manager.getToken({ timeout: 1_000 }).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await advance(1_500, 100);
    const outcome = await expired;
    assert.ok(outcome instanceof TokenUnavailableError, String(outcome));
    assert.match(outcome.message, /expired/);
    manager.dispose();
  });

  it('retries within a cycle with exponential backoff, then recovers', async () => {
    const source = new ScriptedSource(issue(100_000)).then(
      issue(100_000),
      failWith(networkError()),
      failWith(networkError()),
    );
    const { manager, tokens, failures } = managerWith(source, {
      retryOptions: { initialDelay: 1_000, backoffMultiplier: 2 },
    });
    manager.start();
    await flush();
    await advance(70_000, 100);
    assert.equal(source.calls, 2);
    await advance(1_000, 100);
    assert.equal(source.calls, 3);
    await advance(1_900, 100);
    assert.equal(source.calls, 3, 'second delay is twice the first');
    await advance(200, 100);
    assert.equal(source.calls, 4);
    assert.equal(tokens.length, 2);
    assert.equal(failures.length, 0);
    manager.dispose();
  });

  it('never stops: exhausted cycles are reported and retried before expiry, the valid token is served meanwhile', async () => {
    const source = new ScriptedSource(issue(100_000)).then(issue(100_000));
    source.otherwise(failWith(networkError()));
    const { manager, tokens, failures } = managerWith(source, {
      retryOptions: { maxAttempts: 3, initialDelay: 1_000, maxDelay: 8_000 },
    });
    manager.start();
    await flush();
    const first = must(tokens[0], 'the first token');
    await advance(80_000, 100);
    assert.ok(failures.length >= 1, 'the failed cycle is reported');
    const failure = must(failures[0], 'the failed cycle');
    assert.equal(failure.attempts, 3);
    assert.ok(failure.nextAttemptAt !== undefined && failure.nextAttemptAt < first.expiresOn);
    assert.equal(failure.validTokenExpiresOn, first.expiresOn);
    assert.equal(await manager.getToken(), first, 'the last valid token is handed out');
    // service still down at and past expiry: cycles keep coming
    await advance(40_000, 100);
    const failedSoFar = failures.length;
    assert.ok(failedSoFar >= 4, `cycles: ${failedSoFar}`);
    assert.equal(manager.validToken(), undefined);
    const waiting = manager.getToken({ timeout: 60_000 });
    source.otherwise(issue(100_000));
    await advanceUntil(() => tokens.length === 2, 10_000, 100);
    const fresh = await waiting;
    assert.equal(fresh, tokens[1]);
    manager.dispose();
  });

  it('isRetryable false stops the cycle after one attempt', async () => {
    const authFailure = Object.assign(new Error('AADSTS7000215: Invalid client secret provided.'), { statusCode: 401 });
    const source = new ScriptedSource(failWith(authFailure));
    const { manager, failures } = managerWith(source, { retryOptions: { isRetryable: () => false } });
    await assert.rejects(manager.getToken(), /Invalid client secret/);
    assert.equal(source.calls, 1);
    assert.equal(failures.length, 1);
    assert.equal(must(failures[0], 'the reported failure').attempts, 1);
    manager.dispose();
  });

  it('a TypeError from the credential is retried when isRetryable says so (p-retry alone would not)', async () => {
    const source = new ScriptedSource(issue(60_000)).then(
      failWith(new TypeError('Cannot read properties of undefined')),
    );
    const { manager } = managerWith(source, { retryOptions: { initialDelay: 100 } });
    const pending = manager.getToken({ timeout: 60_000 });
    await advance(200, 50);
    await pending;
    assert.equal(source.calls, 2);
    manager.dispose();
  });

  it('a caller that times out while the first request is still in flight gets a timeout as cause', async () => {
    const source = new ScriptedSource(hang());
    const { manager } = managerWith(source, { tokenRequestTimeout: 10_000 });
    const outcome = manager.getToken({ timeout: 1_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await advance(1_100, 100);
    const error = await outcome;
    assert.ok(error instanceof TokenUnavailableError);
    assert.ok(error.cause instanceof TokenRequestTimeoutError);
    manager.dispose();
  });

  it('a throwing isRetryable counts as not retryable', async () => {
    const source = new ScriptedSource(failWith(networkError()));
    const { manager } = managerWith(source, {
      retryOptions: {
        isRetryable: () => {
          throw new Error('oops');
        },
      },
    });
    await assert.rejects(manager.getToken(), TokenUnavailableError);
    assert.equal(source.calls, 1);
    manager.dispose();
  });

  it('honours Retry-After between attempts', async () => {
    const throttled = Object.assign(new Error('throttled'), { statusCode: 429, retryAfterInMs: 5_000 });
    const source = new ScriptedSource(issue(100_000)).then(failWith(throttled));
    const manager = new TokenManager(source.fetch, {
      tokenManagerOptions: { retryOptions: { jitter: 0, initialDelay: 100 } },
      random: () => 0,
    });
    const pending = manager.getToken({ timeout: 60_000 });
    await flush();
    assert.equal(source.calls, 1);
    await advance(4_900, 100);
    assert.equal(source.calls, 1, 'waits for Retry-After, not initialDelay');
    await advance(200, 100);
    assert.equal(source.calls, 2);
    await pending;
    manager.dispose();
  });

  it('tokenRequestTimeout bounds a request even when the credential ignores aborts', async () => {
    const source = new ScriptedSource(hangDeaf());
    const { manager } = managerWith(source, {
      tokenRequestTimeout: 2_000,
      retryOptions: { maxAttempts: 2, initialDelay: 100 },
    });
    const pending = manager.getToken({ timeout: 60_000 });
    const outcome = pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    await advance(4_500, 100);
    const error = await outcome;
    assert.ok(error instanceof TokenUnavailableError, String(error));
    assert.ok(error.cause instanceof TokenRequestTimeoutError);
    assert.match(error.message, /tokenRequestTimeout \(2000 ms\)/);
    assert.equal(source.calls, 2);
    manager.dispose();
  });

  it('a waiting caller gives up after its timeout with the last cause', async () => {
    const source = new ScriptedSource(failWith(networkError()));
    const { manager } = managerWith(source, {
      retryOptions: { maxAttempts: 100, initialDelay: 1_000, maxDelay: 1_000 },
    });
    const outcome = manager.getToken({ timeout: 3_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await advance(3_100, 100);
    const error = await outcome;
    assert.ok(error instanceof TokenUnavailableError);
    assert.match(error.message, /within 3000 ms; last error: Error: connect ECONNREFUSED/);
    manager.dispose();
  });

  it('1,000 concurrent callers share one request', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const source = new ScriptedSource(async () => {
      await gate;
      return makeAccessToken(60_000);
    });
    const { manager } = managerWith(source);
    const callers = Array.from({ length: 1_000 }, () => manager.getToken());
    await flush();
    release();
    const tokens = await Promise.all(callers);
    assert.equal(source.calls, 1);
    assert.ok(tokens.every((t) => t === tokens[0]));
    manager.dispose();
  });

  it('dispose during a fetch aborts it, rejects callers and schedules nothing more', async () => {
    const source = new ScriptedSource(hang());
    const { manager } = managerWith(source);
    manager.start();
    const outcome = manager.getToken().then(
      () => undefined,
      (e: unknown) => e,
    );
    await flush();
    assert.equal(source.calls, 1);
    manager.dispose();
    assert.ok((await outcome) instanceof DisposedError);
    assert.ok(
      must(source.signals[0], 'the signal of the credential request').aborted,
      'the credential request was aborted',
    );
    await advance(120_000, 1_000);
    assert.equal(source.calls, 1);
    await assert.rejects(manager.getToken(), DisposedError);
  });

  it('stop() leaves no schedule; start() resumes from the cached token', async () => {
    const source = new ScriptedSource(issue(100_000));
    const { manager } = managerWith(source);
    manager.start();
    await flush();
    manager.stop();
    await advance(200_000, 1_000);
    assert.equal(source.calls, 1);
    manager.start();
    await flush();
    assert.equal(source.calls, 2, 'the cached token expired while stopped, so start fetches');
    manager.dispose();
  });
});

describe('TokenManager with real timers', () => {
  it('dispose leaves no timer behind', async () => {
    const source = new ScriptedSource(hang());
    const manager = new TokenManager(source.fetch, {
      tokenManagerOptions: { retryOptions: { isRetryable: retryAll } },
    });
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    manager.start();
    const outcome = manager.getToken().catch((e: unknown) => e);
    await new Promise<void>((resolve) => setImmediate(resolve));
    manager.dispose();
    assert.ok((await outcome) instanceof DisposedError);
    await new Promise<void>((resolve) => setImmediate(resolve));
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(after, before);
  });
});

describe('TokenManager with a token valid for longer than a timer waits', () => {
  it('waits for its refresh in steps a timer takes: a token valid for 60 days is not refreshed at once', async () => {
    const lifetime = 60 * 24 * 3_600_000;
    const source = new ScriptedSource(issue(lifetime));
    const { manager, tokens } = managerWith(source);
    const delays: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      delays.push(args[1] ?? 0);
      return realSetTimeout(...args);
    }) as typeof setTimeout;
    try {
      manager.start();
      while (tokens.length === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    // Without the steps, Node.js would run the refresh timer after 1 ms (TimeoutOverflowWarning).
    assert.ok(
      delays.every((delay) => delay <= 2 ** 31 - 1),
      `every timer waits at most 2^31 - 1 ms, got ${JSON.stringify(delays)}`,
    );
    assert.ok(delays.includes(2 ** 31 - 1), 'the refresh is scheduled 2^31 - 1 ms ahead, then again');
    assert.equal(source.calls, 1);
    manager.dispose();
  });
});

describe('TokenManager options', () => {
  const source = async () => makeAccessToken(1_000);
  const cases: Array<[string, TokenManagerOptions, RegExp]> = [
    ['ratio 0', { expirationRefreshRatio: 0 }, /"expirationRefreshRatio": must be greater than 0 and at most 1, got 0/],
    ['ratio above 1', { expirationRefreshRatio: 1.5 }, /"expirationRefreshRatio".*got 1\.5/],
    ['ratio NaN', { expirationRefreshRatio: Number.NaN }, /"expirationRefreshRatio": expected a finite number/],
    ['negative lower bound', { lowerRefreshBounds: -1 }, /"lowerRefreshBounds": must not be negative, got -1/],
    ['zero timeout', { tokenRequestTimeout: 0 }, /"tokenRequestTimeout": must be greater than 0/],
    [
      'timeout beyond a timer',
      { tokenRequestTimeout: 2 ** 31 },
      /"tokenRequestTimeout": must be at most 2147483647 ms \(about 24\.8 days, the longest a Node\.js timer waits\), got 2147483648/,
    ],
    [
      'maxDelay beyond a timer',
      { retryOptions: { maxDelay: 1e12 } },
      /"retryOptions.maxDelay": must be at most 2147483647 ms/,
    ],
    [
      'string timeout',
      { tokenRequestTimeout: '5' as unknown as number },
      /"tokenRequestTimeout": expected a finite number, got the string "5"/,
    ],
    [
      'maxAttempts 0',
      { retryOptions: { maxAttempts: 0 } },
      /"retryOptions.maxAttempts": must be an integer of at least 1, got 0/,
    ],
    ['maxAttempts 1.5', { retryOptions: { maxAttempts: 1.5 } }, /"retryOptions.maxAttempts"/],
    [
      'negative initialDelay',
      { retryOptions: { initialDelay: -5 } },
      /"retryOptions.initialDelay": must not be negative/,
    ],
    [
      'maxDelay below initialDelay',
      { retryOptions: { initialDelay: 5_000, maxDelay: 1_000 } },
      /"retryOptions.maxDelay": must not be less than/,
    ],
    [
      'multiplier below 1',
      { retryOptions: { backoffMultiplier: 0.5 } },
      /"retryOptions.backoffMultiplier": must be at least 1/,
    ],
    ['jitter above 1', { retryOptions: { jitter: 2 } }, /"retryOptions.jitter"/],
    [
      'isRetryable not a function',
      { retryOptions: { isRetryable: true as unknown as () => boolean } },
      /"retryOptions.isRetryable": expected a function, got a value of type boolean/,
    ],
    ['refreshJitter 1', { refreshJitter: 1 }, /"refreshJitter"/],
    [
      'retryOptions not an object',
      { retryOptions: 3 as unknown as object },
      /"tokenManagerOptions.retryOptions": expected an object/,
    ],
  ];
  for (const [name, options, message] of cases) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => new TokenManager(source, { tokenManagerOptions: options }),
        (error: unknown) => {
          assert.ok(error instanceof TypeError);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  it('fills the documented defaults', () => {
    const { options } = new TokenManager(source);
    assert.equal(options.expirationRefreshRatio, 0.7);
    assert.equal(options.lowerRefreshBounds, 0);
    assert.equal(options.tokenRequestTimeout, 15_000);
    assert.equal(options.refreshJitter, 0.1);
    assert.equal(options.retryOptions.maxAttempts, 3);
    assert.equal(options.retryOptions.initialDelay, 1_000);
    assert.equal(options.retryOptions.maxDelay, 30_000);
    assert.equal(options.retryOptions.backoffMultiplier, 2);
    assert.equal(options.retryOptions.jitter, 0.2);
  });
});
