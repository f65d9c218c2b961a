import type { EntraToken } from '../token/entra-token.js';
import type { TokenSubscriber } from './credentials-provider.js';

/**
 * Connections handed a new token per turn of the event loop. Handing a token to a live connection writes its AUTH
 * (tens of microseconds each): 1,000 connections in one turn would hold every other callback of the process for tens
 * of milliseconds. In batches, replies and the application's own work run between them.
 */
export const FAN_OUT_BATCH_SIZE = 50;

/**
 * Hands each new token to every subscriber, a batch per turn of the event loop. A newer token supersedes a fan-out
 * still running (the newer one reaches everybody); `onDone` runs once per token, when every subscriber has it or when
 * a newer token took over, so completions come in the order the tokens came.
 */
export class TokenFanOut {
  #running: { token: EntraToken; onDone: () => void; immediate: NodeJS.Immediate | undefined } | undefined;

  constructor(
    private readonly subscribers: ReadonlySet<TokenSubscriber>,
    private readonly batchSize = FAN_OUT_BATCH_SIZE,
  ) {}

  deliver(token: EntraToken, onDone: () => void): void {
    this.#finishRunning();
    const queue = [...this.subscribers];
    const running = { token, onDone, immediate: undefined as NodeJS.Immediate | undefined };
    this.#running = running;
    const handOut = (from: number) => {
      running.immediate = undefined;
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
      if (end < queue.length) running.immediate = setImmediate(handOut, end);
      else this.#finishRunning();
    };
    handOut(0);
  }

  /** Stops a fan-out in progress without completing it (the provider is disposed). */
  cancel(): void {
    if (this.#running?.immediate) clearImmediate(this.#running.immediate);
    this.#running = undefined;
  }

  #finishRunning(): void {
    const running = this.#running;
    if (!running) return;
    if (running.immediate) clearImmediate(running.immediate);
    this.#running = undefined;
    running.onDone();
  }
}
