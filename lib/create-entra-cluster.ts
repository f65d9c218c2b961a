import { Cluster, type ClusterNode, type ClusterOptions } from 'ioredis';
import { bindClient, connectUnlessLazy } from './binding/make-client.js';
import { validateExtra, type EntraRedisExtraOptions } from './binding/redis-arguments.js';
import { assertIoredisContract } from './binding/ioredis-contract.js';
import { clusterStartupNodes, watchClusterConnections } from './binding/ioredis-internals.js';
import { defaultCredentialsProvider } from './identity/default-provider.js';
import { invalidOptions } from './option-errors.js';
import { isPlainObject } from './plain-object.js';

export type EntraClusterOptions = ClusterOptions & EntraRedisExtraOptions;

/**
 * A drop-in for `new Cluster(startupNodes, options)` (ioredis): every node connection, slot-refresh connection and
 * pub/sub subscriber (sharded included) authenticates with the provider's current token and is re-authenticated
 * before it expires; nodes that appear later get the current token. Works with `natMap` and `tls`, as Azure Managed
 * Redis's OSS cluster policy requires. Returns a real ioredis `Cluster` at once.
 */
export function createEntraCluster(startupNodes: ClusterNode[], options: EntraClusterOptions = {}): Cluster {
  const given: unknown = options; // checked as it comes from JavaScript; `options` keeps its declared type
  if (!isPlainObject(given)) invalidOptions(options);
  const { credentialsProvider, reauthJitter, ...clusterOptions } = options;
  validateExtra(credentialsProvider, reauthJitter);
  const provider = credentialsProvider ?? defaultCredentialsProvider();
  const lazyConnect = clusterOptions.lazyConnect === true;
  // Not connected by the constructor: connections it makes must be bound first.
  const cluster = new Cluster(startupNodes, {
    ...clusterOptions,
    lazyConnect: true,
    redisOptions: { ...clusterOptions.redisOptions },
  });
  assertIoredisContract(cluster, 'Cluster');
  watchClusterConnections(cluster, (redis) => bindClient(redis, provider, reauthJitter));
  // duplicate() makes a Cluster covered the same way, sharing the provider unless told otherwise.
  cluster.duplicate = (overrideStartupNodes: ClusterNode[] = [], overrideOptions: EntraClusterOptions = {}) =>
    createEntraCluster(overrideStartupNodes.length > 0 ? overrideStartupNodes : clusterStartupNodes(cluster), {
      ...cluster.options,
      credentialsProvider: provider,
      reauthJitter,
      ...overrideOptions,
    });
  return connectUnlessLazy(cluster, lazyConnect);
}
