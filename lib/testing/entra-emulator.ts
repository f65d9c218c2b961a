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
 */
import { createHash, createPublicKey, createVerify, constants as cryptoConstants, randomUUID, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { selfSignedCertificate } from './certs.js';
import { createSigningKey, signJwt, type JwtClaims, type SigningKey } from './jwt.js';

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
  | { kind: 'status'; status: number; retryAfterSeconds?: number; retryAfterDate?: Date; times?: number; body?: unknown; endpoint?: EmulatorEndpoint }
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

interface ServicePrincipalRecord extends EmulatedServicePrincipal {
  clientSecret?: string;
  certificate?: { sha1: string; sha256: string; publicKey: KeyObject };
}

interface ActiveFault {
  fault: EntraFault;
  remaining: number;
}

interface Listener {
  server: http.Server;
  port: number;
  sockets: Set<Socket>;
  listening: boolean;
}

const APP_SERVICE_API_VERSION = '2019-08-01';
const MI_PATH = '/msi/token';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MULTI_TENANT_ALIASES = new Set(['common', 'organizations']);

/**
 * Sets (or, for `undefined`, deletes) environment variables and returns a function that restores the old values.
 * A helper of the emulators, not part of the documented testing API.
 * @internal
 */
export function applyEnv(vars: Record<string, string | undefined>): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(vars)) {
    saved.set(name, process.env[name]);
    if (value === undefined) Reflect.deleteProperty(process.env, name);
    else process.env[name] = value;
  }
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
  };
}

/** The local Entra ID emulator. Start with {@link EntraEmulator.start}; always {@link EntraEmulator.stop}. */
export class EntraEmulator {
  /** Lifetime of tokens issued from now on, seconds. */
  tokenLifetimeSeconds: number;
  /** Tenant of managed identities. */
  readonly tenantId: string;
  /** https origin of the authority, e.g. `https://127.0.0.1:40123`. Pass as `authorityHost`. */
  readonly authorityHost: string;
  /** URL of the App Service managed-identity endpoint (the `IDENTITY_ENDPOINT` value). */
  readonly managedIdentityEndpoint: string;
  /** PEM certificate of the authority; trust it as a CA. */
  readonly tlsCertificate: string;

  readonly #identityHeader: string;
  readonly #signingKey: SigningKey;
  readonly #mi: Listener;
  readonly #authority: Listener;
  readonly #managedIdentities: EmulatedManagedIdentity[] = [];
  readonly #servicePrincipals: ServicePrincipalRecord[] = [];
  readonly #faults = new Map<EmulatorEndpoint, ActiveFault>();
  readonly #hung = new Set<ServerResponse>();
  #counters: EntraRequestCounters = emptyCounters();
  #tokensIssued = 0;
  #waiters = new Set<() => void>();
  #stopped = false;

  private constructor(options: EntraEmulatorOptions, signingKey: SigningKey, tls: { key: string; cert: string }, mi: Listener, authority: Listener) {
    this.tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
    this.tenantId = options.tenantId ?? randomUUID();
    this.#identityHeader = options.identityHeader ?? randomUUID();
    this.#signingKey = signingKey;
    this.tlsCertificate = tls.cert;
    this.#mi = mi;
    this.#authority = authority;
    this.authorityHost = `https://127.0.0.1:${authority.port}`;
    this.managedIdentityEndpoint = `http://127.0.0.1:${mi.port}${MI_PATH}`;
    mi.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#onRequest('managed-identity', req, res));
    authority.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#onRequest('authority', req, res));
  }

  /** Starts both servers on ephemeral loopback ports. */
  static async start(options: EntraEmulatorOptions = {}): Promise<EntraEmulator> {
    const tls = selfSignedCertificate();
    const mi = await listen(http.createServer());
    let authority: Listener;
    try {
      authority = await listen(https.createServer({ key: tls.key, cert: tls.cert }));
    } catch (error) {
      await closeListener(mi);
      throw error;
    }
    return new EntraEmulator(options, createSigningKey(), tls, mi, authority);
  }

  /** Closes both servers and destroys every socket, hung requests included. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#faults.clear();
    this.#hung.clear();
    await Promise.all([closeListener(this.#mi), closeListener(this.#authority)]);
    for (const wake of this.#waiters) wake();
  }

  /** Public half of the token signing key: what a resource server (the AMR emulator) verifies with. */
  get publicKey(): KeyObject {
    return this.#signingKey.publicKey;
  }

