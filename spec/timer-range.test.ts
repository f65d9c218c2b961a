import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { clearTimerAt, MAX_TIMER_MS, setTimerAt } from '../lib/timer-range.js';

const DAY_MS = 24 * 3_600_000;

describe('setTimerAt', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());

  it('waits for an instant beyond a timer’s range in steps, and runs once at it', () => {
    const runs: string[] = [];
    setTimerAt(60 * DAY_MS, (arg: string) => runs.push(arg), 'due');
    // A plain setTimeout of 60 days would run after 1 ms.
    mock.timers.tick(1);
    mock.timers.tick(MAX_TIMER_MS);
    mock.timers.tick(MAX_TIMER_MS);
    assert.deepEqual(runs, [], 'ran before its instant');
    mock.timers.tick(60 * DAY_MS - 2 * MAX_TIMER_MS - 2);
    assert.deepEqual(runs, [], 'ran 1 ms before its instant');
    mock.timers.tick(1);
    assert.deepEqual(runs, ['due']);
    mock.timers.tick(100 * DAY_MS);
    assert.deepEqual(runs, ['due'], 'ran again');
  });

  it('runs an instant already past on a later turn, not at once', () => {
    const runs: number[] = [];
    mock.timers.tick(1_000);
    setTimerAt(10, (arg: number) => runs.push(arg), 1);
    assert.deepEqual(runs, []);
    mock.timers.tick(0);
    assert.deepEqual(runs, [1]);
  });

  it('clearTimerAt: never runs, at any step', () => {
    const runs: number[] = [];
    const early = setTimerAt(5_000, (arg: number) => runs.push(arg), 1);
    const late = setTimerAt(40 * DAY_MS, (arg: number) => runs.push(arg), 2);
    clearTimerAt(early);
    mock.timers.tick(MAX_TIMER_MS + 1); // `late` is armed again here
    clearTimerAt(late);
    clearTimerAt(late); // twice is harmless
    clearTimerAt(undefined);
    mock.timers.tick(100 * DAY_MS);
    assert.deepEqual(runs, []);
  });
});
