// Resolve hook of a CI lane (see scripts/test-lanes.mjs): the packages named in ENTRAID_LANE_PACKAGES (comma-separated)
// resolve from the lane's own install in ENTRAID_LANE_PREFIX, whoever imports them; everything else resolves as usual.
// Packages inside the lane's install find their own dependencies there by ordinary resolution.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const prefix = process.env.ENTRAID_LANE_PREFIX;
const packages = (process.env.ENTRAID_LANE_PACKAGES ?? '').split(',').filter(Boolean);
const fromPrefix = prefix ? pathToFileURL(join(prefix, 'package.json')).href : undefined;

const packageOf = (specifier) => {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
};

export async function resolve(specifier, context, nextResolve) {
  if (fromPrefix && packages.includes(packageOf(specifier))) {
    return nextResolve(specifier, { ...context, parentURL: fromPrefix });
  }
  return nextResolve(specifier, context);
}
