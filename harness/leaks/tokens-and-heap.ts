/** A credential that mints tokens of any reported lifetime, garbage collection and heap readings, waiting for a client's end. */
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import type { Redis } from 'ioredis';
import type { EntraEmulator } from '../../lib/testing/entra-emulator.js';

/** Mints tokens with the Entra emulator's key: `exp` an hour away, `expiresOnTimestamp` as the caller says. */
export class MintingCredential implements TokenCredential {
  issued = 0;
  constructor(
    readonly entra: EntraEmulator,
    readonly oid: string,
    public lifetimeMs: number,
  ) {}

  async getToken(): Promise<AccessToken> {
    const now = Date.now();
    this.issued++;
    const token = this.entra.mint({ oid: this.oid, exp: Math.floor(now / 1000) + 3_600 });
    return { token, expiresOnTimestamp: now + this.lifetimeMs };
  }
}

/** `gc()` from --expose-gc, or one obtained at run time when the flag was not given. */
export function garbageCollector(): () => void {
  const given = globalThis.gc;
  if (typeof given === 'function')
    return () => {
      given();
    };
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export async function heapAfterGc(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(5);
  }
  return process.memoryUsage().heapUsed;
}

export function whenEnded(client: Redis): Promise<void> {
  if (client.status === 'end') return Promise.resolve();
  return new Promise((resolve) => client.once('end', () => resolve()));
}
