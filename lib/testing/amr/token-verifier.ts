// Token verification as the AMR front end does it: an RS256 JWT of the emulated tenant, for the Redis audience, not
// expired, presented with its `oid` as the username; and the `refuseTokens` fault that turns good tokens away.
import type { KeyObject } from 'node:crypto';
import { verifyJwt } from '../jwt.js';
import { REDIS_RESOURCE } from '../../token/redis-audience.js';
import type { AuthOutcome } from './types.js';

/** The audience Azure's Redis front end accepts. */
export const AMR_AUDIENCE = REDIS_RESOURCE;

/** Decides whether a `user` / token pair authenticates. Never throws, never logs. */
export class TokenVerifier {
  #refuse: ((claims: Record<string, unknown>) => boolean) | undefined;

  constructor(
    readonly publicKey: KeyObject,
    readonly audience: string,
  ) {}

  /** Verifies a token presented with `user`. Never throws, never logs. */
  verify(user: Buffer, token: Buffer): AuthOutcome {
    let result: ReturnType<typeof verifyJwt>;
    try {
      result = verifyJwt(token.toString(), this.publicKey, this.audience);
    } catch {
      return { ok: false }; // e.g. a payload that is JSON but not an object
    }
    if (!result.ok) return { ok: false };
    const claims: unknown = result.claims; // a verified payload may still be any JSON value
    if (typeof claims !== 'object' || claims === null) return { ok: false };
    const { oid, exp } = result.claims;
    if (typeof oid !== 'string' || oid.length === 0 || user.toString() !== oid) return { ok: false };
    if (this.#refuse?.(result.claims) === true) return { ok: false };
    return { ok: true, oid, expiresAt: (exp as number) * 1000 };
  }

  /** Refuses every otherwise valid token whose claims match `predicate`; `undefined` accepts them again. */
  refuseTokens(predicate: ((claims: Record<string, unknown>) => boolean) | undefined): void {
    this.#refuse = predicate;
  }
}
