/** A lane: one client, one key space, one write in flight, every acknowledgement recorded. */
import { setTimeout as sleep } from 'node:timers/promises';
import { PACE_MS } from './settings.js';
import { describeError } from './util.js';

export class Lane {
  readonly acked: number[] = [];
  readonly failures: Array<{ start: number; end: number; message: string }> = [];
  lastSuccessAt = 0;
  /** Completion times of successes, sampled for recovery measurement (first success after a given time). */
  readonly #successProbes: Array<{ after: number; at: number | undefined }> = [];

  constructor(
    readonly name: string,
    readonly target: 'standalone' | 'cluster',
    readonly write: (i: number) => Promise<unknown>,
    readonly onAck: (i: number, reply: unknown, start: number) => void = () => {},
    readonly pace: () => number = () => PACE_MS,
  ) {}

  /** Records the completion time of the first success completed after `after`. */
  probe(after: number): { readonly at: number | undefined } {
    const probe = { after, at: undefined as number | undefined };
    this.#successProbes.push(probe);
    return probe;
  }

  async run(running: () => boolean): Promise<void> {
    for (let i = 0; running(); i++) {
      const start = Date.now();
      try {
        const reply = await this.write(i);
        const end = Date.now();
        this.acked.push(i);
        this.lastSuccessAt = end;
        this.onAck(i, reply, start);
        for (const probe of this.#successProbes) if (probe.at === undefined && end >= probe.after) probe.at = end;
      } catch (error) {
        this.failures.push({ start, end: Date.now(), message: describeError(error) });
        await sleep(100);
      }
      await sleep(this.pace());
    }
  }
}
