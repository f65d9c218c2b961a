// The AMR emulator's public types: its options, counters, per-connection view and wait options, and the outcome of a
// token check as the proxy uses it.
import type { KeyObject } from 'node:crypto';
import type { AdminCredentials } from '../redis-server.js';

/** Options for `AmrEmulator.start()`. */
export interface AmrEmulatorOptions {
  /** The real redis-server behind the proxy. */
  backend: { host: string; port: number };
  /** Public key of the emulated tenant: tokens must be signed with its private half. */
  publicKey: KeyObject;
  /** Accepted `aud` claim. Default `https://redis.azure.com`. */
  audience?: string;
  /** When given, the proxy terminates TLS with this key and certificate (like AMR's port 10000). */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Admin credentials for the backend, used to create one ACL user per oid. */
  admin: AdminCredentials;
  /** Port to listen on (127.0.0.1). Default 0: an ephemeral port. */
  port?: number;
}

/** What the emulator has seen, since it started. */
export interface AmrCounters {
  /** Client connections accepted (after the TLS handshake, with TLS). */
  accepted: number;
  /** Client connections currently open. */
  open: number;
  /** AUTH / HELLO AUTH commands with a good token (forwarded as a valid backend AUTH). */
  authOk: number;
  /** AUTH / HELLO AUTH commands that did not authenticate: bad token, wrong arity, or RESP2 subscribe mode. */
  authFailed: number;
  /** Connections closed by the emulator because their token expired. */
  expiryDisconnects: number;
}

/** Per-connection state, as the emulator sees it (never the token). */
export interface AmrConnectionInfo {
  id: number;
  /** The client's port: matches `redis.stream.localPort` on the ioredis side. */
  remotePort: number | undefined;
  /** oid of the last good token, if any. */
  oid: string | undefined;
  /** When the last good token expires (epoch ms), if any. */
  expiresAt: number | undefined;
  /** Name from `CLIENT SETNAME` or `HELLO ... SETNAME`. */
  name: string | undefined;
  /** RESP version after HELLO. */
  protocol: 2 | 3;
  /** Successful AUTHs on this connection. */
  authCount: number;
}

/** Options for the `waitFor*` helpers. */
export interface AmrWaitOptions {
  /** Default 15 s. */
  timeoutMs?: number;
}

/** What a token check decided: the identity and deadline of a good token, or a refusal (never why). */
export type AuthOutcome = { ok: true; oid: string; expiresAt: number } | { ok: false };
