/**
 * `value` when it is there; otherwise throws an Error that names `what` was expected. For lookups that the test's own
 * steps guarantee (the first of the events it waited for, a regular expression's group), where the types leave room
 * for a missing value.
 */
export function must<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) throw new Error(`expected ${what}, found ${String(value)}`);
  return value;
}
