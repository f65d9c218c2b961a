/** How invalid options are reported: one TypeError shape everywhere, naming the option and what is wrong. */

/** Describes a value for an error message; a secret's content is never shown. */
export function describeValue(value: unknown, secret = false): string {
  if (typeof value === 'string') {
    if (value.length === 0) return 'an empty string';
    return secret ? 'a string (not shown)' : `the string ${JSON.stringify(value)}`;
  }
  if (typeof value === 'number') return secret ? 'a number (not shown)' : String(value);
  if (value === undefined || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a value of type ${typeof value}`;
}

/** Throws `TypeError: Invalid option "<name>": <rule>, got <value>`. */
export function invalidOption(name: string, rule: string, value: unknown, secret = false): never {
  throw new TypeError(`Invalid option "${name}": ${rule}, got ${describeValue(value, secret)}`);
}

/** Throws the error for an options argument that is not an object. */
export function invalidOptions(value: unknown): never {
  throw new TypeError(`Invalid options: expected an object, got ${describeValue(value)}`);
}
