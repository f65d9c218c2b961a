// The Entra ID emulator's public types (options, faults, registered identities, request counters) and the internal
// record of a service principal, which holds its credentials.
import type { KeyObject } from 'node:crypto';

/** The two servers of the emulator. */
export type EmulatorEndpoint = 'managed-identity' | 'authority';

/** A fault injected at runtime. Without `endpoint` it applies to both servers. */
export type EntraFault =
  /** Stop listening: new connections are refused, open ones are destroyed. `clearFault()` listens on the same port again. */
  | { kind: 'down'; endpoint?: EmulatorEndpoint }
  /**
   * Answer with `status` and the error body Azure uses for it (override with `body`). `retryAfterSeconds` or
   * `retryAfterDate` set a Retry-After header. `times`: only the next N requests, then the fault clears itself.
   */
  | {
      kind: 'status';
      status: number;
      retryAfterSeconds?: number;
      retryAfterDate?: Date;
      times?: number;
      body?: unknown;
      endpoint?: EmulatorEndpoint;
    }
  /** Accept and read the request, never answer (until `destroyHungRequests()` or `stop()`). */
  | { kind: 'hang'; times?: number; endpoint?: EmulatorEndpoint }
  /** Accept and read the request, then destroy the socket without an answer ("socket hang up" / ECONNRESET). */
  | { kind: 'reset'; times?: number; endpoint?: EmulatorEndpoint };

export interface EntraEmulatorOptions {
  /** Lifetime of issued tokens, seconds. Default 3600. Also settable later via the property. */
  tokenLifetimeSeconds?: number;
  /** Tenant of managed identities. Default: a random UUID. */
  tenantId?: string;
  /** Secret the managed-identity endpoint expects in `X-IDENTITY-HEADER`. Default: a random UUID. */
  identityHeader?: string;
}

/** A managed identity as registered with the emulator. */
export interface EmulatedManagedIdentity {
  kind: 'system' | 'user';
  /** Object (principal) id: the token's `oid` claim. Equals `objectId`. */
  oid: string;
  /** Object id: what `object_id` selects. Equals `oid`. */
  objectId: string;
  clientId: string;
  /** ARM resource id; what `mi_res_id` selects (user-assigned only). */
  resourceId: string;
}

/** How a test registers a managed identity. */
export type ManagedIdentitySpec =
  | { kind: 'system'; oid?: string; clientId?: string }
  | { kind?: 'user'; clientId?: string; objectId?: string; resourceId?: string; oid?: string };

/** How a test registers a service principal (an app registration in a tenant). */
export interface ServicePrincipalSpec {
  tenantId: string;
  clientId: string;
  clientSecret?: string;
  /** PEM certificate (a private key next to it is ignored); client assertions must be signed by its key. */
  certificate?: string;
  /** Object id of the service principal; the token's `oid`. Default: a random UUID. */
  oid?: string;
}

/** A service principal as registered with the emulator. Holds no secret. */
export interface EmulatedServicePrincipal {
  tenantId: string;
  clientId: string;
  oid: string;
  /** SHA-1 thumbprint of the registered certificate (hex, upper case), when one was given. */
  thumbprint?: string;
}

/** Request counters since start or the last `resetCounters()`. Requests are counted on arrival. */
export interface EntraRequestCounters {
  /** Every request on either server. */
  total: number;
  /** Requests to the managed-identity server. */
  managedIdentity: number;
  /** Requests to the authority server (discovery, token, anything else). */
  authority: number;
  /** Requests to the authority's token endpoint. */
  tokenEndpoint: number;
  /** Requests for OpenID discovery documents. */
  discovery: number;
  /** Requests for a registered identity (faulted ones included; counted once the request body is read), by `oid`. */
  byOid: Record<string, number>;
}

/** Options of {@link EntraEmulator.waitForRequests}. */
export interface WaitForRequestsOptions {
  /** Which counter to watch. Default: `total`. */
  counter?: Exclude<keyof EntraRequestCounters, 'byOid'>;
  /** Watch the per-identity counter of this `oid` instead. */
  oid?: string;
  /** Reject after this many ms. Default 10000. */
  timeoutMs?: number;
}

/** A registered service principal with its credentials (never handed out). */
export interface ServicePrincipalRecord extends EmulatedServicePrincipal {
  clientSecret?: string;
  certificate?: { sha1: string; sha256: string; publicKey: KeyObject };
}