  /** Key id (`kid` header) of issued tokens. */
  get keyId(): string {
    return this.#signingKey.kid;
  }

  /** Registers a managed identity. User-assigned by default; `{ kind: 'system' }` for the system-assigned one. */
  addManagedIdentity(spec: ManagedIdentitySpec = {}): EmulatedManagedIdentity {
    let identity: EmulatedManagedIdentity;
    if (spec.kind === 'system') {
      if (this.#managedIdentities.some((mi) => mi.kind === 'system')) throw new Error('A system-assigned identity is already registered');
      const oid = spec.oid ?? randomUUID();
      identity = {
        kind: 'system', oid, objectId: oid, clientId: spec.clientId ?? randomUUID(),
        resourceId: `/subscriptions/${randomUUID()}/resourceGroups/emulated/providers/Microsoft.Web/sites/emulated`,
      };
    } else {
      if (spec.oid && spec.objectId && spec.oid !== spec.objectId) throw new Error('oid and objectId of a managed identity are the same thing; they differ');
      const oid = spec.oid ?? spec.objectId ?? randomUUID();
      identity = {
        kind: 'user', oid, objectId: oid, clientId: spec.clientId ?? randomUUID(),
        resourceId: spec.resourceId
          ?? `/subscriptions/${randomUUID()}/resourceGroups/emulated/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi-${oid.slice(0, 8)}`,
      };
    }
    this.#managedIdentities.push(identity);
    return { ...identity };
  }

  /** Registers a service principal that may use the client-credentials grant. */
  addServicePrincipal(spec: ServicePrincipalSpec): EmulatedServicePrincipal {
    const record: ServicePrincipalRecord = {
      tenantId: spec.tenantId,
      clientId: spec.clientId,
      oid: spec.oid ?? randomUUID(),
      ...(spec.clientSecret !== undefined ? { clientSecret: spec.clientSecret } : {}),
    };
    if (spec.certificate !== undefined) {
      const der = firstCertificateDer(spec.certificate);
      record.certificate = {
        sha1: createHash('sha1').update(der).digest('hex').toUpperCase(),
        sha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
        publicKey: createPublicKey(spec.certificate.slice(spec.certificate.indexOf('-----BEGIN CERTIFICATE-----'))),
      };
      record.thumbprint = record.certificate.sha1;
    }
    this.#servicePrincipals.push(record);
    const { tenantId, clientId, oid, thumbprint } = record;
    return { tenantId, clientId, oid, ...(thumbprint ? { thumbprint } : {}) };
  }

  /** Environment variables that make MSAL node use this emulator's App Service managed-identity endpoint. */
  managedIdentityEnv(): { IDENTITY_ENDPOINT: string; IDENTITY_HEADER: string } {
    return { IDENTITY_ENDPOINT: this.managedIdentityEndpoint, IDENTITY_HEADER: this.#identityHeader };
  }

  /**
   * Sets {@link managedIdentityEnv} on `process.env` and clears the variables of other managed-identity sources and of
   * EnvironmentCredential / WorkloadIdentityCredential, which would otherwise take precedence. Returns the restorer.
   */
  applyManagedIdentityEnv(): () => void {
    return applyEnv({
      ...this.managedIdentityEnv(),
      IDENTITY_SERVER_THUMBPRINT: undefined, MSI_ENDPOINT: undefined, MSI_SECRET: undefined, IMDS_ENDPOINT: undefined,
      AZURE_TENANT_ID: undefined, AZURE_CLIENT_ID: undefined, AZURE_CLIENT_SECRET: undefined,
      AZURE_CLIENT_CERTIFICATE_PATH: undefined, AZURE_FEDERATED_TOKEN_FILE: undefined, AZURE_USERNAME: undefined,
      AZURE_TOKEN_CREDENTIALS: undefined, AZURE_AUTHORITY_HOST: undefined,
    });
  }

  /**
   * Options a ClientSecretCredential / ClientCertificateCredential (or DefaultAzureCredential) needs to talk to this
   * authority: its host, no instance discovery (which would go to login.microsoftonline.com), and trust of its
   * self-signed certificate for this credential's requests only (core-rest-pipeline `tlsOptions.ca`; TLS
   * verification stays on, nothing global changes).
   */
  credentialOptions(): { authorityHost: string; disableInstanceDiscovery: true; tlsOptions: { ca: string } } {
    return { authorityHost: this.authorityHost, disableInstanceDiscovery: true, tlsOptions: { ca: this.tlsCertificate } };
  }

  /**
   * Signs a token directly (not counted as issued). Defaults: a random `oid`, this emulator's tenant, audience
   * `https://redis.azure.com`, lifetime `tokenLifetimeSeconds`. `overrides` replace or add claims; an override whose
   * value is `undefined` removes the claim.
   */
  mint(overrides: JwtClaims = {}): string {
    const claims = this.#claims({ oid: randomUUID(), tid: this.tenantId, aud: 'https://redis.azure.com', appid: randomUUID() });
    for (const [name, value] of Object.entries(overrides)) {
      if (value === undefined) Reflect.deleteProperty(claims, name);
      else claims[name] = value;
    }
    return signJwt(claims, this.#signingKey);
  }

  /** Injects a fault (replacing any fault on the same endpoint). Resolves once it is in effect. */
  async setFault(fault: EntraFault): Promise<void> {
    for (const endpoint of endpointsOf(fault)) {
      const listener = this.#listener(endpoint);
      this.#faults.set(endpoint, { fault, remaining: 'times' in fault && fault.times !== undefined ? fault.times : Infinity });
      if (fault.kind === 'down' && listener.listening) await closeListener(listener);
      if (fault.kind !== 'down' && !listener.listening && !this.#stopped) await relisten(listener);
    }
  }

  /** Removes faults (of one endpoint, or all); a server that was down listens again on its port. Hung requests stay hung. */
  async clearFault(endpoint?: EmulatorEndpoint): Promise<void> {
    for (const e of endpoint ? [endpoint] : (['managed-identity', 'authority'] as const)) {
      this.#faults.delete(e);
      const listener = this.#listener(e);
      if (!listener.listening && !this.#stopped) await relisten(listener);
    }
  }

  /** Destroys the sockets of requests held by a `hang` fault (their clients see the connection reset). */
  destroyHungRequests(): void {
    for (const res of this.#hung) res.req.socket.destroy();
    this.#hung.clear();
  }

  /** Requests held open by a `hang` fault whose client has not gone away: sockets a client left open. */
  get hungRequests(): number {
    return this.#hung.size;
  }

  /** A snapshot of the request counters. */
  get requests(): EntraRequestCounters {
    return { ...this.#counters, byOid: { ...this.#counters.byOid } };
  }

  /** Tokens issued by the endpoints (not by `mint`) since start or the last `resetCounters()`. */
  get tokensIssued(): number {
    return this.#tokensIssued;
  }

  /** Sets all counters to zero. */
  resetCounters(): void {
    this.#counters = emptyCounters();
    this.#tokensIssued = 0;
  }

  /**
   * Resolves once at least `n` requests were counted (since start or the last `resetCounters()`) on the chosen
   * counter. Rejects after `timeoutMs` or when the emulator stops first.
   */
  async waitForRequests(n: number, options: WaitForRequestsOptions = {}): Promise<EntraRequestCounters> {
    const current = (): number => options.oid !== undefined
      ? this.#counters.byOid[options.oid] ?? 0
      : this.#counters[options.counter ?? 'total'];
    if (current() >= n) return this.requests;
    const timeoutMs = options.timeoutMs ?? 10_000;
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        if (current() >= n) finish();
        else if (this.#stopped) finish(new Error(`The emulator stopped after ${current()} of ${n} requests`));
      };
      const timer = setTimeout(() => finish(new Error(`Timed out after ${timeoutMs} ms waiting for ${n} requests (got ${current()})`)), timeoutMs);
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (error) reject(error);
        else resolve(this.requests);
      };
      this.#waiters.add(check);
    });
  }

  // ---------------------------------------------------------------------------------------------------------------

  #listener(endpoint: EmulatorEndpoint): Listener {
    return endpoint === 'managed-identity' ? this.#mi : this.#authority;
  }

  #count(update: (counters: EntraRequestCounters) => void): void {
    update(this.#counters);
    for (const wake of [...this.#waiters]) wake();
  }

  #countOid(oid: string): void {
    this.#count((c) => { c.byOid[oid] = (c.byOid[oid] ?? 0) + 1; });
  }

  async #onRequest(endpoint: EmulatorEndpoint, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    // The fault in effect when the request arrives decides its fate, even if it is cleared while the body is read.
    const fault = this.#takeFault(endpoint);
    if (fault?.kind === 'hang') {
      // Held from arrival on, so that destroyHungRequests() right after waitForRequests() finds it.
      this.#hung.add(res);
      res.on('close', () => this.#hung.delete(res));
    }
    this.#count((c) => {
      c.total += 1;
      if (endpoint === 'managed-identity') {
        c.managedIdentity += 1;
      } else {
        c.authority += 1;
        if (url.pathname.includes('/.well-known/openid-configuration')) c.discovery += 1;
        if (/\/oauth2\/(v2\.0\/)?token$/.test(url.pathname)) c.tokenEndpoint += 1;
      }
    });
    let body: string;
    try {
      body = await readBody(req);
    } catch {
      return;
    }
    const oid = this.#requester(endpoint, url, body);
    if (oid !== undefined) this.#countOid(oid);
    if (fault) {
      this.#applyFault(endpoint, fault, req, res);
      return;
    }
    try {
      if (endpoint === 'managed-identity') this.#managedIdentityRequest(url, req, res);
      else this.#authorityRequest(url, body, req, res);
    } catch (error) {
      send(res, 500, { error: 'server_error', error_description: `Emulator failure: ${(error as Error).message}` });
    }
  }

  /** The oid of the identity a request is for, when it names a registered one (faulted requests included). */
  #requester(endpoint: EmulatorEndpoint, url: URL, body: string): string | undefined {
    if (endpoint === 'managed-identity') {
      const selectors = (['client_id', 'object_id', 'mi_res_id'] as const).filter((name) => url.searchParams.has(name));
      if (selectors.length > 1) return undefined;
      return this.#findManagedIdentity(selectors[0], selectors[0] ? url.searchParams.get(selectors[0]) ?? '' : '')?.oid;
    }
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (!token) return undefined;
    const tenant = decodeURIComponent(token[1] ?? '');
    const clientId = new URLSearchParams(body).get('client_id') ?? '';
    const multiTenant = MULTI_TENANT_ALIASES.has(tenant.toLowerCase());
    return this.#servicePrincipals.find((p) => sameId(p.clientId, clientId) && (multiTenant || sameId(p.tenantId, tenant)))?.oid;
  }

  #takeFault(endpoint: EmulatorEndpoint): EntraFault | undefined {
    const active = this.#faults.get(endpoint);
    if (!active || active.fault.kind === 'down' || active.remaining <= 0) return undefined;
    active.remaining -= 1;
    if (active.remaining <= 0) this.#faults.delete(endpoint);
    return active.fault;
  }

