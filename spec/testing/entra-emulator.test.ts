// The Entra ID emulator itself, over raw HTTP: what it answers, its faults, counters and shutdown.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { selfSignedCertificate } from '../../lib/testing/certs.js';
import { EntraEmulator, applyEnv } from '../../lib/testing/entra-emulator.js';
import { verifyJwt } from '../../lib/testing/jwt.js';
import { must } from '../support/must.js';

/** The fields of the emulator's JSON replies that these tests read (token, error, discovery and keys documents). */
interface ReplyBody {
  access_token: string;
  client_id: string;
  expires_on: string;
  expires_in: number;
  resource: string;
  token_type: string;
  error: string;
  error_description: string;
  error_codes: number[];
  statusCode: number;
  message: string;
  correlationId: string;
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  keys: { kid: string }[];
  [field: string]: unknown;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body, or the text when it is not JSON. */
  body: ReplyBody;
}

/** One request on a fresh connection (no keep-alive), trusting the emulator's certificate for https. */
function call(
  emulator: EntraEmulator,
  url: string,
  options: { method?: string; headers?: Record<string, string>; form?: Record<string, string> } = {},
): Promise<Reply> {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  const target = new URL(url);
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      target,
      {
        method: options.method ?? (body ? 'POST' : 'GET'),
        agent: false,
        ca: emulator.tlsCertificate,
        headers: { ...options.headers, ...(body ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed as ReplyBody });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function claimsOf(token: string): Record<string, unknown> {
  const payload = must(token.split('.')[1], 'the payload of a JWT');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

function miUrl(emulator: EntraEmulator, params: Record<string, string> = {}): string {
  const url = new URL(emulator.managedIdentityEndpoint);
  url.searchParams.set('api-version', '2019-08-01');
  url.searchParams.set('resource', 'https://redis.azure.com');
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
}

function miHeaders(emulator: EntraEmulator): Record<string, string> {
  return { 'X-IDENTITY-HEADER': emulator.managedIdentityEnv().IDENTITY_HEADER };
}

describe('EntraEmulator', () => {
  let emulator: EntraEmulator;
  const tenantId = randomUUID();
  const clientId = randomUUID();
  let system: ReturnType<EntraEmulator['addManagedIdentity']>;
  let user: ReturnType<EntraEmulator['addManagedIdentity']>;
  let sp: ReturnType<EntraEmulator['addServicePrincipal']>;
  const spCert = selfSignedCertificate('emulator-test-sp');

  before(async () => {
    emulator = await EntraEmulator.start({ tokenLifetimeSeconds: 120 });
    system = emulator.addManagedIdentity({ kind: 'system' });
    user = emulator.addManagedIdentity({});
    sp = emulator.addServicePrincipal({
      tenantId,
      clientId,
      clientSecret: 'the-secret',
      certificate: spCert.cert + spCert.key,
    });
  });
  after(async () => {
    await emulator.stop();
  });

  describe('registration', () => {
    it('gives identities random UUID oids unless given, and user-assigned ones objectId === oid', () => {
      assert.match(system.oid, /^[0-9a-f-]{36}$/);
      assert.equal(user.objectId, user.oid);
      assert.match(user.resourceId, /^\/subscriptions\/.+\/userAssignedIdentities\//);
      const fixed = emulator.addManagedIdentity({ oid: 'f1f1f1f1-0000-0000-0000-000000000000' });
      assert.equal(fixed.oid, 'f1f1f1f1-0000-0000-0000-000000000000');
      assert.throws(() => emulator.addManagedIdentity({ kind: 'system' }), /already registered/);
      assert.equal(sp.thumbprint, spCert.thumbprint);
      assert.equal('clientSecret' in sp, false, 'the registered identity does not hold the secret');
    });
  });

  describe('App Service managed-identity endpoint', () => {
    it('issues a signed token for the system-assigned identity in the App Service response shape', async () => {
      const reply = await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) });
      assert.equal(reply.status, 200);
      assert.deepEqual(Object.keys(reply.body).sort(), [
        'access_token',
        'client_id',
        'expires_on',
        'resource',
        'token_type',
      ]);
      assert.equal(reply.body.token_type, 'Bearer');
      assert.equal(reply.body.resource, 'https://redis.azure.com');
      assert.equal(reply.body.client_id, system.clientId);
      assert.equal(typeof reply.body.expires_on, 'string');
      const verified = verifyJwt(reply.body.access_token, emulator.publicKey, 'https://redis.azure.com');
      assert.ok(verified.ok);
      const claims = verified.claims;
      assert.equal(claims.oid, system.oid);
      assert.equal(claims.tid, emulator.tenantId);
      assert.equal(claims.exp, Number(reply.body.expires_on));
      assert.equal(claims.exp - (claims.iat as number), 120);
      assert.equal(claims.nbf, claims.iat);
      assert.equal(typeof claims.uti, 'string');
      assert.equal(typeof claims.jti, 'string');
    });

    it('selects user-assigned identities by client_id, object_id and mi_res_id', async () => {
      const selectors: Record<string, string>[] = [
        { client_id: user.clientId },
        { object_id: user.objectId },
        { mi_res_id: user.resourceId.toUpperCase() },
      ];
      for (const params of selectors) {
        const reply = await call(emulator, miUrl(emulator, params), { headers: miHeaders(emulator) });
        assert.equal(reply.status, 200, JSON.stringify(params));
        assert.equal(claimsOf(reply.body.access_token).oid, user.oid);
      }
    });

    it('issues unique tokens (uti, jti) and derives aud from the resource', async () => {
      const a = await call(emulator, miUrl(emulator, { resource: 'https://vault.azure.net' }), {
        headers: miHeaders(emulator),
      });
      const b = await call(emulator, miUrl(emulator, { resource: 'https://vault.azure.net' }), {
        headers: miHeaders(emulator),
      });
      const [ca, cb] = [claimsOf(a.body.access_token), claimsOf(b.body.access_token)];
      assert.equal(ca.aud, 'https://vault.azure.net');
      assert.notEqual(ca.uti, cb.uti);
      assert.notEqual(ca.jti, cb.jti);
    });

    it('answers an unknown identity with 400 and the App Service error body', async () => {
      const reply = await call(emulator, miUrl(emulator, { client_id: randomUUID() }), {
        headers: miHeaders(emulator),
      });
      assert.equal(reply.status, 400);
      assert.equal(reply.body.statusCode, 400);
      assert.equal(reply.body.message, 'Unable to load the proper Managed Identity.');
      assert.match(reply.body.correlationId, /^[0-9a-f-]{36}$/);
    });

    it('rejects a missing or wrong X-IDENTITY-HEADER, two selectors, and a wrong api-version', async () => {
      assert.equal((await call(emulator, miUrl(emulator))).status, 401);
      assert.equal((await call(emulator, miUrl(emulator), { headers: { 'X-IDENTITY-HEADER': 'nope' } })).status, 401);
      const two = await call(emulator, miUrl(emulator, { client_id: user.clientId, object_id: user.objectId }), {
        headers: miHeaders(emulator),
      });
      assert.equal(two.status, 400);
      const version = await call(emulator, miUrl(emulator, { 'api-version': '2017-09-01' }), {
        headers: miHeaders(emulator),
      });
      assert.equal(version.status, 400);
    });

    it('applyManagedIdentityEnv sets IDENTITY_ENDPOINT/IDENTITY_HEADER, clears competing variables and restores them', () => {
      const outer = applyEnv({ AZURE_CLIENT_ID: 'outer', IDENTITY_ENDPOINT: undefined });
      try {
        const restore = emulator.applyManagedIdentityEnv();
        assert.equal(process.env.IDENTITY_ENDPOINT, emulator.managedIdentityEndpoint);
        assert.equal(process.env.IDENTITY_HEADER, emulator.managedIdentityEnv().IDENTITY_HEADER);
        assert.equal(process.env.AZURE_CLIENT_ID, undefined);
        restore();
        assert.equal(process.env.IDENTITY_ENDPOINT, undefined);
        assert.equal(process.env.AZURE_CLIENT_ID, 'outer');
      } finally {
        outer();
      }
    });
  });

  describe('OpenID authority', () => {
    const tokenUrl = () => `${emulator.authorityHost}/${tenantId}/oauth2/v2.0/token`;
    const scope = 'https://redis.azure.com/.default';

    it('serves openid-configuration discovery and JWKS over https with its self-signed certificate', async () => {
      const reply = await call(emulator, `${emulator.authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body.token_endpoint, tokenUrl());
      assert.equal(reply.body.issuer, `${emulator.authorityHost}/${tenantId}/v2.0`);
      for (const field of ['authorization_endpoint', 'jwks_uri']) assert.equal(typeof reply.body[field], 'string');
      const keys = await call(emulator, reply.body.jwks_uri);
      assert.equal(keys.body.keys[0]?.kid, emulator.keyId);
    });

    it('issues a token for client_credentials with the client secret, aud derived from the scope', async () => {
      const reply = await call(emulator, tokenUrl(), {
        form: { grant_type: 'client_credentials', client_id: clientId, client_secret: 'the-secret', scope },
      });
      assert.equal(reply.status, 200);
      assert.equal(reply.body.token_type, 'Bearer');
      assert.equal(reply.body.expires_in, 120);
      const claims = claimsOf(reply.body.access_token);
      assert.equal(claims.oid, sp.oid);
      assert.equal(claims.tid, tenantId);
      assert.equal(claims.aud, 'https://redis.azure.com');
      assert.equal(claims.appid, clientId);
    });

    it('answers a wrong secret with 401 invalid_client AADSTS7000215, without quoting the secret', async () => {
      const reply = await call(emulator, tokenUrl(), {
        form: { grant_type: 'client_credentials', client_id: clientId, client_secret: 'wrong-secret-value', scope },
      });
      assert.equal(reply.status, 401);
      assert.equal(reply.body.error, 'invalid_client');
      assert.deepEqual(reply.body.error_codes, [7000215]);
      assert.match(reply.body.error_description, /^AADSTS7000215: Invalid client secret provided/);
      assert.doesNotMatch(JSON.stringify(reply.body), /wrong-secret-value/);
      for (const field of ['timestamp', 'trace_id', 'correlation_id', 'error_uri'])
        assert.equal(typeof reply.body[field], 'string');
    });

    it('answers an unknown client with 400 unauthorized_client AADSTS700016 and an unknown tenant with AADSTS90002', async () => {
      const unknown = await call(emulator, tokenUrl(), {
        form: { grant_type: 'client_credentials', client_id: randomUUID(), client_secret: 'x', scope },
      });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error, 'unauthorized_client');
      assert.deepEqual(unknown.body.error_codes, [700016]);
      const tenant = await call(emulator, `${emulator.authorityHost}/${randomUUID()}/oauth2/v2.0/token`, {
        form: { grant_type: 'client_credentials', client_id: clientId, client_secret: 'the-secret', scope },
      });
      assert.equal(tenant.status, 400);
      assert.deepEqual(tenant.body.error_codes, [90002]);
      const discovery = await call(
        emulator,
        `${emulator.authorityHost}/${randomUUID()}/v2.0/.well-known/openid-configuration`,
      );
      assert.equal(discovery.status, 400);
      assert.equal(discovery.body.error, 'invalid_tenant');
    });

    it('rejects a scope without /.default (invalid_scope) and other grant types', async () => {
      const noDefault = await call(emulator, tokenUrl(), {
        form: {
          grant_type: 'client_credentials',
          client_id: clientId,
          client_secret: 'the-secret',
          scope: 'https://redis.azure.com',
        },
      });
      assert.equal(noDefault.status, 400);
      assert.equal(noDefault.body.error, 'invalid_scope');
      const grant = await call(emulator, tokenUrl(), { form: { grant_type: 'password', client_id: clientId } });
      assert.equal(grant.body.error, 'unsupported_grant_type');
    });

    /** A client assertion as MSAL makes it for the SHA-1 thumbprint (RS256 + x5t). */
    function assertion(key: string, thumbprintHex: string, claims: Record<string, unknown> = {}): string {
      const now = Math.floor(Date.now() / 1000);
      const header = Buffer.from(
        JSON.stringify({ alg: 'RS256', typ: 'JWT', x5t: Buffer.from(thumbprintHex, 'hex').toString('base64url') }),
      ).toString('base64url');
      const payload = Buffer.from(
        JSON.stringify({
          aud: tokenUrl(),
          iss: clientId,
          sub: clientId,
          nbf: now,
          exp: now + 600,
          jti: randomUUID(),
          ...claims,
        }),
      ).toString('base64url');
      const signature = createSign('RSA-SHA256').update(`${header}.${payload}`).sign(key).toString('base64url');
      return `${header}.${payload}.${signature}`;
    }

    const assertionForm = (jwt: string) => ({
      grant_type: 'client_credentials',
      client_id: clientId,
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: jwt,
    });

    it('accepts a client assertion signed by the registered certificate (x5t, RS256)', async () => {
      const der = Buffer.from(spCert.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      assert.equal(createHash('sha1').update(der).digest('hex').toUpperCase(), spCert.thumbprint);
      const reply = await call(emulator, tokenUrl(), { form: assertionForm(assertion(spCert.key, spCert.thumbprint)) });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(claimsOf(reply.body.access_token).oid, sp.oid);
    });

    it('rejects an assertion with an unknown thumbprint, a bad signature, or an expired one', async () => {
      const unknown = await call(emulator, tokenUrl(), { form: assertionForm(assertion(spCert.key, 'AB'.repeat(20))) });
      assert.equal(unknown.status, 401);
      assert.equal(unknown.body.error, 'invalid_client');
      assert.deepEqual(unknown.body.error_codes, [700027]);
      assert.match(unknown.body.error_description, /The key was not found/);
      const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString();
      const forged = await call(emulator, tokenUrl(), { form: assertionForm(assertion(otherKey, spCert.thumbprint)) });
      assert.equal(forged.status, 401);
      assert.match(forged.body.error_description, /did not match the expected signature/);
      const expired = await call(emulator, tokenUrl(), {
        form: assertionForm(assertion(spCert.key, spCert.thumbprint, { exp: 1000 })),
      });
      assert.deepEqual(expired.body.error_codes, [700024]);
    });

    it('credentialOptions() names the authority, disables instance discovery and trusts the certificate', () => {
      assert.deepEqual(emulator.credentialOptions(), {
        authorityHost: emulator.authorityHost,
        disableInstanceDiscovery: true,
        tlsOptions: { ca: emulator.tlsCertificate },
      });
      assert.match(emulator.authorityHost, /^https:\/\/127\.0\.0\.1:\d+$/);
    });
  });

  describe('tokens', () => {
    it('honours tokenLifetimeSeconds set at runtime', async () => {
      emulator.tokenLifetimeSeconds = 5;
      try {
        const reply = await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) });
        const claims = claimsOf(reply.body.access_token);
        assert.equal((claims.exp as number) - (claims.iat as number), 5);
      } finally {
        emulator.tokenLifetimeSeconds = 120;
      }
    });

    it('mint() signs overrides, removes claims set to undefined, and is not counted', () => {
      emulator.resetCounters();
      const token = emulator.mint({ oid: 'abc', extra: 1, tid: undefined });
      const verified = verifyJwt(token, emulator.publicKey, 'https://redis.azure.com');
      assert.ok(verified.ok);
      assert.equal(verified.claims.oid, 'abc');
      assert.equal(verified.claims.extra, 1);
      assert.equal('tid' in verified.claims, false);
      assert.equal(emulator.tokensIssued, 0);
      const expired = emulator.mint({ exp: Math.floor(Date.now() / 1000) - 1 });
      assert.deepEqual(verifyJwt(expired, emulator.publicKey, 'https://redis.azure.com'), {
        ok: false,
        reason: 'expired',
      });
    });
  });

  describe('counters', () => {
    it('counts requests per endpoint and per identity, and tokens issued', async () => {
      emulator.resetCounters();
      await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) });
      await call(emulator, miUrl(emulator, { client_id: randomUUID() }), { headers: miHeaders(emulator) });
      await call(emulator, `${emulator.authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration`);
      await call(emulator, `${emulator.authorityHost}/${tenantId}/oauth2/v2.0/token`, {
        form: {
          grant_type: 'client_credentials',
          client_id: clientId,
          client_secret: 'the-secret',
          scope: 'https://redis.azure.com/.default',
        },
      });
      assert.deepEqual(emulator.requests, {
        total: 4,
        managedIdentity: 2,
        authority: 2,
        tokenEndpoint: 1,
        discovery: 1,
        byOid: { [system.oid]: 1, [sp.oid]: 1 },
      });
      assert.equal(emulator.tokensIssued, 2);
      emulator.resetCounters();
      await emulator.setFault({ kind: 'status', status: 500, times: 1, endpoint: 'managed-identity' });
      await call(emulator, miUrl(emulator, { client_id: user.clientId }), { headers: miHeaders(emulator) });
      assert.equal(emulator.requests.byOid[user.oid], 1, 'a faulted request is still attributed to its identity');
      assert.equal(emulator.tokensIssued, 0);
      emulator.resetCounters();
      assert.equal(emulator.requests.total, 0);
      assert.equal(emulator.tokensIssued, 0);
    });

    it('waitForRequests resolves once the counter reaches n, per counter or oid, and times out otherwise', async () => {
      emulator.resetCounters();
      const waiting = emulator.waitForRequests(2, { counter: 'managedIdentity' });
      const byOid = emulator.waitForRequests(1, { oid: user.oid });
      await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) });
      await call(emulator, miUrl(emulator, { client_id: user.clientId }), { headers: miHeaders(emulator) });
      assert.equal((await waiting).managedIdentity, 2);
      assert.equal((await byOid).byOid[user.oid], 1);
      assert.equal((await emulator.waitForRequests(1)).total, 2, 'already reached: resolves at once');
      await assert.rejects(
        emulator.waitForRequests(99, { timeoutMs: 20 }),
        /Timed out after 20 ms waiting for 99 requests/,
      );
    });
  });

  describe('faults', () => {
    it('down refuses connections on both servers, and clearFault() listens on the same ports again', async () => {
      const miEndpoint = emulator.managedIdentityEndpoint;
      await emulator.setFault({ kind: 'down' });
      await assert.rejects(call(emulator, miUrl(emulator), { headers: miHeaders(emulator) }), { code: 'ECONNREFUSED' });
      await assert.rejects(
        call(emulator, `${emulator.authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration`),
        { code: 'ECONNREFUSED' },
      );
      await emulator.clearFault();
      assert.equal(emulator.managedIdentityEndpoint, miEndpoint);
      assert.equal((await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) })).status, 200);
    });

    it('a fault can target one endpoint', async () => {
      await emulator.setFault({ kind: 'down', endpoint: 'authority' });
      try {
        assert.equal((await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) })).status, 200);
        await assert.rejects(
          call(emulator, `${emulator.authorityHost}/${tenantId}/v2.0/.well-known/openid-configuration`),
          { code: 'ECONNREFUSED' },
        );
      } finally {
        await emulator.clearFault();
      }
    });

    it('status answers the given status with Azure-shaped bodies and Retry-After, `times` times', async () => {
      await emulator.setFault({ kind: 'status', status: 429, retryAfterSeconds: 7, times: 2 });
      const mi = await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) });
      assert.equal(mi.status, 429);
      assert.equal(mi.headers['retry-after'], '7');
      assert.equal(mi.body.statusCode, 429);
      const aad = await call(emulator, `${emulator.authorityHost}/${tenantId}/oauth2/v2.0/token`, {
        form: { grant_type: 'client_credentials' },
      });
      assert.equal(aad.status, 429);
      assert.equal(aad.body.error, 'temporarily_unavailable');
      assert.match(aad.body.error_description, /^AADSTS90055:/);
      // Each endpoint had its own two faulted requests.
      assert.equal((await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) })).status, 429);
      assert.equal((await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) })).status, 200);
      await emulator.clearFault();

      const date = new Date(Date.now() + 60_000);
      await emulator.setFault({ kind: 'status', status: 503, retryAfterDate: date, endpoint: 'authority' });
      const unavailable = await call(emulator, `${emulator.authorityHost}/${tenantId}/oauth2/v2.0/token`, { form: {} });
      assert.equal(unavailable.status, 503);
      assert.equal(unavailable.headers['retry-after'], date.toUTCString());
      assert.equal(unavailable.body.error, 'temporarily_unavailable');
      await emulator.setFault({ kind: 'status', status: 500, endpoint: 'authority' });
      assert.equal(
        (await call(emulator, `${emulator.authorityHost}/${tenantId}/oauth2/v2.0/token`, { form: {} })).body.error,
        'server_error',
      );
      await emulator.clearFault();
    });

    it('reset destroys the connection without an answer', async () => {
      await emulator.setFault({ kind: 'reset', times: 1 });
      await assert.rejects(
        call(emulator, miUrl(emulator), { headers: miHeaders(emulator) }),
        (error: NodeJS.ErrnoException) => error.code === 'ECONNRESET' || /socket hang up/.test(error.message),
      );
      assert.equal((await call(emulator, miUrl(emulator), { headers: miHeaders(emulator) })).status, 200);
      await emulator.clearFault();
    });

    it('hang accepts and never answers; stop() destroys the hung request and closes everything', async () => {
      const own = await EntraEmulator.start();
      own.addManagedIdentity({ kind: 'system' });
      await own.setFault({ kind: 'hang' });
      let settled = false;
      const hung = call(own, miUrl(own), { headers: miHeaders(own) }).finally(() => {
        settled = true;
      });
      await own.waitForRequests(1);
      await own.clearFault();
      // A later request is answered while the hung one stays hung.
      assert.equal((await call(own, miUrl(own), { headers: miHeaders(own) })).status, 200);
      assert.equal(settled, false);
      const hungFails = assert.rejects(hung);
      const waiterFails = assert.rejects(own.waitForRequests(99, { timeoutMs: 60_000 }), /stopped/);
      await own.stop();
      await hungFails;
      await waiterFails;
      await assert.rejects(call(own, miUrl(own), { headers: miHeaders(own) }), { code: 'ECONNREFUSED' });
      await assert.rejects(call(own, `${own.authorityHost}/x/v2.0/.well-known/openid-configuration`), {
        code: 'ECONNREFUSED',
      });
      await own.stop();
    });

    it('stop() while down does not fail, and faults cannot reopen a stopped emulator', async () => {
      const own = await EntraEmulator.start();
      await own.setFault({ kind: 'down' });
      await own.stop();
      await own.clearFault();
      await assert.rejects(call(own, miUrl(own)), { code: 'ECONNREFUSED' });
    });
  });
});
