// AMR emulators for a Redis Cluster: one emulator in front of each node, and the `natMap` that lets ioredis translate
// the addresses redis announces into the proxies' addresses.
import type { AdminCredentials, RedisClusterHandle } from '../redis-server.js';
import { AmrEmulator, DEFAULT_WAIT_TIMEOUT_MS } from './emulator.js';
import type { AmrCounters, AmrEmulatorOptions, AmrWaitOptions } from './types.js';

/** ioredis `natMap`: real node address (as redis announces it) → proxy address. */
export type AmrNatMap = Record<string, { host: string; port: number }>;

/** One emulator per cluster node, and the address translation ioredis needs. */
export interface AmrCluster {
  readonly emulators: readonly AmrEmulator[];
  /** For ioredis `Cluster`'s `natMap` option: `{ '127.0.0.1:<redisPort>': { host: '127.0.0.1', port: <proxyPort> } }`. */
  readonly natMap: AmrNatMap;
  /** Proxy addresses, for ioredis `Cluster`'s startup nodes. */
  startupNodes(): { host: string; port: number }[];
  /** Sum of one counter over every emulator. */
  total(name: keyof AmrCounters): number;
  /** Resolves when the sum of `name` over every emulator reaches `value`. */
  waitForTotal(name: keyof AmrCounters, value: number, options?: AmrWaitOptions): Promise<void>;
  closeAllConnections(): void;
  stop(): Promise<void>;
}

/** Options for `startAmrCluster()`: those of `AmrEmulator.start()` without the backend; admin defaults to the cluster's. */
export type AmrClusterOptions = Omit<AmrEmulatorOptions, 'backend' | 'admin' | 'port'> & { admin?: AdminCredentials };

/**
 * Starts one emulator in front of each node of `cluster`. Redis keeps announcing its own addresses (CLUSTER SLOTS,
 * CLUSTER NODES, MOVED, ASK): the client translates them with `natMap`, as with Azure's OSS cluster policy.
 */
export async function startAmrCluster(cluster: RedisClusterHandle, options: AmrClusterOptions): Promise<AmrCluster> {
  const emulators: AmrEmulator[] = [];
  try {
    for (const node of cluster.nodes) {
      emulators.push(
        await AmrEmulator.start({
          ...options,
          admin: options.admin ?? cluster.admin,
          backend: { host: node.host, port: node.port },
        }),
      );
    }
  } catch (error) {
    await Promise.all(emulators.map((emulator) => emulator.stop()));
    throw error;
  }
  const natMap: AmrNatMap = {};
  cluster.nodes.forEach((node, index) => {
    const emulator = emulators[index] as AmrEmulator;
    natMap[`${node.host}:${node.port}`] = { host: emulator.host, port: emulator.port };
  });
  const total = (name: keyof AmrCounters) => emulators.reduce((sum, emulator) => sum + emulator.counters[name], 0);
  return {
    emulators,
    natMap,
    startupNodes: () => emulators.map((emulator) => ({ host: emulator.host, port: emulator.port })),
    total,
    async waitForTotal(name, value, waitOptions = {}) {
      const { timeoutMs = DEFAULT_WAIT_TIMEOUT_MS } = waitOptions;
      const deadline = Date.now() + timeoutMs;
      while (total(name) < value) {
        const remaining = deadline - Date.now();
        if (remaining <= 0)
          throw new Error(`AMR cluster: timed out waiting for total ${name} >= ${value} (is ${total(name)})`);
        // Wake up on the next change of any emulator.
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            for (const emulator of emulators) emulator.off('change', wake);
            resolve();
          };
          const timer = setTimeout(wake, remaining);
          for (const emulator of emulators) emulator.on('change', wake);
        });
      }
    },
    closeAllConnections: () => {
      for (const emulator of emulators) emulator.closeAllConnections();
    },
    stop: async () => {
      await Promise.all(emulators.map((emulator) => emulator.stop()));
    },
  };
}
