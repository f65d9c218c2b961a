import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The abort signal of the token request in progress, visible to everything that runs on its behalf (the credential,
 * the credential's HTTP client), however deep, without passing it along. Credentials that ignore the signal they
 * are given (ManagedIdentityCredential does not pass it to its HTTP request) can thereby still be made to drop
 * their request: see lib/identity/abortable-http-client.ts.
 */
const requestSignal = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` with `signal` as the current token request's abort signal. */
export function runWithRequestSignal<T>(signal: AbortSignal, fn: () => T): T {
  return requestSignal.run(signal, fn);
}

/** The abort signal of the token request this code runs for, or undefined outside of one. */
export function currentRequestSignal(): AbortSignal | undefined {
  return requestSignal.getStore();
}
