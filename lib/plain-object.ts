/**
 * True for an object literal or `Object.create(null)`: not an array, a Date, a Map, a class instance or a function.
 * Options and error payloads are plain objects; anything else is not read as one.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
