/** Waiting on a condition by polling it, for scenarios whose conditions are plain state (no event to await). */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `condition` every `intervalMs` until it holds; rejects after `timeoutMs` with `description`. Waits with
 * node:timers/promises, not the global setTimeout, so a scenario that tracks the globals' timers does not see its own.
 */
export async function waitFor(
  condition: () => boolean,
  description: string,
  timeoutMs = 30_000,
  intervalMs = 5,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await sleep(intervalMs);
  }
}