  #applyFault(endpoint: EmulatorEndpoint, fault: EntraFault, req: IncomingMessage, res: ServerResponse): void {
    switch (fault.kind) {
      case 'hang':
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'status': {
        const headers: Record<string, string> = {};
        if (fault.retryAfterSeconds !== undefined) headers['Retry-After'] = String(fault.retryAfterSeconds);
        else if (fault.retryAfterDate !== undefined) headers['Retry-After'] = fault.retryAfterDate.toUTCString();
        const body = fault.body ?? (endpoint === 'managed-identity'
          ? appServiceError(fault.status, statusMessage(fault.status))
          : this.#entraStatusError(fault.status, req));
        send(res, fault.status, body, headers);
        return;
      }
      case 'down':
        req.socket.destroy();
        return;
    }
  }

  // ----- App Service managed identity --------------------------------------------------------------------------

  #managedIdentityRequest(url: URL, req: IncomingMessage, res: ServerResponse): void {
    if (url.pathname.replace(/\/$/, '') !== MI_PATH) {
      send(res, 404, appServiceError(404, 'Not Found'));
      return;
    }
    if (req.method !== 'GET') {
      send(res, 405, appServiceError(405, 'Method Not Allowed'));
      return;
    }
    if (req.headers['x-identity-header'] !== this.#identityHeader) {
      send(res, 401, appServiceError(401, 'Unauthorized. The X-IDENTITY-HEADER header is missing or does not match.'));
      return;
    }
    const q = url.searchParams;
    if (q.get('api-version') !== APP_SERVICE_API_VERSION) {
      send(res, 400, appServiceError(400, `The api-version "${q.get('api-version') ?? ''}" is not supported.`));
      return;
    }
    const resource = q.get('resource');
    if (!resource) {
      send(res, 400, appServiceError(400, 'The resource parameter is required.'));
      return;
    }
    const selectors = (['client_id', 'object_id', 'mi_res_id'] as const).filter((name) => q.has(name));
    if (selectors.length > 1) {
      send(res, 400, appServiceError(400, 'Only one of client_id, object_id and mi_res_id may be given.'));
      return;
    }
    const identity = this.#findManagedIdentity(selectors[0], selectors[0] ? q.get(selectors[0]) ?? '' : '');
    if (!identity) {
      send(res, 400, appServiceError(400, 'Unable to load the proper Managed Identity.'));
      return;
    }
    const claims = this.#claims({
      aud: resource, oid: identity.oid, sub: identity.oid, tid: this.tenantId, appid: identity.clientId,
      xms_mirid: identity.resourceId,
    });
    const token = signJwt(claims, this.#signingKey);
    this.#tokensIssued += 1;
    send(res, 200, {
      access_token: token,
      expires_on: String(claims.exp),
      resource,
      token_type: 'Bearer',
      client_id: identity.clientId,
    });
  }

  #findManagedIdentity(selector: 'client_id' | 'object_id' | 'mi_res_id' | undefined, value: string): EmulatedManagedIdentity | undefined {
    const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
    switch (selector) {
      case undefined: return this.#managedIdentities.find((mi) => mi.kind === 'system');
      case 'client_id': return this.#managedIdentities.find((mi) => same(mi.clientId, value));
      case 'object_id': return this.#managedIdentities.find((mi) => same(mi.objectId, value));
      case 'mi_res_id': return this.#managedIdentities.find((mi) => mi.kind === 'user' && same(mi.resourceId, value));
    }
  }

  // ----- OpenID authority ---------------------------------------------------------------------------------------

  #authorityRequest(url: URL, body: string, req: IncomingMessage, res: ServerResponse): void {
    const discovery = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (discovery && req.method === 'GET') {
      const tenant = decodeURIComponent(discovery[1] ?? '');
      if (!this.#knownTenant(tenant)) {
        send(res, 400, this.#entraError('invalid_tenant', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`, req));
        return;
      }
      send(res, 200, this.#openIdConfiguration(tenant));
      return;
    }
    const keys = /^\/([^/]+)\/discovery\/v2\.0\/keys$/.exec(url.pathname);
    if (keys && req.method === 'GET') {
      send(res, 200, { keys: [{ ...this.#signingKey.publicKey.export({ format: 'jwk' }), kid: this.#signingKey.kid, use: 'sig', kty: 'RSA' }] });
      return;
    }
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (token && req.method === 'POST') {
      this.#tokenRequest(decodeURIComponent(token[1] ?? ''), new URLSearchParams(body), req, res);
      return;
    }
    send(res, 404, { error: 'not_found', error_description: `The emulator does not serve ${req.method} ${url.pathname}` });
  }

  /** A tenant some service principal lives in, or `common` / `organizations`. */
  #knownTenant(tenant: string): boolean {
    return MULTI_TENANT_ALIASES.has(tenant.toLowerCase()) || this.#servicePrincipals.some((sp) => sameId(sp.tenantId, tenant));
  }

  #openIdConfiguration(tenant: string): Record<string, unknown> {
    const base = `${this.authorityHost}/${tenant}`;
    const issuerTenant = MULTI_TENANT_ALIASES.has(tenant.toLowerCase()) ? '{tenantid}' : tenant;
    return {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${this.authorityHost}/${issuerTenant}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${this.authorityHost}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'oid', 'tid'],
      tenant_region_scope: 'EU',
      cloud_instance_name: 'emulated.invalid',
    };
  }

  #tokenRequest(tenant: string, form: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const fail = (status: number, error: string, code: number, description: string): void =>
      send(res, status, this.#entraError(error, code, description, req));
    const grantType = form.get('grant_type');
    if (grantType !== 'client_credentials') {
      fail(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType ?? ''}'.`);
      return;
    }
    const clientId = form.get('client_id') ?? '';
    if (!clientId) {
      fail(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
      return;
    }
    const multiTenant = MULTI_TENANT_ALIASES.has(tenant.toLowerCase());
    if (!this.#knownTenant(tenant)) {
      fail(400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`);
      return;
    }
    const sp = this.#servicePrincipals.find((p) => sameId(p.clientId, clientId) && (multiTenant || sameId(p.tenantId, tenant)));
    if (!sp) {
      fail(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
      return;
    }
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    if (secret !== null) {
      if (sp.clientSecret === undefined || secret !== sp.clientSecret) {
        fail(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${sp.clientId}'.`);
        return;
      }
    } else if (assertion !== null) {
      if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
        fail(400, 'invalid_request', 90014, "The required field 'client_assertion_type' is missing from the credential. Ensure that you have all the necessary parameters for the login request.");
        return;
      }
      const problem = this.#verifyClientAssertion(sp, assertion, `${this.authorityHost}/${tenant}/oauth2/v2.0/token`);
      if (problem) {
        fail(problem.status, 'invalid_client', problem.code, problem.description);
        return;
      }
    } else {
      fail(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
      return;
    }
    const scopeParam = form.get('scope') ?? '';
    const defaults = scopeParam.split(' ').filter((s) => s.endsWith('/.default'));
    if (defaults.length !== 1) {
      fail(400, 'invalid_scope', 1002012, `The provided value for scope ${scopeParam} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
      return;
    }
    const audience = (defaults[0] ?? '').slice(0, -'/.default'.length);
    const claims = this.#claims({ aud: audience, oid: sp.oid, sub: sp.oid, tid: sp.tenantId, appid: sp.clientId, azp: sp.clientId });
    const token = signJwt(claims, this.#signingKey);
    this.#tokensIssued += 1;
    send(res, 200, { token_type: 'Bearer', expires_in: this.tokenLifetimeSeconds, ext_expires_in: this.tokenLifetimeSeconds, access_token: token });
  }

  /** Checks a client assertion the way Entra does; returns the failure, or undefined when it is valid. */
  #verifyClientAssertion(sp: ServicePrincipalRecord, assertion: string, tokenEndpoint: string): { status: number; code: number; description: string } | undefined {
    const malformed = (why: string) => ({ status: 400, code: 50027, description: `JWT token is invalid or malformed. ${why}` });
    const parts = assertion.split('.');
    const [encodedHeader, encodedPayload, encodedSignature] = parts;
    if (parts.length !== 3 || encodedHeader === undefined || encodedPayload === undefined || encodedSignature === undefined) {
      return malformed('The assertion is not a JWT.');
    }
    let header: Record<string, unknown>;
    let payload: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(encodedHeader, 'base64url').toString('utf8')) as Record<string, unknown>;
      payload = JSON.parse(Buffer.from(encodedPayload, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return malformed('The assertion is not decodable.');
    }
    const sha256 = typeof header['x5t#S256'] === 'string' ? Buffer.from(header['x5t#S256'], 'base64url').toString('hex').toUpperCase() : undefined;
    const sha1 = typeof header.x5t === 'string' ? Buffer.from(header.x5t, 'base64url').toString('hex').toUpperCase() : undefined;
    const presented = sha256 ?? sha1 ?? '';
    const cert = sp.certificate;
    const known = cert && ((sha256 !== undefined && sha256 === cert.sha256) || (sha256 === undefined && sha1 !== undefined && sha1 === cert.sha1));
    if (!cert || !known) {
      return { status: 401, code: 700027, description: `Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${sp.clientId}'.]` };
    }
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(encodedSignature, 'base64url');
    let valid: boolean;
    if (header.alg === 'RS256') {
      valid = createVerify('RSA-SHA256').update(data).verify(cert.publicKey, signature);
    } else if (header.alg === 'PS256') {
      valid = cryptoVerify('sha256', data, {
        key: cert.publicKey, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO,
      }, signature);
    } else {
      return malformed(`Unsupported signing algorithm '${String(header.alg)}'.`);
    }
    if (!valid) {
      return { status: 401, code: 700027, description: 'Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]' };
    }
    if (payload.aud !== tokenEndpoint) return malformed(`The audience '${String(payload.aud)}' is not the token endpoint.`);
    if (payload.iss !== sp.clientId || payload.sub !== sp.clientId) return malformed('The iss and sub claims must be the client id.');
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== 'number' || payload.exp <= now || (typeof payload.nbf === 'number' && payload.nbf > now + 300)) {
      return { status: 401, code: 700024, description: 'Client assertion is not within its valid time range.' };
    }
    return undefined;
  }

  #entraStatusError(status: number, req: IncomingMessage): Record<string, unknown> {
    if (status === 429) return this.#entraError('temporarily_unavailable', 90055, 'TenantThrottlingError - There are too many incoming requests. Please try again later.', req);
    if (status === 503 || status === 408 || status === 504) return this.#entraError('temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.', req);
    if (status === 401) return this.#entraError('invalid_client', 7000215, 'Invalid client secret provided.', req);
    if (status >= 400 && status < 500) return this.#entraError('invalid_request', 90014, `The request was rejected with status ${status}.`, req);
    return this.#entraError('server_error', 50000, 'There was an error issuing a token or an issue with our sign-in service.', req);
  }

  #entraError(error: string, code: number, description: string, req: IncomingMessage): Record<string, unknown> {
    const traceId = randomUUID();
    const header = req.headers['client-request-id'];
    const correlationId = typeof header === 'string' && header ? header : randomUUID();
    const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
    return {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `${this.authorityHost}/error?code=${code}`,
    };
  }

  #claims(base: JwtClaims): JwtClaims {
    const now = Math.floor(Date.now() / 1000);
    const tid = typeof base.tid === 'string' ? base.tid : this.tenantId;
    return {
      iss: `https://sts.windows.net/${tid}/`,
      iat: now,
      nbf: now,
      exp: now + this.tokenLifetimeSeconds,
      idtyp: 'app',
      ver: '1.0',
      uti: randomUUID().replaceAll('-', ''),
      jti: randomUUID(),
      ...base,
    };
  }
}

