/**
 * Removes anything shaped like a token from errors and strings before they reach an event, a log, a trace or the
 * application: the one place that decides what a token looks like.
 */
import { isPlainObject } from '../plain-object.js';

const JWT_PATTERN = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/** Replaces anything shaped like a JWT in a string. */
export function redactTokens(text: string): string {
  return text.replace(JWT_PATTERN, '<redacted>');
}

/** How deep {@link redactError} follows plain objects and arrays hanging off an error (a response, its body...). */
const MAX_DEPTH = 6;

/**
 * Removes tokens from an error in place and returns it: message, stack, and every string in its own properties,
 * however deep in plain objects and arrays (not class instances): a credential's response body, the argument lists
 * ioredis attaches to a ReplyError, the errors of an AggregateError. A thrown string comes back redacted. Walks `cause`
 * chains (also a `cause` defined as an accessor, which the property walk leaves alone).
 */
export function redactError<T>(error: T, seen = new Set<unknown>()): T {
  if (typeof error === 'string') return redactTokens(error) as T;
  if (!(error instanceof Error) || seen.has(error)) return error;
  try {
    error.message = redactTokens(error.message);
    if (error.stack) error.stack = redactTokens(error.stack);
  } catch {
    // frozen or exotic error: nothing we can do, and nothing to leak that we added
  }
  redactProperties(error, seen, 0);
  if ('cause' in error) redactError(error.cause, seen);
  return error;
}

/**
 * Arrays and plain objects only: an instance of some class (a client an error points to, say) is not ours to rewrite;
 * mutating its fields could break it.
 */
function isPlainData(value: unknown): value is object {
  return Array.isArray(value) || isPlainObject(value);
}

/** Redacts the strings among an object's own data properties, following nested errors, arrays and objects. */
function redactProperties(target: object, seen: Set<unknown>, depth: number): void {
  if (seen.has(target)) return;
  seen.add(target);
  // An error's own properties include non-enumerable ones: an AggregateError's `errors`, `cause`.
  const keys = target instanceof Error ? Object.getOwnPropertyNames(target) : Object.keys(target);
  for (const key of keys) {
    // Accessors are left alone: reading one could run arbitrary code, writing one could do anything.
    const descriptor = Object.getOwnPropertyDescriptor(target, key);
    if (!descriptor || !('value' in descriptor)) continue;
    try {
      const value: unknown = descriptor.value;
      const redacted = redactValue(value, seen, depth);
      if (redacted !== value) (target as Record<string, unknown>)[key] = redacted;
    } catch {
      // read-only property or frozen object: leave it
    }
  }
}

/**
 * The value with its tokens redacted. Arrays come back as redacted copies when anything in them changed, never
 * rewritten in place: an error's `command.args` is the live argument list of a command ioredis may send again.
 */
function redactValue(value: unknown, seen: Set<unknown>, depth: number): unknown {
  if (typeof value === 'string') return redactTokens(value);
  if (value instanceof Error) return redactError(value, seen);
  if (!isPlainData(value) || depth >= MAX_DEPTH || seen.has(value)) return value;
  if (Array.isArray(value)) {
    seen.add(value);
    const copy = value.map((item: unknown) => redactValue(item, seen, depth + 1));
    return copy.some((item, index) => item !== value[index]) ? copy : value;
  }
  redactProperties(value, seen, depth + 1);
  return value;
}
