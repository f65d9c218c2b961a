/** Follows token rotations of one provider of this library: when the token came, when every connection had it. */
import { performance } from 'node:perf_hooks';
import type { EntraCredentialsProvider, ReauthenticatedEvent, TokenInfo } from '../../lib/index.js';
import type { TimedCredential } from './bench-world.js';

export interface Rotation {
  /** performance.now() when the credential handed over the new token: the start of the rotation. */
  tokenAt: number;
  /**
   * When the provider handed the token to the last connection that existed when the tracker was created (a
   * subscriber of the tracker's own, added after them, is handed it next): every AUTH in place is written by then.
   */
  writtenAt: number;
  /** CPU time (user + system) the process spent from the new token to `writtenAt`, ms. */
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
  /** Last AUTH written, by token expiry (written before `tokenRefreshed` creates the rotation). */
  readonly #lastWrite = new Map<number, { at: number; cpuMs: number }>();
  readonly #unsubscribeProbe: () => void;

  constructor(
    provider: EntraCredentialsProvider,
    credential: TimedCredential,
    expected: () => number,
    counts: (event: ReauthenticatedEvent) => boolean = () => true,
  ) {
    this.#provider = provider;
    this.#onRefreshed = (info) => {
      const now = performance.now();
      const rotation: Rotation = {
        tokenAt: Number.isNaN(credential.lastTokenAt) ? now : credential.lastTokenAt,
        writtenAt: Number.NaN,
        writeCpuMs: Number.NaN,
        doneAt: Number.NaN,
        expiresOn: info.expiresOn,
        byAuth: 0,
        byReconnect: 0,
        expected: expected(),
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
    this.#onFailed = () => {
      this.reauthenticationFailures++;
    };
    // Not the `ioredis-entraid:reauth` tracing channel: a subscriber there makes the library build a trace per AUTH,
    // which is not what is measured. The provider hands a token to its subscribers in the order they subscribed.
    this.#unsubscribeProbe = provider.subscribe({
      onToken: (token) => {
        const cpu = credential.lastTokenCpu ? process.cpuUsage(credential.lastTokenCpu) : undefined;
        this.#lastWrite.set(token.expiresOn, {
          at: performance.now(),
          cpuMs: cpu ? (cpu.user + cpu.system) / 1000 : Number.NaN,
        });
      },
    });
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
        reject(
          new Error(
            `no completed rotation within ${timeoutMs} ms (last: ${last ? `${last.byAuth + last.byReconnect}/${last.expected} re-authenticated` : 'none'})`,
          ),
        );
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
    this.#unsubscribeProbe();
  }

  #check(rotation: Rotation): void {
    if (!Number.isNaN(rotation.doneAt) || rotation.byAuth + rotation.byReconnect < rotation.expected) return;
    rotation.doneAt = performance.now();
    const written = this.#lastWrite.get(rotation.expiresOn);
    if (written) {
      rotation.writtenAt = written.at;
      rotation.writeCpuMs = written.cpuMs;
    }
    for (const waiter of [...this.#waiters]) waiter(rotation);
  }
}
