// Environment variables set for a test and restored afterwards (which managed-identity source MSAL picks is decided
// by them).

/**
 * Sets (or, for `undefined`, deletes) environment variables and returns a function that restores the old values.
 * A helper of the emulators, not part of the documented testing API.
 * @internal
 */
export function applyEnv(vars: Record<string, string | undefined>): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(vars)) {
    saved.set(name, process.env[name]);
    if (value === undefined) Reflect.deleteProperty(process.env, name);
    else process.env[name] = value;
  }
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
  };
}
