/**
 * Callbacks due at one instant share one timer. Every connection that a rotation moves to a new token gets a
 * deadline, the old token's re-authentication deadline, the same instant for all of them: 1,000 connections then
 * cost one timer instead of 1,000 timers created and cleared within milliseconds (most AUTHs are answered long
 * before). Timers are unref'd: a pending deadline never keeps the process alive.
 */

/** A callback due at `at` (epoch ms); cancel it with {@link cancelDeadline}. */
export interface Deadline {
  readonly at: number;
  readonly run: () => void;
  readonly group: Group;
}

interface Group {
  readonly at: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly due: Set<Deadline>;
  /** Set while its callbacks run: a deadline added for the same instant then gets a group of its own. */
  firing: boolean;
}

const groups = new Map<number, Group>();

/** Calls `run` at `at` (epoch ms), or on a later turn of the event loop if that is past. */
export function addDeadline(at: number, run: () => void): Deadline {
  let group = groups.get(at);
  if (!group || group.firing) {
    group = { at, timer: undefined, due: new Set(), firing: false };
    group.timer = setTimeout(fire, Math.max(0, at - Date.now()), group);
    (group.timer as { unref?: () => void }).unref?.(); // a timer from a fake-timer library may lack unref
    groups.set(at, group);
  }
  const deadline: Deadline = { at, run, group };
  group.due.add(deadline);
  return deadline;
}

/** Cancels `deadline` if it has not run yet. */
export function cancelDeadline(deadline: Deadline): void {
  const { group } = deadline;
  if (!group.due.delete(deadline) || group.due.size > 0 || group.firing) return;
  clearTimeout(group.timer);
  if (groups.get(group.at) === group) groups.delete(group.at);
}

/** Deadlines pending now, and the timers they hold (for tests: one per instant, none left behind). */
export function pendingDeadlines(): { deadlines: number; timers: number } {
  let deadlines = 0;
  for (const group of groups.values()) deadlines += group.due.size;
  return { deadlines, timers: groups.size };
}

function fire(group: Group): void {
  const { due } = group;
  group.firing = true;
  for (const deadline of due) {
    due.delete(deadline);
    try {
      deadline.run();
    } catch (error) {
      // one failing callback must not keep the others from running; the error stays visible
      process.nextTick(() => {
        throw error;
      });
    }
  }
  if (groups.get(group.at) === group) groups.delete(group.at);
}
