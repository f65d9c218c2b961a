// createConfidentialCredentialsProvider through real ClientSecretCredential / ClientCertificateCredential against the
// Entra emulator's https authority.
import { JWT, failureOf as sharedFailureOf } from '../support/provider-failure.js';
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  createConfidentialCredentialsProvider,
  type ConfidentialCredentialsProviderOptions,
} from '../../lib/identity/confidential.js';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import type { RefreshFailedEvent } from '../../lib/identity/events.js';
import { defaultIsRetryable } from '../../lib/manager/retryable.js';
import { selfSignedCertificate } from '../../lib/testing/certs.js';
import { EntraEmulator, type EmulatedServicePrincipal, type EntraFault } from '../../lib/testing/entra-emulator.js';

const SECRET = 'confidential-test-secret-value';

describe('createConfidentialCredentialsProvider', () => {
  let emulator: EntraEmulator;
  let secretApp: EmulatedServicePrincipal;
  let certApp: EmulatedServicePrincipal;
  const tenantId = randomUUID();
  const cert = selfSignedCertificate('confidential-test-sp');
  const certWithKey = cert.cert + cert.key;
  let certDir: string;
  const providers: EntraCredentialsProvider[] = [];

  /** Options that reach the emulator: its authority host, no instance discovery, trust of its certificate. */
  const reach = () => ({ credentialOptions: emulator.credentialOptions() });

  function provider(options: ConfidentialCredentialsProviderOptions): EntraCredentialsProvider {
    const created = createConfidentialCredentialsProvider({
      ...options,
      tokenManagerOptions: {
        tokenRequestTimeout: 5_000,
        retryOptions: { maxAttempts: 2, initialDelay: 1, maxDelay: 1 },
        ...options.tokenManagerOptions,
      },
    });
    providers.push(created);
    return created;
  }

  const failureOf = (p: EntraCredentialsProvider) => sharedFailureOf(p, { secrets: [SECRET] });

  before(async () => {
    emulator = await EntraEmulator.start({ tokenLifetimeSeconds: 60 });
    secretApp = emulator.addServicePrincipal({ tenantId, clientId: randomUUID(), clientSecret: SECRET });
    certApp = emulator.addServicePrincipal({ tenantId, clientId: randomUUID(), certificate: cert.cert });
    certDir = mkdtempSync(join(tmpdir(), 'entraid-confidential-'));
  });
  afterEach(async () => {
    for (const p of providers.splice(0)) p.dispose();
    emulator.destroyHungRequests();
    await emulator.clearFault();
  });
  after(async () => {
    await emulator.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  describe('obtains a token', () => {
    it('with a client secret (default authority, host from credentialOptions)', async () => {
      const token = await provider({
        clientId: secretApp.clientId,
        tenantId,
        clientSecret: SECRET,
        ...reach(),
      }).getToken();
      assert.equal(token.oid, secretApp.oid);
      assert.equal(token.username, secretApp.oid);
      assert.equal(token.claims.tid, tenantId);
      assert.equal(token.claims.aud, 'https://redis.azure.com');
    });

    const certificates: [string, () => ConfidentialCredentialsProviderOptions['certificate']][] = [
      ['a PEM string with the key', () => certWithKey],
      ['{ certificate }', () => ({ certificate: certWithKey })],
      [
        '{ certificatePath }',
        () => {
          const path = join(certDir, 'client.pem');
          writeFileSync(path, certWithKey);
          return { certificatePath: path };
        },
      ],
    ];
    for (const [name, certificate] of certificates) {
      it(`with a client certificate given as ${name}`, async () => {
        const token = await provider({
          clientId: certApp.clientId,
          tenantId,
          certificate: certificate(),
          ...reach(),
        }).getToken();
        assert.equal(token.oid, certApp.oid);
      });
    }

    it('with a certificate and sendCertificateChain', async () => {
      const token = await provider({
        clientId: certApp.clientId,
        tenantId,
        certificate: certWithKey,
        sendCertificateChain: true,
        ...reach(),
      }).getToken();
      assert.equal(token.oid, certApp.oid);
    });

    it('with authority.tenantId taking precedence over tenantId', async () => {
      const token = await provider({
        clientId: secretApp.clientId,
        tenantId: 'not-this-one',
        clientSecret: SECRET,
        authority: { authorityType: 'default', tenantId },
        ...reach(),
      }).getToken();
      assert.equal(token.claims.tid, tenantId);
    });

    it('with a custom authority URL that holds the tenant', async () => {
      const { authorityHost: _host, ...rest } = emulator.credentialOptions();
      const token = await provider({
        clientId: secretApp.clientId,
        clientSecret: SECRET,
        authority: { authorityType: 'custom', authority: `${emulator.authorityHost}/${tenantId}/` },
        credentialOptions: rest,
      }).getToken();
      assert.equal(token.oid, secretApp.oid);
    });

    it('with a custom authority URL and a separate tenant id', async () => {
      const { authorityHost: _host, ...rest } = emulator.credentialOptions();
      const token = await provider({
        clientId: secretApp.clientId,
        clientSecret: SECRET,
        tenantId,
        authority: { authorityType: 'custom', authority: emulator.authorityHost },
        credentialOptions: rest,
      }).getToken();
      assert.equal(token.oid, secretApp.oid);
    });

    it('multi-tenant with a tenant id', async () => {
      const token = await provider({
        clientId: secretApp.clientId,
        clientSecret: SECRET,
        authority: { authorityType: 'multi-tenant', tenantId },
        ...reach(),
      }).getToken();
      assert.equal(token.claims.tid, tenantId);
    });

    it('multi-tenant with the top-level tenantId', async () => {
      const token = await provider({
        clientId: secretApp.clientId,
        clientSecret: SECRET,
        tenantId,
        authority: { authorityType: 'multi-tenant' },
        ...reach(),
      }).getToken();
      assert.equal(token.claims.tid, tenantId);
    });
  });

  describe('failures', () => {
    it('a wrong secret is not retried and not quoted', async () => {
      emulator.resetCounters();
      const { error, report } = await failureOf(
        provider({
          clientId: secretApp.clientId,
          tenantId,
          clientSecret: 'a-wrong-secret',
          ...reach(),
          tokenManagerOptions: { retryOptions: { maxAttempts: 3, initialDelay: 1, maxDelay: 1 } },
        }),
      );
      assert.equal(report.attempts, 1);
      assert.equal(emulator.requests.tokenEndpoint, 1);
      assert.match(error.cause?.message ?? '', /^invalid_client: .*AADSTS7000215/);
      assert.equal(inspect(error, { depth: 10 }).includes('a-wrong-secret'), false);
      assert.equal(defaultIsRetryable(error), false);
    });

    it('an unknown client is not retried', async () => {
      const { error, report } = await failureOf(
        provider({ clientId: randomUUID(), tenantId, clientSecret: SECRET, ...reach() }),
      );
      assert.equal(report.attempts, 1);
      assert.match(error.cause?.message ?? '', /^unauthorized_client: .*AADSTS700016/);
    });

    const faults: EntraFault[] = [
      { kind: 'down' },
      { kind: 'reset' },
      { kind: 'status', status: 500 },
      { kind: 'status', status: 503, retryAfterSeconds: 1 },
      { kind: 'status', status: 429, retryAfterSeconds: 1 },
    ];
    for (const fault of faults) {
      it(`at start-up, ${JSON.stringify(fault)} is retried, then reported; the provider recovers`, async () => {
        const p = provider({ clientId: secretApp.clientId, tenantId, clientSecret: SECRET, ...reach() });
        await emulator.setFault(fault);
        const { error, report } = await failureOf(p);
        assert.equal(report.attempts, 2);
        // MSAL could not fetch the authority's metadata: the same error for every fault.
        assert.match(error.cause?.message ?? '', /^endpoints_resolution_error: /);
        assert.equal(defaultIsRetryable(error), true);
        await emulator.clearFault();
        assert.equal((await p.getToken()).oid, secretApp.oid);
      });
    }

    it('a refresh that fails mid-life with 500 is reported as retryable; the token in use stays valid', async () => {
      emulator.tokenLifetimeSeconds = 3;
      try {
        const p = provider({ clientId: certApp.clientId, tenantId, certificate: certWithKey, ...reach() });
        const first = new Promise<void>((resolve) => p.once('tokenRefreshed', () => resolve()));
        const unsubscribe = p.subscribe({ onToken: () => {} });
        await first;
        await emulator.setFault({ kind: 'status', status: 500, endpoint: 'authority' });
        const report = await new Promise<RefreshFailedEvent>((resolve) => p.once('refreshFailed', resolve));
        unsubscribe();
        assert.equal(report.attempts, 2);
        assert.match((report.error as Error).message, /^(server_error: .*AADSTS50000|50000: AADSTS50000)/);
        assert.equal(defaultIsRetryable(report.error), true);
        assert.doesNotMatch(inspect(report, { depth: 10 }), JWT);
      } finally {
        emulator.tokenLifetimeSeconds = 60;
      }
    });

    it('after a 503 with Retry-After, retries pass once MSAL lets requests through again', async () => {
      const p = provider({
        clientId: secretApp.clientId,
        tenantId,
        clientSecret: SECRET,
        ...reach(),
        tokenManagerOptions: { retryOptions: { maxAttempts: 40, initialDelay: 100, maxDelay: 100 } },
      });
      // Warm the credential's metadata through a token, then fail the next token request once.
      await p.getToken();
      const fresh = provider({
        clientId: secretApp.clientId,
        tenantId,
        clientSecret: SECRET,
        ...reach(),
        tokenManagerOptions: { retryOptions: { maxAttempts: 40, initialDelay: 100, maxDelay: 100 } },
      });
      await emulator.setFault({ kind: 'status', status: 503, retryAfterSeconds: 1, times: 2, endpoint: 'authority' });
      emulator.resetCounters();
      const token = await fresh.getToken({ timeout: 20_000 });
      assert.equal(token.oid, secretApp.oid);
      assert.equal(emulator.requests.discovery >= 1, true);
    });

    it('a hung request ends at tokenRequestTimeout, retryably', async () => {
      const p = provider({
        clientId: secretApp.clientId,
        tenantId,
        clientSecret: SECRET,
        ...reach(),
        tokenManagerOptions: { tokenRequestTimeout: 100, retryOptions: { maxAttempts: 1 } },
      });
      await emulator.setFault({ kind: 'hang' });
      const { error } = await failureOf(p);
      assert.equal(error.cause?.name, 'TokenRequestTimeoutError');
      assert.equal(defaultIsRetryable(error), true);
    });
  });

  describe('invalid options throw a TypeError naming the option, never quoting a secret', () => {
    const base = { clientId: 'app', tenantId: 'tenant' };
    const cases: [string, unknown, RegExp][] = [
      ['options not an object', null, /^Invalid options: expected an object, got null$/],
      [
        'no clientId',
        { tenantId: 't', clientSecret: SECRET },
        /^Invalid option "clientId": expected a non-empty string, got undefined$/,
      ],
      [
        'empty clientId',
        { clientId: ' ', tenantId: 't', clientSecret: SECRET },
        /^Invalid option "clientId": expected a non-empty string, got the string " "$/,
      ],
      [
        'neither secret nor certificate',
        base,
        /^Invalid option "clientSecret": expected a non-empty string \(or give "certificate" instead\), got undefined$/,
      ],
      [
        'empty secret',
        { ...base, clientSecret: '' },
        /^Invalid option "clientSecret": expected a non-empty string .*, got an empty string$/,
      ],
      ['secret not a string', { ...base, clientSecret: 42 }, /got a number \(not shown\)$/],
      [
        'both secret and certificate',
        { ...base, clientSecret: SECRET, certificate: certWithKey },
        /^Invalid options "clientSecret" and "certificate": give one of them, not both$/,
      ],
      [
        'certificate without a key',
        { ...base, certificate: cert.cert },
        /^Invalid option "certificate": expected PEM text holding both a certificate and its private key, got text that lacks a private key$/,
      ],
      [
        'key without a certificate',
        { ...base, certificate: { certificate: cert.key } },
        /^Invalid option "certificate.certificate": .*lacks a certificate$/,
      ],
      [
        'certificate of a wrong type',
        { ...base, certificate: 7 },
        /^Invalid option "certificate": expected a PEM string, \{ certificate \} or \{ certificatePath \}, got a number \(not shown\)$/,
      ],
      [
        'certificate and certificatePath',
        { ...base, certificate: { certificate: certWithKey, certificatePath: '/x' } },
        /give "certificate" or "certificatePath", not both/,
      ],
      [
        'missing certificate file',
        { ...base, certificate: { certificatePath: '/nonexistent/cert.pem' } },
        /^Invalid option "certificate.certificatePath": expected the path of a readable PEM file, got the string "\/nonexistent\/cert.pem"$/,
      ],
      [
        'sendCertificateChain with a secret',
        { ...base, clientSecret: SECRET, sendCertificateChain: true },
        /^Invalid option "sendCertificateChain": applies to "certificate" only/,
      ],
      [
        'sendCertificateChain not a boolean',
        { ...base, certificate: certWithKey, sendCertificateChain: 'yes' },
        /^Invalid option "sendCertificateChain": expected a boolean/,
      ],
      [
        'default authority without a tenant',
        { clientId: 'app', clientSecret: SECRET },
        /^Invalid option "tenantId": expected a tenant id .* for authorityType "default", got undefined$/,
      ],
      [
        'tenant with bad characters',
        { clientId: 'app', clientSecret: SECRET, tenantId: 'a/b' },
        /^Invalid option "tenantId": expected a tenant id or domain/,
      ],
      [
        'authority.tenantId with bad characters',
        { clientId: 'app', clientSecret: SECRET, authority: { authorityType: 'multi-tenant', tenantId: 'a b' } },
        /^Invalid option "authority.tenantId"/,
      ],
      [
        'unknown authorityType',
        { ...base, clientSecret: SECRET, authority: { authorityType: 'sovereign' } },
        /^Invalid option "authority.authorityType": expected "default", "multi-tenant" or "custom", got the string "sovereign"$/,
      ],
      [
        'custom authority without URL',
        { ...base, clientSecret: SECRET, authority: { authorityType: 'custom' } },
        /^Invalid option "authority.authority": expected the https URL of the authority for authorityType "custom", got undefined$/,
      ],
      [
        'custom authority over http',
        {
          ...base,
          clientSecret: SECRET,
          authority: { authorityType: 'custom', authority: 'http://login.example.com/t' },
        },
        /^Invalid option "authority.authority": expected an https URL, got the string "http:\/\/login.example.com\/t"$/,
      ],
      [
        'custom authority that is not a URL',
        { ...base, clientSecret: SECRET, authority: { authorityType: 'custom', authority: 'login.example.com' } },
        /^Invalid option "authority.authority": expected an absolute https URL/,
      ],
      [
        'custom authority with a query',
        {
          ...base,
          clientSecret: SECRET,
          authority: { authorityType: 'custom', authority: 'https://login.example.com/t?secret=1' },
        },
        /without credentials, query or fragment, got the string "https:\/\/login.example.com\/t"$/,
      ],
      [
        'custom authority without any tenant',
        {
          clientId: 'app',
          clientSecret: SECRET,
          authority: { authorityType: 'custom', authority: 'https://login.example.com' },
        },
        /^Invalid option "tenantId": expected a tenant id .* for authorityType "custom"/,
      ],
      [
        'custom authority and credentialOptions.authorityHost',
        {
          ...base,
          clientSecret: SECRET,
          authority: { authorityType: 'custom', authority: 'https://login.example.com/t' },
          credentialOptions: { authorityHost: 'https://other.example.com' },
        },
        /^Invalid option "credentialOptions.authorityHost": must not be set with authorityType "custom"/,
      ],
      [
        'authority URL with a non-custom type',
        {
          ...base,
          clientSecret: SECRET,
          authority: { authorityType: 'default', authority: 'https://login.example.com' },
        },
        /^Invalid option "authority.authority": applies to authorityType "custom" only, not to "default"/,
      ],
      [
        'multi-tenant without a tenant',
        { clientId: 'app', clientSecret: SECRET, authority: { authorityType: 'multi-tenant' } },
        /^Invalid option "tenantId": expected a tenant id for authorityType "multi-tenant" \(a service principal cannot sign in at "common" or "organizations"\), got undefined$/,
      ],
      [
        'multi-tenant at "common"',
        { clientId: 'app', clientSecret: SECRET, authority: { authorityType: 'multi-tenant', tenantId: 'common' } },
        /^Invalid option "authority.tenantId": expected a tenant id for authorityType "multi-tenant"/,
      ],
      [
        'authority not an object',
        { ...base, clientSecret: SECRET, authority: 'custom' },
        /^Invalid option "authority": expected an object, got the string "custom"$/,
      ],
      [
        'credentialOptions not an object',
        { ...base, clientSecret: SECRET, credentialOptions: [] },
        /^Invalid option "credentialOptions": expected an object, got an array$/,
      ],
    ];
    for (const [name, options, message] of cases) {
      it(name, () => {
        assert.throws(
          () => createConfidentialCredentialsProvider(options as ConfidentialCredentialsProviderOptions),
          (error: Error) => {
            assert.equal(error.name, 'TypeError');
            assert.match(error.message, message);
            assert.equal(error.message.includes(SECRET), false, 'the secret is never quoted');
            assert.equal(error.message.includes('PRIVATE KEY'), false, 'key material is never quoted');
            return true;
          },
        );
      });
    }
  });
});
