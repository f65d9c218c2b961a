/**
 * An Azure Managed Redis emulator: a TCP (optionally TLS) proxy in front of a real redis-server that enforces what the
 * AMR front end enforces for Microsoft Entra ID authentication:
 *
 * - `AUTH <user> <jwt>` and `HELLO <ver> AUTH <user> <jwt> [SETNAME <name>]` must carry an RS256 token signed by the
 *   emulated tenant's key, with audience `https://redis.azure.com`, not expired, and a username equal to its `oid`
 *   claim. A good token is forwarded as `AUTH <oid> <secret>` for a backend ACL user named after the oid (created over
 *   an admin connection with `ACL SETUSER`); a bad one is forwarded as an AUTH that is bound to fail, so the real server
 *   answers `WRONGPASS ...` in order with the other replies. One-argument `AUTH <password>` also gets WRONGPASS.
 * - When the token a connection last authenticated with expires, both sockets are closed without a reply, even in the
 *   middle of a blocking command. A later good AUTH moves the deadline; a failed one leaves it.
 *
 * The client-to-server stream is parsed incrementally as RESP (pipelining, partial frames, large bulk strings, and
 * inline commands); server-to-client bytes are piped through untouched, so replies stay in order.
 *
 * Tokens are never logged, never sent to the backend, and never put in error messages.
 *
 * Known simplifications (the emulator follows the command stream, not the replies): AUTH inside MULTI counts at EXEC
 * even if the transaction is aborted by WATCH; subscribe-mode tracking (RESP2 connections cannot AUTH there) ignores
 * subscription commands queued inside MULTI.
 *
 * This module is the entry point; the parts live in ./amr/ (RESP parsing, token verification, backend users, the
 * proxied connection, the front end, the cluster helper).
 */
export { AmrEmulator } from './amr/emulator.js';
export { startAmrCluster, type AmrCluster, type AmrClusterOptions, type AmrNatMap } from './amr/cluster.js';
export { AMR_AUDIENCE } from './amr/token-verifier.js';
export type { AmrConnectionInfo, AmrCounters, AmrEmulatorOptions, AmrWaitOptions } from './amr/types.js';
