import type { AccessToken } from '@azure/core-auth';
import { createSigningKey, signJwt, type JwtClaims, type SigningKey } from '../../lib/testing/jwt.js';

const key: SigningKey = createSigningKey();

/** A JWT as Entra ID would issue it for Redis, with `lifetimeMs` left from now (Date.now(), possibly mocked). */
export function makeAccessToken(lifetimeMs: number, claims: JwtClaims = {}): AccessToken {
  const expiresOnTimestamp = Date.now() + lifetimeMs;
  const token = signJwt(
    {
      oid: 'oid-1',
      tid: 'tenant-1',
      aud: 'https://redis.azure.com',
      exp: expiresOnTimestamp / 1000,
      jti: Math.random().toString(36).slice(2),
      ...claims,
    },
    key,
  );
  return { token, expiresOnTimestamp };
}

/** A programmable token source for unit tests: each call takes the next behaviour, or the default one. */
export class ScriptedSource {
  calls = 0;
  readonly signals: AbortSignal[] = [];
  readonly #script: Array<(signal: AbortSignal) => Promise<AccessToken | null>> = [];
  #fallback: (signal: AbortSignal) => Promise<AccessToken | null>;

  constructor(fallback: (signal: AbortSignal) => Promise<AccessToken | null>) {
    this.#fallback = fallback;
  }

  then(...steps: Array<(signal: AbortSignal) => Promise<AccessToken | null>>): this {
    this.#script.push(...steps);
    return this;
  }

  otherwise(fallback: (signal: AbortSignal) => Promise<AccessToken | null>): this {
    this.#fallback = fallback;
    return this;
  }

  readonly fetch = (signal: AbortSignal): Promise<AccessToken | null> => {
    this.calls++;
    this.signals.push(signal);
    const step = this.#script.shift() ?? this.#fallback;
    return step(signal);
  };
}

export const issue = (lifetimeMs: number, claims?: JwtClaims) => async () => makeAccessToken(lifetimeMs, claims);
export const failWith = (error: Error) => async () => {
  throw error;
};
/** Never settles on its own; rejects when aborted, like a well-behaved credential. */
export const hang = () => (signal: AbortSignal) =>
  new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
/** Never settles, ignoring aborts, like a badly behaved credential. */
export const hangDeaf = () => () => new Promise<never>(() => {});

export function networkError(message = 'connect ECONNREFUSED 127.0.0.1:1'): Error {
  return Object.assign(new Error(message), { code: 'ECONNREFUSED' });
}
