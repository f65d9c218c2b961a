/** Follows token rotations of one provider of this library: when the token came, when every connection had it. */
import { performance } from 'node:perf_hooks';
import type { EntraCredentialsProvider, ReauthenticatedEvent, TokenInfo } from '../../lib/index.js';
import type { TimedCredential } from './bench-world.js';

export interface Rotation {
  /** performance.now() when the credential handed over the new token: the start of the rotation. */
  tokenAt: number;
  /** When the provider emitted `tokenRefreshed` (it does so after it has written the AUTHs). */
  refreshedAt: number;
  /** CPU time (user + system) the process spent from the new token to `tokenRefreshed`, ms. */
  writeCpuMs: number;
  /** When the last expected connection reported `reauthenticated`; NaN until then. */
  doneAt: number;
  /** Expiry of the new token (epoch ms): identifies the rotation in `reauthenticated` events. */
  expiresOn: number;
  /** `reauthenticated` events for this token, by method. */
  byAuth: number;
  byReconnect: number;
  /** Connections expected to re-authenticate. */
  expected: number;
}

/**
 * Records every rotation of `provider` from now on. `expected()` is the number of connections that must follow;
 * `counts` picks the connections that count (by default all).
 */
export class RotationTracker {
  readonly rotations: Rotation[] = [];
  reauthenticationFailures = 0;
  readonly #provider: EntraCredentialsProvider;
  readonly #waiters = new Set<(rotation: Rotation) => void>();
  readonly #onRefreshed: (info: TokenInfo) => void;
  readonly #onReauthenticated: (event: ReauthenticatedEvent) => void;
  readonly #onFailed: () => void;

  constructor(
    provider: EntraCredentialsProvider, credential: TimedCredential, expected: () => number,
    counts: (event: ReauthenticatedEvent) => boolean = () => true,
  ) {
    this.#provider = provider;
    this.#onRefreshed = (info) => {
      const now = performance.now();
      const cpu = process.cpuUsage(credential.lastTokenCpu);
      const rotation: Rotation = {
        tokenAt: Number.isNaN(credential.lastTokenAt) ? now : credential.lastTokenAt,
        refreshedAt: now, writeCpuMs: credential.lastTokenCpu ? (cpu.user + cpu.system) / 1000 : Number.NaN, doneAt: Number.NaN, expiresOn: info.expiresOn, byAuth: 0, byReconnect: 0, expected: expected(),
      };
      this.rotations.push(rotation);
      this.#check(rotation);
    };
    this.#onReauthenticated = (event) => {
      if (!counts(event)) return;
      const rotation = this.rotations.findLast((r) => r.expiresOn === event.token.expiresOn);
      if (!rotation) return;
      if (event.method === 'auth') rotation.byAuth++;
      else rotation.byReconnect++;
      this.#check(rotation);
    };
    this.#onFailed = () => { this.reauthenticationFailures++; };
    provider.on('tokenRefreshed', this.#onRefreshed);
    provider.on('reauthenticated', this.#onReauthenticated);
    provider.on('reauthenticationFailed', this.#onFailed);
  }

  /** Resolves with the next rotation in which every expected connection re-authenticated. */
  nextCompleted(timeoutMs = 20_000): Promise<Rotation> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        const last = this.rotations.at(-1);
        reject(new Error(`no completed rotation within ${timeoutMs} ms (last: ${last ? `${last.byAuth + last.byReconnect}/${last.expected} re-authenticated` : 'none'})`));
      }, timeoutMs);
      const waiter = (rotation: Rotation) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve(rotation);
      };
      this.#waiters.add(waiter);
    });
  }

  stop(): void {
    this.#provider.off('tokenRefreshed', this.#onRefreshed);
    this.#provider.off('reauthenticated', this.#onReauthenticated);
    this.#provider.off('reauthenticationFailed', this.#onFailed);
  }

  #check(rotation: Rotation): void {
    if (!Number.isNaN(rotation.doneAt) || rotation.byAuth + rotation.byReconnect < rotation.expected) return;
    rotation.doneAt = performance.now();
    for (const waiter of [...this.#waiters]) waiter(rotation);
  }
}
