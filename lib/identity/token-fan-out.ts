import type { EntraToken } from '../token/entra-token.js';
import type { TokenSubscriber } from './credentials-provider.js';

/**
 * Connections handed a new token per turn of the event loop. Handing a token to a live connection writes its AUTH
 * (tens of microseconds each): 1,000 connections in one turn would hold every other callback of the process for tens
 * of milliseconds. In batches, replies and the application's own work run between them.
 */
export const FAN_OUT_BATCH_SIZE = 20;

/**
 * Hands each new token to every subscriber, the first batch at once and one more per turn of the event loop. A newer
 * token supersedes a fan-out still running: the newer one reaches everybody.
 */
export class TokenFanOut {
  #immediate: NodeJS.Immediate | undefined;

  constructor(
    private readonly subscribers: ReadonlySet<TokenSubscriber>,
    private readonly batchSize = FAN_OUT_BATCH_SIZE,
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
