/**
 * A local Microsoft Entra ID emulator that REAL `@azure/identity` credentials talk to:
 *
 * - an App Service managed-identity endpoint (plain http, `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`), the source MSAL
 *   node picks when both variables are set;
 * - an https OpenID authority (self-signed certificate) with discovery and a v2.0 token endpoint for the
 *   client-credentials grant (client secret, or client assertion signed by a registered certificate).
 *
 * It mints RS256 JWTs with `oid`, `tid`, `aud`, `iat`, `nbf`, `exp`, `uti` and `jti`, answers errors with the status
 * and body shape Azure uses, injects faults at runtime and counts requests.
 *
 * Facts about MSAL node (5.x, inside @azure/identity 4.13.1) that shape how tests use this emulator:
 * - The managed-identity source (endpoint URL, header secret and the HTTP client of the FIRST ManagedIdentityCredential
 *   that fetched a token) is cached in a static field for the life of the process. Keep one emulator per test file for
 *   managed-identity tests; `setFault({ kind: 'down' })` reopens on the same port.
 * - Managed-identity tokens are cached process-wide per identity; confidential-client tokens per credential. A cached
 *   token is reused until 5 minutes before expiry, so use `tokenLifetimeSeconds` well below 300 when every call
 *   must reach the emulator.
 * - A confidential client that got a 429 or 5xx from the token endpoint refuses to ask again for the Retry-After
 *   delay (60 s when none is given) and throws the remembered error without a request.
 *
 * This module is the entry point; the parts live in ./entra/ (token issuing, the directory of identities, the
 * managed-identity endpoint, the authority, client assertions, faults, request counters, the servers).
 */
export { EntraEmulator } from './entra/emulator.js';
export { applyEnv } from './entra/env.js';
export type {
  EntraEmulatorOptions,
  EntraFault,
  EmulatorEndpoint,
  EmulatedManagedIdentity,
  ManagedIdentitySpec,
  ServicePrincipalSpec,
  EmulatedServicePrincipal,
  EntraRequestCounters,
  WaitForRequestsOptions,
} from './entra/types.js';
