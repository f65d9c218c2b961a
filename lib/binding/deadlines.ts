import { clearTimerAt, setTimerAt, type TimerAt } from '../timer-range.js';

/**
 * Callbacks due at one instant share one timer. Every connection that a rotation moves to a new token gets a
 * deadline, the old token's re-authentication deadline, the same instant for all of them: 1,000 connections then
 * cost one timer instead of 1,000 timers created and cleared within milliseconds (most AUTHs are answered long
 * before). A deadline is one small object: the callback is shared and gets its argument, as with `setTimeout`, and a
 * cancelled one is only marked (no collection is rehashed per AUTH), lets go of its argument, and is dropped from its
 * instant's list once cancelled ones make up most of it: a connection whose re-AUTH waits past the deadline keeps
 * its instant pending, and must not keep the rest of the rotation's connections alive meanwhile. Timers are unref'd:
 * a pending deadline never keeps the process alive.
 */

/** An instant's list is compacted once it holds this many entries and cancelled ones are three in four or more. */
const COMPACT_FROM = 64;

/** A callback due at `at` (epoch ms); cancel it with {@link cancelDeadline}. */
export interface Deadline {
  readonly at: number;
}

interface Entry<T = unknown> extends Deadline {
  readonly run: (arg: T) => void;
  /** Dropped when cancelled. */
  arg: T | undefined;
  readonly group: Group;
  /** Cancelled, or run. */
  done: boolean;
}

interface Group {
  readonly at: number;
  /** Unref'd; waits in steps for an instant beyond a timer's range (a token valid for weeks). */
  timer: TimerAt | undefined;
  /** In the order they were added; cancelled ones stay, marked, until the list is compacted, fires or is dropped. */
  readonly entries: Entry[];
  /** Entries neither cancelled nor run. */
  live: number;
  /** Set while its callbacks run: a deadline added for the same instant then gets a group of its own. */
  firing: boolean;
}

const groups = new Map<number, Group>();

/** Calls `run(arg)` at `at` (epoch ms), or on a later turn of the event loop if that is past. */
export function addDeadline<T>(at: number, run: (arg: T) => void, arg: T): Deadline {
  let group = groups.get(at);
  if (!group || group.firing) {
    group = { at, timer: undefined, entries: [], live: 0, firing: false };
    group.timer = setTimerAt(at, fire, group);
    groups.set(at, group);
  }
  const entry: Entry<T> = { at, run, arg, group, done: false };
  group.entries.push(entry as Entry);
  group.live++;
  return entry;
}

/** Cancels `deadline` if it has not run yet. */
export function cancelDeadline(deadline: Deadline): void {
  const entry = deadline as Entry;
  if (entry.done) return;
  entry.done = true;
  entry.arg = undefined;
  const { group } = entry;
  if (group.firing) {
    group.live--;
    return; // fire() skips it and empties the list
  }
  if (--group.live > 0) {
    if (group.entries.length >= COMPACT_FROM && group.entries.length >= 4 * group.live) compact(group.entries);
    return;
  }
  clearTimerAt(group.timer);
  if (groups.get(group.at) === group) groups.delete(group.at);
}

/** Deadlines pending now, and the timers they hold (for tests: one per instant, none left behind). */
export function pendingDeadlines(): { deadlines: number; timers: number } {
  let deadlines = 0;
  for (const group of groups.values()) deadlines += group.live;
  return { deadlines, timers: groups.size };
}

/** Drops the cancelled entries of a list that is not firing, in place, keeping the order of the others. */
function compact(entries: Entry[]): void {
  let kept = 0;
  for (const entry of entries) if (!entry.done) entries[kept++] = entry;
  entries.length = kept;
}

function fire(group: Group): void {
  group.firing = true;
  if (groups.get(group.at) === group) groups.delete(group.at);
  const { entries } = group;
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index] as Entry;
    if (entry.done) continue; // cancelled, possibly by an earlier callback of this instant
    entry.done = true;
    group.live--;
    try {
      entry.run(entry.arg);
    } catch (error) {
      // one failing callback must not keep the others from running; the error stays visible
      process.nextTick(() => {
        throw error;
      });
    }
  }
  entries.length = 0;
}