// ----- helpers ----------------------------------------------------------------------------------------------------

function emptyCounters(): EntraRequestCounters {
  return { total: 0, managedIdentity: 0, authority: 0, tokenEndpoint: 0, discovery: 0, byOid: {} };
}

function endpointsOf(fault: EntraFault): EmulatorEndpoint[] {
  return fault.endpoint ? [fault.endpoint] : ['managed-identity', 'authority'];
}

function sameId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function statusMessage(status: number): string {
  return status === 429 ? 'Too many requests. Please retry later.' : (http.STATUS_CODES[status] ?? `Status ${status}`);
}

/** The error body of the App Service identity endpoint: `{"statusCode":400,"message":"...","correlationId":"..."}`. */
function appServiceError(status: number, message: string): Record<string, unknown> {
  return { statusCode: status, message, correlationId: randomUUID() };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store, no-cache',
    'x-ms-request-id': randomUUID(),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function firstCertificateDer(pem: string): Buffer {
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!match) throw new Error('The certificate is not a PEM certificate');
  return Buffer.from((match[1] ?? '').replace(/\s+/g, ''), 'base64');
}

async function listen(server: http.Server): Promise<Listener> {
  const listener: Listener = { server, port: 0, sockets: new Set(), listening: false };
  server.on('connection', (socket: Socket) => {
    listener.sockets.add(socket);
    socket.on('close', () => listener.sockets.delete(socket));
  });
  // A client that vanishes mid-request must not crash the test process.
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  listener.port = (server.address() as AddressInfo).port;
  listener.listening = true;
  return listener;
}

async function relisten(listener: Listener): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    listener.server.once('error', reject);
    listener.server.listen(listener.port, '127.0.0.1', () => {
      listener.server.off('error', reject);
      resolve();
    });
  });
  listener.listening = true;
}

async function closeListener(listener: Listener): Promise<void> {
  if (!listener.listening) return;
  listener.listening = false;
  const closed = new Promise<void>((resolve) => listener.server.close(() => resolve()));
  for (const socket of listener.sockets) socket.destroy();
  listener.sockets.clear();
  await closed;
}
