/**
 * `ioredis-entraid/testing`: the emulators this library is tested with, for application teams that want to test
 * token rotation in their own CI without Azure. Needs `redis-server` and `openssl` on the PATH. See docs/testing.md.
 *
 * - {@link EntraEmulator}: a local Entra ID (App Service managed-identity endpoint and an https authority) that real
 *   `@azure/identity` credentials talk to; short token lifetimes and switchable faults.
 * - {@link AmrEmulator}: a proxy in front of a real redis-server that behaves as Azure's Redis does with Entra ID
 *   tokens (verifies them, WRONGPASS in order, closes a connection when its token expires).
 * - {@link startRedisServer} / {@link startRedisCluster}: real redis-server processes on loopback, ephemeral ports.
 *
 * @packageDocumentation
 */
export {
  EntraEmulator,
  applyEnv,
  type EntraEmulatorOptions,
  type EntraFault,
  type EmulatorEndpoint,
  type EmulatedManagedIdentity,
  type ManagedIdentitySpec,
  type ServicePrincipalSpec,
  type EmulatedServicePrincipal,
  type EntraRequestCounters,
  type WaitForRequestsOptions,
} from './entra-emulator.js';
export {
  AmrEmulator,
  startAmrCluster,
  AMR_AUDIENCE,
  type AmrEmulatorOptions,
  type AmrCounters,
  type AmrConnectionInfo,
  type AmrWaitOptions,
  type AmrNatMap,
  type AmrCluster,
  type AmrClusterOptions,
} from './amr-emulator.js';
export {
  startRedisServer,
  startRedisCluster,
  waitUntil,
  ADMIN_USERNAME,
  REDIS_SERVER_BIN,
  type AdminCredentials,
  type RedisServerOptions,
  type RedisServerHandle,
  type RedisClusterOptions,
  type RedisClusterNode,
  type RedisClusterHandle,
  type WaitOptions,
} from './redis-server.js';
export { selfSignedCertificate, type SelfSignedCertificate } from './certs.js';
export { freePort } from './ports.js';
