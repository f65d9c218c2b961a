// Finding the AMR emulator's view of a client's connection, for tests that check which token a connection holds.
import type { EntraToken, TokenInfo } from '../../lib/index.js';
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

/**
 * The instant the server holds a connection authenticated with `token` to: the JWT's `exp`, epoch ms. The library's
 * `expiresOn` can be up to a second earlier (it takes the credential's `expiresOnTimestamp` when that is earlier, and
 * MSAL derives that from a whole number of seconds left), so what is compared with the server's view uses this.
 */
export function serverExpiryOf(token: EntraToken): number {
  return Number(token.claims.exp) * 1000;
}

/** Whether a server-side expiry (epoch ms, whole seconds) is that of the token `info` describes. */
export function isExpiryOf(expiresAt: number | undefined, info: TokenInfo): boolean {
  return expiresAt !== undefined && expiresAt >= info.expiresOn && expiresAt - info.expiresOn < 1000;
}
