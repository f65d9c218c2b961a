// What real @azure/identity credentials (the lockfile's, and the lowest the package declares, in the lowest-versions
// lane of scripts/test-lanes.mjs) throw against the Entra emulator under each fault, and how
// defaultIsRetryable / retryAfterMs classify it. These tests pin the shapes lib/manager/retryable.ts relies on: if an
// @azure/identity or MSAL upgrade changes them, they fail here first.
import { JWT, type SdkError } from '../support/provider-failure.js';
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import type { TokenCredential } from '@azure/core-auth';
import { ClientCertificateCredential, ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';
import { defaultIsRetryable, retryAfterMs } from '../../lib/manager/retryable.js';
import { selfSignedCertificate } from '../../lib/testing/certs.js';
import { EntraEmulator, type EntraFault } from '../../lib/testing/entra-emulator.js';

const SCOPE = 'https://redis.azure.com/.default';
const SECRET = 'emulated-client-secret-value';
const NO_RETRIES = { retryOptions: { maxRetries: 0 } };

type Kind = 'ManagedIdentityCredential' | 'ClientSecretCredential' | 'ClientCertificateCredential';
const KINDS: Kind[] = ['ManagedIdentityCredential', 'ClientSecretCredential', 'ClientCertificateCredential'];

describe('errors of real @azure/identity credentials', () => {
  let emulator: EntraEmulator;
  let restoreEnv: () => void;
  const tenantId = randomUUID();
  const secretClientId = randomUUID();
  const certClientId = randomUUID();
  const cert = selfSignedCertificate('real-errors-sp');

  function make(kind: Kind, options: object = NO_RETRIES): TokenCredential {
    switch (kind) {
      case 'ManagedIdentityCredential':
        return new ManagedIdentityCredential({ ...options });
      case 'ClientSecretCredential':
        return new ClientSecretCredential(tenantId, secretClientId, SECRET, {
          ...emulator.credentialOptions(),
          ...options,
        });
      case 'ClientCertificateCredential':
        return new ClientCertificateCredential(
          tenantId,
          certClientId,
          { certificate: cert.cert + cert.key },
          { ...emulator.credentialOptions(), ...options },
        );
    }
  }

  /** The error `credential.getToken` rejects with; asserts that no token leaks into it. */
  async function failureOf(credential: TokenCredential): Promise<SdkError> {
    const error = await credential.getToken(SCOPE).then(
      () => assert.fail('expected getToken to fail'),
      (e: unknown) => e,
    );
    assert.doesNotMatch(inspect(error, { depth: 10 }), JWT, 'no token in the error, its stack or its causes');
    return error as SdkError;
  }

  /** A credential that already fetched a token (so MSAL has the authority metadata), then `fault`. */
  async function warmFailure(kind: Kind, fault: EntraFault): Promise<{ error: SdkError; requests: number }> {
    const credential = make(kind);
    await credential.getToken(SCOPE);
    await emulator.setFault(fault);
    emulator.resetCounters();
    const error = await failureOf(credential);
    const requests = emulator.requests.total;
    await emulator.clearFault();
    return { error, requests };
  }

  before(async () => {
    // 60 s tokens: below MSAL's 5-minute renewal margin, so every getToken reaches the emulator.
    emulator = await EntraEmulator.start({ tokenLifetimeSeconds: 60 });
    emulator.addManagedIdentity({ kind: 'system' });
    emulator.addServicePrincipal({ tenantId, clientId: secretClientId, clientSecret: SECRET });
    emulator.addServicePrincipal({ tenantId, clientId: certClientId, certificate: cert.cert });
    // MSAL keeps the managed-identity HTTP client of the first ManagedIdentityCredential that fetches a token for the
    // whole process: make it one without internal retries (see the last test).
    const restore = emulator.applyManagedIdentityEnv();
    try {
      await make('ManagedIdentityCredential').getToken(SCOPE);
    } finally {
      restore();
    }
  });
  beforeEach(() => {
    restoreEnv = emulator.applyManagedIdentityEnv();
  });
  afterEach(async () => {
    restoreEnv();
    await emulator.clearFault();
  });
  after(async () => {
    await emulator.stop();
  });

  describe('network failures are retryable', () => {
    for (const kind of KINDS) {
      for (const fault of [{ kind: 'down' }, { kind: 'reset' }] as const) {
        it(`${kind}, ${fault.kind}`, async () => {
          const { error, requests } = await warmFailure(kind, fault);
          assert.equal(requests, fault.kind === 'down' ? 0 : 1, 'one attempt, no internal retry');
          if (kind === 'ManagedIdentityCredential') {
            assert.equal(error.name, 'CredentialUnavailableError');
            assert.match(error.message, /^ManagedIdentityCredential: Network unreachable\. Message: network_error:/);
            assert.equal(error.cause?.name, 'ClientAuthError');
            assert.equal(error.cause.errorCode, 'network_error');
          } else {
            assert.equal(error.name, 'AuthenticationRequiredError');
            assert.match(error.message, /^network_error: /);
            // @azure/identity up to 4.13 keeps no cause; 4.14 on keeps MSAL's ClientAuthError.
            if (error.cause !== undefined) assert.equal(error.cause.errorCode, 'network_error');
          }
          assert.equal(defaultIsRetryable(error), true);
          assert.equal(retryAfterMs(error), undefined);
        });
      }
    }
  });

  describe('HTTP 408, 429, 5xx are retryable; Retry-After does not survive the credentials', () => {
    const faults: EntraFault[] = [
      { kind: 'status', status: 500 },
      { kind: 'status', status: 503, retryAfterSeconds: 2 },
      { kind: 'status', status: 429, retryAfterSeconds: 3 },
      { kind: 'status', status: 429, retryAfterDate: new Date(Date.now() + 60_000) },
      { kind: 'status', status: 408 },
    ];
    for (const kind of KINDS) {
      for (const fault of faults) {
        it(`${kind}, ${JSON.stringify(fault)}`, async () => {
          const { error, requests } = await warmFailure(kind, fault);
          assert.equal(requests, 1, 'one attempt, no internal retry');
          if (kind === 'ManagedIdentityCredential') {
            assert.equal(error.name, 'CredentialUnavailableError');
            assert.match(error.message, /^ManagedIdentityCredential: Authentication failed\./);
            assert.equal(error.cause?.name, 'ServerError');
            assert.equal(error.cause.status, fault.kind === 'status' ? fault.status : undefined);
          } else {
            // MSAL keeps only error, codes and description: no status, no headers. @azure/identity up to 4.13 keeps
            // no cause; 4.14 on keeps MSAL's ServerError, which has the status but not the headers either.
            assert.equal(error.name, 'AuthenticationRequiredError');
            assert.match(error.message, /^(server_error|temporarily_unavailable): Error\(s\): \d+ - .*AADSTS\d+/);
            if (error.cause !== undefined)
              assert.equal(error.cause.status, fault.kind === 'status' ? fault.status : undefined);
            assert.equal('statusCode' in error, false);
          }
          assert.equal(defaultIsRetryable(error), true);
          assert.equal(retryAfterMs(error), undefined, 'Retry-After is dropped by MSAL / @azure/identity');
        });
      }
    }
  });

  describe('authentication failures are not retryable', () => {
    it('ManagedIdentityCredential for an unknown user-assigned identity: ServerError 400', async () => {
      const error = await failureOf(new ManagedIdentityCredential({ clientId: randomUUID(), ...NO_RETRIES }));
      assert.equal(error.name, 'CredentialUnavailableError');
      assert.match(error.message, /Unable to load the proper Managed Identity\./);
      assert.equal(error.cause?.name, 'ServerError');
      assert.equal(error.cause.status, 400);
      assert.equal(defaultIsRetryable(error), false);
    });

    it('ManagedIdentityCredential answered 403: ServerError 403', async () => {
      const { error } = await warmFailure('ManagedIdentityCredential', { kind: 'status', status: 403 });
      assert.equal(error.cause?.status, 403);
      assert.equal(defaultIsRetryable(error), false);
    });

    it('ClientSecretCredential with a wrong secret: invalid_client AADSTS7000215, secret not quoted', async () => {
      emulator.resetCounters();
      const error = await failureOf(
        new ClientSecretCredential(tenantId, secretClientId, 'a-wrong-secret-value', {
          ...emulator.credentialOptions(),
          ...NO_RETRIES,
        }),
      );
      assert.equal(error.name, 'AuthenticationRequiredError');
      assert.match(
        error.message,
        /^invalid_client: Error\(s\): 7000215 - .*AADSTS7000215: Invalid client secret provided/,
      );
      assert.doesNotMatch(inspect(error, { depth: 10 }), /a-wrong-secret-value/);
      assert.equal(defaultIsRetryable(error), false);
      assert.equal(emulator.requests.tokenEndpoint, 1);
    });

    it('ClientSecretCredential for an unknown client: unauthorized_client AADSTS700016', async () => {
      const error = await failureOf(
        new ClientSecretCredential(tenantId, randomUUID(), SECRET, { ...emulator.credentialOptions(), ...NO_RETRIES }),
      );
      assert.match(error.message, /^unauthorized_client: Error\(s\): 700016 /);
      assert.equal(defaultIsRetryable(error), false);
    });

    it('ClientCertificateCredential with a certificate the app does not know: invalid_client AADSTS700027', async () => {
      const other = selfSignedCertificate('real-errors-unregistered');
      const error = await failureOf(
        new ClientCertificateCredential(
          tenantId,
          certClientId,
          { certificate: other.cert + other.key },
          { ...emulator.credentialOptions(), ...NO_RETRIES },
        ),
      );
      assert.match(error.message, /^invalid_client: Error\(s\): 700027 /);
      assert.equal(defaultIsRetryable(error), false);
    });

    for (const kind of ['ClientSecretCredential', 'ClientCertificateCredential'] as const) {
      it(`${kind} answered 403: invalid_request`, async () => {
        const { error } = await warmFailure(kind, { kind: 'status', status: 403 });
        assert.match(error.message, /^invalid_request: /);
        assert.equal(defaultIsRetryable(error), false);
      });
    }
  });

  describe('confidential credentials before the authority metadata is known', () => {
    for (const fault of [
      { kind: 'down' },
      { kind: 'status', status: 500 },
      { kind: 'status', status: 403 },
    ] as EntraFault[]) {
      it(`authority ${JSON.stringify(fault)}: CredentialUnavailableError endpoints_resolution_error, retryable`, async () => {
        const credential = make('ClientSecretCredential');
        await emulator.setFault({ ...fault, endpoint: 'authority' });
        const error = await failureOf(credential);
        assert.equal(error.name, 'CredentialUnavailableError');
        assert.match(error.message, /^endpoints_resolution_error: /);
        assert.equal(error.cause, undefined);
        assert.equal(defaultIsRetryable(error), true);
      });
    }

    it('a tenant the authority does not know looks the same (a documented limit: it is retried)', async () => {
      const error = await failureOf(
        new ClientSecretCredential(randomUUID(), secretClientId, SECRET, {
          ...emulator.credentialOptions(),
          ...NO_RETRIES,
        }),
      );
      assert.match(error.message, /^endpoints_resolution_error: /);
      assert.equal(defaultIsRetryable(error), true);
    });
  });

  describe('internal retries', () => {
    it('MSAL throttles a confidential client after a 429/5xx: the next call fails without a request, retryable', async () => {
      const credential = make('ClientSecretCredential');
      await credential.getToken(SCOPE);
      await emulator.setFault({ kind: 'status', status: 503, retryAfterSeconds: 30, times: 1 });
      await failureOf(credential);
      emulator.resetCounters();
      const replay = await failureOf(credential);
      assert.equal(emulator.requests.total, 0, 'MSAL answered from its throttling cache');
      assert.equal(replay.name, 'AuthenticationRequiredError');
      assert.match(replay.message, /^90033: AADSTS90033: /);
      assert.equal(defaultIsRetryable(replay), true);
      assert.equal(retryAfterMs(replay), undefined);
    });

    it('retryOptions.maxRetries: 0 turns off the core-rest-pipeline retries that are on by default', async () => {
      const retrying = make('ClientSecretCredential', {
        retryOptions: { maxRetries: 2, retryDelayInMs: 1, maxRetryDelayInMs: 1 },
      });
      await retrying.getToken(SCOPE);
      await emulator.setFault({ kind: 'status', status: 500 });
      emulator.resetCounters();
      await failureOf(retrying);
      assert.equal(emulator.requests.tokenEndpoint, 3, 'first attempt and 2 internal retries');

      const single = make('ClientSecretCredential');
      await emulator.clearFault();
      await single.getToken(SCOPE);
      await emulator.setFault({ kind: 'status', status: 500 });
      emulator.resetCounters();
      await failureOf(single);
      assert.equal(emulator.requests.tokenEndpoint, 1);
    });

    it('ManagedIdentityCredential uses the HTTP client (and retry options) of the first one in the process', async () => {
      const retrying = make('ManagedIdentityCredential', {
        retryOptions: { maxRetries: 2, retryDelayInMs: 1, maxRetryDelayInMs: 1 },
      });
      await emulator.setFault({ kind: 'status', status: 500 });
      emulator.resetCounters();
      await failureOf(retrying);
      assert.equal(
        emulator.requests.managedIdentity,
        1,
        "maxRetries: 2 ignored: MSAL reuses the first credential's client",
      );
    });
  });

  describe('abort signals are ignored by the credentials', () => {
    for (const kind of KINDS) {
      it(`${kind} keeps waiting for a hung request after its abortSignal fired`, async () => {
        const credential = make(kind);
        await credential.getToken(SCOPE);
        await emulator.setFault({ kind: 'hang' });
        emulator.resetCounters();
        const controller = new AbortController();
        const pending = credential.getToken(SCOPE, { abortSignal: controller.signal }).then(
          () => assert.fail('expected a failure'),
          (e: unknown) => e as Error,
        );
        await emulator.waitForRequests(1);
        controller.abort();
        // Only destroying the hung connection ends the call, with a network error rather than an AbortError.
        emulator.destroyHungRequests();
        const error = await pending;
        assert.notEqual(error.name, 'AbortError');
        assert.match(`${error.message} ${(error.cause as Error | undefined)?.message ?? ''}`, /network_error/);
        assert.equal(defaultIsRetryable(error), true);
      });
    }
  });
});
