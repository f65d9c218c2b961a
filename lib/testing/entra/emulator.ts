// The Entra ID emulator's front: starts and stops its two servers, registers identities, sets faults, counts
// requests, and hands each request to the managed-identity endpoint or the authority.
import { randomUUID, type KeyObject } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { selfSignedCertificate } from '../certs.js';
import type { JwtClaims } from '../jwt.js';
import { authorityRequest, TOKEN_PATH, type Authority } from './authority.js';
import { Directory } from './directory.js';
import { applyEnv } from './env.js';
import { applyFault, endpointsOf, FaultTable } from './faults.js';
import { TokenIssuer } from './issuer.js';
import { closeListener, listen, relisten, type Listener } from './listener.js';
import {
  managedIdentityRequest,
  managedIdentitySelectors,
  MI_PATH,
  type ManagedIdentityEndpoint,
} from './managed-identity.js';
import { RequestCounters } from './request-counters.js';
import { readBody, send } from './responses.js';
import type {
  EmulatedManagedIdentity,
  EmulatedServicePrincipal,
  EmulatorEndpoint,
  EntraEmulatorOptions,
  EntraFault,
  EntraRequestCounters,
  ManagedIdentitySpec,
  ServicePrincipalSpec,
  WaitForRequestsOptions,
} from './types.js';

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
  readonly #issuer: TokenIssuer;
  readonly #mi: Listener;
  readonly #authority: Listener;
  readonly #directory = new Directory();
  readonly #faults = new FaultTable();
  readonly #counters = new RequestCounters();
  readonly #miEndpoint: ManagedIdentityEndpoint;
  readonly #authorityEndpoint: Authority;
  #stopped = false;

  private constructor(
    options: EntraEmulatorOptions,
    tls: { key: string; cert: string },
    mi: Listener,
    authority: Listener,
  ) {
    this.tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 3600;
    this.tenantId = options.tenantId ?? randomUUID();
    this.#identityHeader = options.identityHeader ?? randomUUID();
    this.#issuer = new TokenIssuer(this.tenantId, () => this.tokenLifetimeSeconds);
    this.tlsCertificate = tls.cert;
    this.#mi = mi;
    this.#authority = authority;
    this.authorityHost = `https://127.0.0.1:${authority.port}`;
    this.managedIdentityEndpoint = `http://127.0.0.1:${mi.port}${MI_PATH}`;
    this.#miEndpoint = {
      directory: this.#directory,
      issuer: this.#issuer,
      tenantId: this.tenantId,
      identityHeader: this.#identityHeader,
    };
    this.#authorityEndpoint = {
      directory: this.#directory,
      issuer: this.#issuer,
      authorityHost: this.authorityHost,
      tokenLifetimeSeconds: () => this.tokenLifetimeSeconds,
    };
    mi.server.on(
      'request',
      (req: IncomingMessage, res: ServerResponse) => void this.#onRequest('managed-identity', req, res),
    );
    authority.server.on(
      'request',
      (req: IncomingMessage, res: ServerResponse) => void this.#onRequest('authority', req, res),
    );
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
    return new EntraEmulator(options, tls, mi, authority);
  }

  /** Closes both servers and destroys every socket, hung requests included. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#faults.clear();
    await Promise.all([closeListener(this.#mi), closeListener(this.#authority)]);
    this.#counters.wake();
  }

  /** Public half of the token signing key: what a resource server (the AMR emulator) verifies with. */
  get publicKey(): KeyObject {
    return this.#issuer.signingKey.publicKey;
  }

  /** Key id (`kid` header) of issued tokens. */
  get keyId(): string {
    return this.#issuer.signingKey.kid;
  }

  /** Registers a managed identity. User-assigned by default; `{ kind: 'system' }` for the system-assigned one. */
  addManagedIdentity(spec: ManagedIdentitySpec = {}): EmulatedManagedIdentity {
    return this.#directory.addManagedIdentity(spec);
  }

  /** Registers a service principal that may use the client-credentials grant. */
  addServicePrincipal(spec: ServicePrincipalSpec): EmulatedServicePrincipal {
    return this.#directory.addServicePrincipal(spec);
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
      IDENTITY_SERVER_THUMBPRINT: undefined,
      MSI_ENDPOINT: undefined,
      MSI_SECRET: undefined,
      IMDS_ENDPOINT: undefined,
      AZURE_TENANT_ID: undefined,
      AZURE_CLIENT_ID: undefined,
      AZURE_CLIENT_SECRET: undefined,
      AZURE_CLIENT_CERTIFICATE_PATH: undefined,
      AZURE_FEDERATED_TOKEN_FILE: undefined,
      AZURE_USERNAME: undefined,
      AZURE_TOKEN_CREDENTIALS: undefined,
      AZURE_AUTHORITY_HOST: undefined,
    });
  }

  /**
   * Options a ClientSecretCredential / ClientCertificateCredential (or DefaultAzureCredential) needs to talk to this
   * authority: its host, no instance discovery (which would go to login.microsoftonline.com), and trust of its
   * self-signed certificate for this credential's requests only (core-rest-pipeline `tlsOptions.ca`; TLS
   * verification stays on, nothing global changes).
   */
  credentialOptions(): { authorityHost: string; disableInstanceDiscovery: true; tlsOptions: { ca: string } } {
    return {
      authorityHost: this.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: this.tlsCertificate },
    };
  }

  /**
   * Signs a token directly (not counted as issued). Defaults: a random `oid`, this emulator's tenant, audience
   * `https://redis.azure.com`, lifetime `tokenLifetimeSeconds`. `overrides` replace or add claims; an override whose
   * value is `undefined` removes the claim.
   */
  mint(overrides: JwtClaims = {}): string {
    const claims = this.#issuer.claims({
      oid: randomUUID(),
      tid: this.tenantId,
      aud: 'https://redis.azure.com',
      appid: randomUUID(),
    });
    for (const [name, value] of Object.entries(overrides)) {
      if (value === undefined) Reflect.deleteProperty(claims, name);
      else claims[name] = value;
    }
    return this.#issuer.sign(claims);
  }

  /** Injects a fault (replacing any fault on the same endpoint). Resolves once it is in effect. */
  async setFault(fault: EntraFault): Promise<void> {
    for (const endpoint of endpointsOf(fault)) {
      const listener = this.#listener(endpoint);
      this.#faults.set(endpoint, fault);
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
    this.#faults.destroyHung();
  }

  /** Requests held open by a `hang` fault whose client has not gone away: sockets a client left open. */
  get hungRequests(): number {
    return this.#faults.hungCount;
  }

  /** A snapshot of the request counters. */
  get requests(): EntraRequestCounters {
    return this.#counters.snapshot();
  }

  /** Tokens issued by the endpoints (not by `mint`) since start or the last `resetCounters()`. */
  get tokensIssued(): number {
    return this.#issuer.issued;
  }

  /** Sets all counters to zero. */
  resetCounters(): void {
    this.#counters.reset();
    this.#issuer.issued = 0;
  }

  /**
   * Resolves once at least `n` requests were counted (since start or the last `resetCounters()`) on the chosen
   * counter. Rejects after `timeoutMs` or when the emulator stops first.
   */
  async waitForRequests(n: number, options: WaitForRequestsOptions = {}): Promise<EntraRequestCounters> {
    return await this.#counters.waitFor(n, options, () => this.#stopped);
  }

  // ----- Request dispatch ----------------------------------------------------------------------------------------

  #listener(endpoint: EmulatorEndpoint): Listener {
    return endpoint === 'managed-identity' ? this.#mi : this.#authority;
  }

  async #onRequest(endpoint: EmulatorEndpoint, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    // The fault in effect when the request arrives decides its fate, even if it is cleared while the body is read.
    const fault = this.#faults.take(endpoint);
    if (fault?.kind === 'hang') {
      // Held from arrival on, so that destroyHungRequests() right after waitForRequests() finds it.
      this.#faults.hold(res);
    }
    this.#counters.count((c) => {
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
    if (oid !== undefined) this.#counters.countOid(oid);
    if (fault) {
      applyFault(endpoint, fault, this.authorityHost, req, res);
      return;
    }
    try {
      if (endpoint === 'managed-identity') managedIdentityRequest(this.#miEndpoint, url, req, res);
      else authorityRequest(this.#authorityEndpoint, url, body, req, res);
    } catch (error) {
      send(res, 500, { error: 'server_error', error_description: `Emulator failure: ${(error as Error).message}` });
    }
  }

  /** The oid of the identity a request is for, when it names a registered one (faulted requests included). */
  #requester(endpoint: EmulatorEndpoint, url: URL, body: string): string | undefined {
    if (endpoint === 'managed-identity') {
      const selectors = managedIdentitySelectors(url.searchParams);
      if (selectors.length > 1) return undefined;
      return this.#directory.findManagedIdentity(
        selectors[0],
        selectors[0] ? (url.searchParams.get(selectors[0]) ?? '') : '',
      )?.oid;
    }
    const token = TOKEN_PATH.exec(url.pathname);
    if (!token) return undefined;
    const tenant = decodeURIComponent(token[1] ?? '');
    const clientId = new URLSearchParams(body).get('client_id') ?? '';
    return this.#directory.findServicePrincipal(tenant, clientId)?.oid;
  }
}
