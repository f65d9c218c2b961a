// Shutdown while the token service does not answer: after the application's shutdown, nothing the library started
// may keep the process alive, whatever the credential does. Each case runs in a child process (teardown-child.ts)
// that must exit by itself; the parent only waits for that (the bound is a failure detector, not a timing check).
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import type { TokenManagerOptions } from '../../lib/manager/options.js';
import { EntraEmulator } from '../../lib/testing/entra-emulator.js';
import { startRedisServer, waitUntil, type RedisServerHandle } from '../../lib/testing/redis-server.js';
import { must } from '../support/must.js';

const CHILD = fileURLToPath(new URL('./teardown-child.ts', import.meta.url));
/** Far longer than any shutdown takes; a child still running then is held up by something. */
const EXIT_BOUND_MS = 20_000;
/** Longer than EXIT_BOUND_MS: a waiter's or request's timer that kept the process alive would show. */
const LONG_REQUEST_TIMEOUT: TokenManagerOptions = { tokenRequestTimeout: 120_000, retryOptions: { maxAttempts: 1 } };

describe('teardown while the token service hangs', () => {
  let emulator: EntraEmulator;
  let redis: RedisServerHandle;
  let restoreEnv: () => void;

  before(async () => {
    [emulator, redis] = await Promise.all([EntraEmulator.start(), startRedisServer()]);
    emulator.addManagedIdentity({ kind: 'system' });
    await emulator.setFault({ kind: 'hang', endpoint: 'managed-identity' });
    restoreEnv = emulator.applyManagedIdentityEnv();
  });
  const children: ChildProcess[] = [];
  afterEach(() => {
    // A child left by a failed test would keep this process alive.
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  after(async () => {
    restoreEnv();
    await Promise.all([emulator.stop(), redis.stop()]);
  });

  function start(
    source: 'managed-identity' | 'deaf-credential',
    shutdown: 'dispose' | 'last-client',
    options: TokenManagerOptions,
  ): {
    child: ChildProcess;
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    output(): string;
  } {
    let output = '';
    const child = fork(CHILD, [source, shutdown, String(redis.port), JSON.stringify(options)], {
      execArgv: ['--import', 'tsx'],
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    children.push(child);
    for (const stream of [must(child.stdout, "the child's stdout"), must(child.stderr, "the child's stderr")])
      stream.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
    const exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    return { child, exited, output: () => output };
  }

  /** Asks the child to shut down, then awaits its exit (killing it past the bound). */
  async function shutDownAndAwaitExit(run: ReturnType<typeof start>): Promise<void> {
    const down = once(run.child, 'message');
    run.child.send('shutdown');
    assert.equal((await down)[0], 'down');
    let bound: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      run.exited,
      new Promise<'still running'>((resolve) => {
        bound = setTimeout(() => resolve('still running'), EXIT_BOUND_MS);
      }),
    ]);
    clearTimeout(bound);
    if (outcome === 'still running') {
      run.child.kill('SIGKILL');
      await run.exited;
      assert.fail(`the process did not exit by itself after shutdown\n${run.output()}`);
    }
    assert.deepEqual(outcome, { code: 0, signal: null }, run.output());
  }

  async function requestArrived(): Promise<void> {
    await emulator.waitForRequests(1, { counter: 'managedIdentity', timeoutMs: 30_000 });
  }

  for (const shutdown of ['dispose', 'last-client'] as const) {
    const how = shutdown === 'dispose' ? 'quit() and dispose()' : 'quit() of the last client, without dispose()';
    it(`managed identity, request unanswered: the process exits after ${how}`, async () => {
      emulator.resetCounters();
      const run = start('managed-identity', shutdown, LONG_REQUEST_TIMEOUT);
      await requestArrived();
      await shutDownAndAwaitExit(run);
      await waitUntil(() => emulator.hungRequests === 0, { description: 'the abandoned request to be closed' });
    });

    it(`a credential that never settles and ignores aborts: the process exits after ${how}`, async () => {
      const run = start('deaf-credential', shutdown, LONG_REQUEST_TIMEOUT);
      assert.equal((await once(run.child, 'message'))[0], 'requested');
      await shutDownAndAwaitExit(run);
    });
  }

  it('managed identity: each abandoned attempt closes its request, none piles up', async () => {
    emulator.resetCounters();
    const run = start('managed-identity', 'dispose', {
      tokenRequestTimeout: 200,
      retryOptions: { maxAttempts: 2, initialDelay: 20, maxDelay: 50 },
    });
    // Four requests, so at least three attempts were abandoned at their timeout; at most one is in flight.
    await emulator.waitForRequests(4, { counter: 'managedIdentity', timeoutMs: 30_000 });
    await waitUntil(() => emulator.hungRequests <= 1, { description: 'abandoned requests to be closed' });
    await shutDownAndAwaitExit(run);
    await waitUntil(() => emulator.hungRequests === 0, { description: 'the last request to be closed' });
  });
});
