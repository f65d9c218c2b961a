/**
 * Shared deadlines: callbacks due at one instant share one timer (the re-AUTH deadlines of one rotation), each runs
 * once unless cancelled, and nothing is left behind. The deadline's effect on a connection (a reconnect with the new
 * token) is covered end to end in spec/binding/reauth.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { addDeadline, cancelDeadline, pendingDeadlines } from '../../lib/binding/deadlines.js';
import { must } from '../support/must.js';

const timers = () => pendingDeadlines().timers;
/** The deadlines' timers are unref'd: a ref'd one keeps the test's event loop running meanwhile. */
function keepAlive(): () => void {
  const interval = setInterval(() => undefined, 1_000);
  return () => clearInterval(interval);
}

describe('shared deadlines', () => {
  it('deadlines at one instant share one timer; each runs once, a cancelled one never', async () => {
    const release = keepAlive();
    const timersBefore = timers();
    const at = Date.now() + 30;
    const ran: number[] = [];
    let last!: () => void;
    const allRan = new Promise<void>((resolve) => {
      last = resolve;
    });
    const realSetTimeout = globalThis.setTimeout;
    let timersCreated = 0;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      timersCreated++;
      return realSetTimeout(...args);
    }) as typeof setTimeout;
    let deadlines: ReturnType<typeof addDeadline>[];
    try {
      deadlines = Array.from({ length: 100 }, (_, i) =>
        addDeadline(
          at,
          (index: number) => {
            ran.push(index);
            if (index === 99) last();
          },
          i,
        ),
      );
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    assert.equal(timersCreated, 1, 'one timer created for 100 deadlines');
    assert.equal(timers() - timersBefore, 1);
    cancelDeadline(must(deadlines[50], 'the 51st deadline'));
    await allRan;
    release();
    assert.equal(ran.length, 99);
    assert.ok(!ran.includes(50), 'the cancelled deadline did not run');
    assert.equal(new Set(ran).size, 99, 'each ran once');
    cancelDeadline(must(deadlines[0], 'the first deadline')); // after it ran: nothing happens
    assert.deepEqual(pendingDeadlines(), { deadlines: 0, timers: 0 });
  });

  it('cancelling every deadline of an instant clears its timer', () => {
    const timersBefore = timers();
    const at = Date.now() + 60_000;
    const deadlines = Array.from({ length: 10 }, () => addDeadline(at, () => assert.fail('cancelled'), undefined));
    const other = addDeadline(at + 1, () => assert.fail('cancelled'), undefined);
    assert.equal(timers() - timersBefore, 2, 'one timer per instant');
    for (const deadline of deadlines) cancelDeadline(deadline);
    assert.equal(timers() - timersBefore, 1);
    cancelDeadline(other);
    assert.equal(timers(), 0, 'no timer left');
    assert.deepEqual(pendingDeadlines(), { deadlines: 0, timers: 0 });
  });

  it('while an instant fires, a sibling cancelled by an earlier callback does not run, and one added for the same instant runs later', async () => {
    const release = keepAlive();
    const at = Date.now() + 20;
    const ran: string[] = [];
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    addDeadline(
      at,
      () => {
        ran.push('first');
        cancelDeadline(second);
        addDeadline(
          at,
          () => {
            ran.push('added while firing');
            finished();
          },
          undefined,
        );
      },
      undefined,
    );
    const second = addDeadline(at, () => ran.push('second'), undefined);
    await done;
    release();
    assert.deepEqual(ran, ['first', 'added while firing']);
    assert.deepEqual(pendingDeadlines(), { deadlines: 0, timers: 0 });
  });

  it('cancelled deadlines keep neither their argument nor themselves alive while a sibling of their instant waits', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const at = Date.now() + 60_000;
    // A connection whose re-AUTH waits past the deadline (a blocking command) keeps its instant pending, while the
    // other connections of the rotation were answered: each of theirs was added and cancelled, often more than once.
    const waiting = addDeadline(at, () => assert.fail('cancelled'), { binding: 'waiting' });
    const args: WeakRef<object>[] = [];
    const handles: WeakRef<object>[] = [];
    const addAndCancel = (i: number) => {
      const arg = { binding: i };
      const deadline = addDeadline(at, () => assert.fail('cancelled'), arg);
      args.push(new WeakRef(arg));
      handles.push(new WeakRef(deadline));
      cancelDeadline(deadline);
    };
    for (let i = 0; i < 2_000; i++) addAndCancel(i);
    assert.deepEqual(pendingDeadlines(), { deadlines: 1, timers: 1 });
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(args.filter((ref) => ref.deref() !== undefined).length, 0, 'no argument of a cancelled one is kept');
    assert.ok(handles.filter((ref) => ref.deref() !== undefined).length < 100, 'cancelled ones are dropped as they go');
    cancelDeadline(waiting);
    assert.deepEqual(pendingDeadlines(), { deadlines: 0, timers: 0 });
  });

  it('a deadline further away than setTimeout can wait (a token valid for weeks) does not run early', async () => {
    const release = keepAlive();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const ran: string[] = [];
    const far = addDeadline(Date.now() + 30 * 24 * 3_600_000, () => ran.push('far'), undefined);
    // Timers run in order of their due time: once this one ran, an overflowing timer (1 ms) has run too.
    await new Promise<void>((resolve) => addDeadline(Date.now() + 20, resolve, undefined));
    await new Promise((resolve) => setImmediate(resolve)); // a warning is emitted on a later tick
    process.off('warning', onWarning);
    release();
    assert.deepEqual(ran, []);
    assert.deepEqual(warnings, [], 'no TimeoutOverflowWarning');
    assert.deepEqual(pendingDeadlines(), { deadlines: 1, timers: 1 });
    cancelDeadline(far);
    assert.deepEqual(pendingDeadlines(), { deadlines: 0, timers: 0 });
  });
});
