import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The abort signal of the token request in progress, visible to everything that runs on its behalf (the credential,
 * the credential's HTTP client), however deep, without passing it along. Credentials that ignore the signal they
 * are given (ManagedIdentityCredential does not pass it to its HTTP request, and MSAL shares one managed-identity
 * HTTP client across the process) can thereby still be made to drop their request: see
 * lib/identity/abortable-http-client.ts.
 *
 * On Node.js 22 the storage's first `run()` installs a process-wide promise hook that every promise of the
 * application pays for (about 10 % more CPU per pipelined command, bench/promise-hook.ts) until `disable()`. So the
 * storage is enabled only while a token request is live (a few milliseconds per token) and disabled when the last
 * live one is over.
 */
const requestSignal = new AsyncLocalStorage<AbortSignal>();
/** Token requests started and not yet over (settled or abandoned). */
let live = 0;

/** A token request running with its signal current; `end()` (idempotent) once it settled or was abandoned. */
export interface RequestScope<T> {
  readonly value: T;
  end(): void;
}

/** Runs `fn` with `signal` as the current token request's abort signal, until `end()` of the returned scope. */
export function runWithRequestSignal<T>(signal: AbortSignal, fn: () => T): RequestScope<T> {
  live++;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    if (--live === 0) requestSignal.disable();
  };
  try {
    return { value: requestSignal.run(signal, fn), end };
  } catch (error) {
    end();
    throw error;
  }
}

/**
 * The abort signal of the token request this code runs for, or undefined outside of one (and once no token request
 * is live any more).
 */
export function currentRequestSignal(): AbortSignal | undefined {
  return requestSignal.getStore();
}
