/**
 * What the library relies on in ioredis, as checks that can be run on a real client: the list behind
 * lib/binding/ioredis-internals.ts, checked when a client is bound (once per ioredis class) so that an ioredis release
 * that changes one of them fails at `createEntraRedis()` / `createEntraCluster()` with a clear error, instead of a
 * client that silently stops re-authenticating an hour after deploying. spec/binding/ioredis-contract.test.ts runs the
 * same checks, and the ones that need a live connection, on ioredis 5 and 6.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { IoredisContractError } from '../errors.js';

/** One reliance: a name that says where it lives in ioredis, and a check of it on an instance. */
export interface Reliance {
  name: string;
  holds(target: object): boolean;
}

const isFunction = (value: unknown): boolean => typeof value === 'function';
const field = (target: object, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>(
      (value, key) => (value === null || value === undefined ? undefined : (value as Record<string, unknown>)[key]),
      target,
    );
const method = (path: string): Reliance => ({
  name: `Redis#${path}()`,
  holds: (target) => isFunction(field(target, path)),
});
const denque = (path: string): Reliance => ({
  name: `Redis#${path} (a Denque with peekAt, peekBack)`,
  holds: (target) => isFunction(field(target, `${path}.peekAt`)) && isFunction(field(target, `${path}.peekBack`)),
});

/** Reliances checkable on any `Redis` instance, before it connects. */
export const CLIENT_RELIANCES: readonly Reliance[] = [
  method('connector.connect'),
  method('connector.disconnect'),
  method('setStatus'),
  method('silentEmit'),
  method('flushQueue'),
  method('sendCommand'),
  method('emit'),
  method('auth'),
  method('hello'),
  method('duplicate'),
  denque('commandQueue'),
  denque('offlineQueue'),
  { name: 'Redis#options (an object)', holds: (target) => typeof field(target, 'options') === 'object' },
];

/** Reliances checkable on any `Cluster` instance, before it connects. */
export const CLUSTER_RELIANCES: readonly Reliance[] = [
  {
    name: 'Cluster#subscriber (a ClusterSubscriber with a `subscriber` field)',
    holds: (target) => {
      const subscriber = field(target, 'subscriber');
      return typeof subscriber === 'object' && subscriber !== null && 'subscriber' in subscriber;
    },
  },
  { name: 'Cluster#startupNodes (an array)', holds: (target) => Array.isArray(field(target, 'startupNodes')) },
  method('duplicate'),
];

/** The names of the reliances `target` does not meet. */
export function missingReliances(target: object, reliances: readonly Reliance[]): string[] {
  return reliances.filter((reliance) => !safely(() => reliance.holds(target))).map((reliance) => reliance.name);
}

function safely(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

const checked = new WeakSet<object>();

/**
 * Throws {@link IoredisContractError} naming the ioredis version and what is missing when `target` (a Redis or a
 * Cluster) lacks something the library relies on. Checked once per class: later instances cost a WeakSet lookup.
 */
export function assertIoredisContract(target: Redis | Cluster, kind: 'Redis' | 'Cluster'): void {
  const prototype = Object.getPrototypeOf(target) as object;
  if (checked.has(prototype)) return;
  const missing = missingReliances(target, kind === 'Redis' ? CLIENT_RELIANCES : CLUSTER_RELIANCES);
  if (missing.length > 0) {
    throw new IoredisContractError(
      `ioredis ${installedIoredisVersion() ?? '(version unknown)'} lacks what ioredis-entraid relies on to keep ${kind} ` +
        `connections authenticated: ${missing.join(', ')}. Supported: ioredis ^5.3.0 and ^6.0.0; see docs/troubleshooting.md.`,
    );
  }
  checked.add(prototype);
}

/** The version of the ioredis the application resolves (read from its package.json), if it can be found. */
export function installedIoredisVersion(): string | undefined {
  try {
    const require = createRequire(join(process.cwd(), 'noop.js'));
    return String((require('ioredis/package.json') as { version?: unknown }).version);
  } catch {
    return undefined;
  }
}
