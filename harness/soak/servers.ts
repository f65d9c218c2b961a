/**
 * The soak's servers, all on loopback: a standalone redis-server and a 3-master Redis Cluster (both persisting every
 * write before answering it), the Entra ID emulator, and an AMR emulator in front of each redis-server.
 */
import { AmrEmulator, startAmrCluster, type AmrCluster } from '../../lib/testing/amr-emulator.js';
import { EntraEmulator } from '../../lib/testing/entra-emulator.js';
import {
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisServerHandle,
} from '../../lib/testing/redis-server.js';
import { PERSISTENCE } from './settings.js';

export interface Servers {
  redis: RedisServerHandle;
  cluster: RedisClusterHandle;
  entra: EntraEmulator;
  amr: AmrEmulator;
  amrCluster: AmrCluster;
  /** Undoes the managed-identity environment that points credentials at the Entra ID emulator. */
  restoreEnv: () => void;
}

/** Starts every server; stops those already started when one fails to start. */
export async function startServers(): Promise<Servers> {
  const redis = await startRedisServer({ extraConfig: PERSISTENCE });
  let cluster: RedisClusterHandle | undefined;
  let entra: EntraEmulator | undefined;
  let amr: AmrEmulator | undefined;
  try {
    cluster = await startRedisCluster({ masters: 3, extraConfig: PERSISTENCE });
    entra = await EntraEmulator.start({ tokenLifetimeSeconds: 4 });
    amr = await AmrEmulator.start({
      backend: { host: redis.host, port: redis.port },
      publicKey: entra.publicKey,
      admin: redis.admin,
    });
    const amrCluster = await startAmrCluster(cluster, { publicKey: entra.publicKey });
    const restoreEnv = entra.applyManagedIdentityEnv();
    return { redis, cluster, entra, amr, amrCluster, restoreEnv };
  } catch (error) {
    await amr?.stop();
    await entra?.stop();
    await cluster?.stop();
    await redis.stop();
    throw error;
  }
}

export async function stopServers(servers: Servers): Promise<void> {
  servers.restoreEnv();
  await servers.entra.stop();
  await servers.amr.stop();
  await servers.amrCluster.stop();
  await servers.redis.stop();
  await servers.cluster.stop();
}
