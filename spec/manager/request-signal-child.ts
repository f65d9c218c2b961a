// Child process of request-signal.test.ts: node:test installs async hooks of its own, so whether the library leaves
// a promise hook installed can only be seen in a process without it. Prints one JSON line of observations.
import { executionAsyncResource } from 'node:async_hooks';
import { currentRequestSignal } from '../../lib/manager/request-signal.js';
import { TokenManager, type AccessTokenSource } from '../../lib/manager/token-manager.js';
import { makeAccessToken } from '../support/fake-credential.js';

/**
 * True when a promise hook is installed: inside a promise reaction, `executionAsyncResource()` is the reaction's
 * promise only when promises are tracked (async_hooks with promise hooks, as AsyncLocalStorage uses on Node.js 22).
 */
function promiseHookInstalled(): Promise<boolean> {
  return new Promise((resolve) => {
    const reaction: Promise<void> = Promise.resolve().then(() => resolve(executionAsyncResource() === reaction));
  });
}

function manager(source: AccessTokenSource, tokenRequestTimeout = 10_000): TokenManager {
  return new TokenManager(source, { tokenManagerOptions: { tokenRequestTimeout, retryOptions: { maxAttempts: 1 } } });
}

async function main(): Promise<void> {
  const before = await promiseHookInstalled();

  let duringRequest = false;
  let signalCurrent = false;
  const settling = manager(async (signal) => {
    await new Promise((resolve) => setImmediate(resolve));
    signalCurrent = currentRequestSignal() === signal;
    duringRequest = await promiseHookInstalled();
    return makeAccessToken(60_000);
  });
  await settling.getToken();
  settling.dispose();
  const afterSettled = await promiseHookInstalled();

  // A credential that ignores its signal and never settles, abandoned at its timeout.
  const deaf = manager(() => new Promise(() => undefined), 50);
  const abandoned = await deaf.getToken().then(
    () => false,
    () => true,
  );
  deaf.dispose();
  // The caller's wait may end a moment before the request's own timeout abandons the request: poll, within a bound
  // far beyond any scheduling delay.
  let afterAbandoned = await promiseHookInstalled();
  for (const until = Date.now() + 5_000; afterAbandoned && Date.now() < until;) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    afterAbandoned = await promiseHookInstalled();
  }

  process.stdout.write(
    `${JSON.stringify({ before, signalCurrent, duringRequest, afterSettled, abandoned, afterAbandoned })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
