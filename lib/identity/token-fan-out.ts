import type { EntraToken } from '../token/entra-token.js';
import type { TokenSubscriber } from './credentials-provider.js';

/**
 * Connections handed a new token per turn of the event loop. Handing a token to a live connection writes its AUTH
 * (10 to 30 microseconds each, most of it the socket write): 1,000 connections in one turn would hold every other
 * callback of the process for tens of milliseconds, as 1,000 plain `redis.auth()` calls do. In batches, replies and
 * the application's own work run between them. 100 was measured against 20, 250 and 1,000 (bench/reauth.ts): smaller
 * batches cost more time in all (every turn reads a few replies and wakes the server again) without lowering the
 * application's p99; one turn for all costs the least time but holds the application's commands as long as the plain
 * burst does.
 */
export const FAN_OUT_BATCH_SIZE = 100;

let defaultBatchSize = FAN_OUT_BATCH_SIZE;

/**
 * Sets the batch size of fan-outs created from now on (providers created afterwards); returns the previous one.
 * Only for measuring the batch size against command latency (bench/reauth.ts).
 * @internal
 */
export function setFanOutBatchSize(size: number): number {
  if (!Number.isInteger(size) || size < 1) throw new RangeError('The batch size must be a positive integer');
  const previous = defaultBatchSize;
  defaultBatchSize = size;
  return previous;
}

/**
 * Hands each new token to every subscriber, the first batch at once and one more per turn of the event loop. A newer
 * token supersedes a fan-out still running: the newer one reaches everybody.
 */
export class TokenFanOut {
  #immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly subscribers: ReadonlySet<TokenSubscriber>,
    private readonly batchSize = defaultBatchSize,
  ) {}

  deliver(token: EntraToken): void {
    this.cancel();
    const queue = [...this.subscribers];
    const handOut = (from: number) => {
      this.#immediate = undefined;
      const end = Math.min(from + this.batchSize, queue.length);
      for (let index = from; index < end; index++) {
        const subscriber = queue[index] as TokenSubscriber;
        if (!this.subscribers.has(subscriber)) continue; // detached meanwhile
        try {
          subscriber.onToken(token);
        } catch {
          // one failing subscriber must not keep the token from the others
        }
      }
      if (end < queue.length) this.#immediate = setImmediate(handOut, end);
    };
    handOut(0);
  }

  /** Stops a fan-out in progress (a newer token, or the provider is disposed). */
  cancel(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
  }
}
