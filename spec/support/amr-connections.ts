// Finding the AMR emulator's view of a client's connection, for tests that check which token a connection holds.
import type { AmrConnectionInfo, AmrEmulator } from '../../lib/testing/index.js';

/** The client's local port: the emulator knows a connection by it. `undefined` while the client has no socket. */
export function localPortOf(redis: object): number | undefined {
  return (redis as { stream?: { localPort?: number } }).stream?.localPort;
}

/** The emulator's view of a client's current connection, found by the client's local port. */
export function connectionOf(amr: AmrEmulator, redis: object): AmrConnectionInfo | undefined {
  const port = localPortOf(redis);
  return amr.connections().find((c) => c.remotePort === port);
}
