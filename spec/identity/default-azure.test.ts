// createDefaultAzureCredentialsProvider: a real DefaultAzureCredential picking up the App Service managed-identity
// environment of the Entra emulator. One emulator for the file: MSAL pins the managed-identity endpoint per process.
import { failureOf as sharedFailureOf } from '../support/provider-failure.js';
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import {
  createDefaultAzureCredentialsProvider,
  type DefaultAzureCredentialsProviderOptions,
} from '../../lib/identity/default-azure.js';
import { defaultCredentialsProvider } from '../../lib/identity/default-provider.js';
import { defaultIsRetryable } from '../../lib/manager/retryable.js';
import { EntraEmulator, applyEnv, type EmulatedManagedIdentity } from '../../lib/testing/entra-emulator.js';

describe('createDefaultAzureCredentialsProvider', () => {
  let emulator: EntraEmulator;
  let system: EmulatedManagedIdentity;
  let user: EmulatedManagedIdentity;
  let restoreEnv: () => void;
  const providers: EntraCredentialsProvider[] = [];

  function provider(options: DefaultAzureCredentialsProviderOptions = {}): EntraCredentialsProvider {
    const created = createDefaultAzureCredentialsProvider({
      ...options,
      tokenManagerOptions: {
        tokenRequestTimeout: 10_000,
        retryOptions: { maxAttempts: 2, initialDelay: 1, maxDelay: 1 },
        ...options.tokenManagerOptions,
      },
    });
    providers.push(created);
    return created;
  }

  const failureOf = (p: EntraCredentialsProvider) => sharedFailureOf(p, { timeout: 20_000 });

  before(async () => {
    emulator = await EntraEmulator.start({ tokenLifetimeSeconds: 60 });
    system = emulator.addManagedIdentity({ kind: 'system' });
    user = emulator.addManagedIdentity({});
  });
  beforeEach(() => {
    restoreEnv = emulator.applyManagedIdentityEnv();
  });
  afterEach(async () => {
    for (const p of providers.splice(0)) p.dispose();
    restoreEnv();
    await emulator.clearFault();
  });
  after(async () => {
    await emulator.stop();
  });

  it('picks up the App Service managed identity from the environment', async () => {
    emulator.resetCounters();
    const token = await provider().getToken();
    assert.equal(token.oid, system.oid);
    assert.equal(token.claims.aud, 'https://redis.azure.com');
    assert.equal(emulator.requests.managedIdentity, 1);
  });

  it('the default provider (of clients created without one) is one shared DefaultAzureCredential provider, made anew once disposed', async () => {
    const shared = defaultCredentialsProvider();
    providers.push(shared);
    assert.equal(defaultCredentialsProvider(), shared);
    assert.equal((await shared.getToken()).oid, system.oid);
    shared.dispose();
    const next = defaultCredentialsProvider();
    providers.push(next);
    assert.notEqual(next, shared);
    assert.equal(next.disposed, false);
  });

  it('passes credentialOptions (managedIdentityClientId selects a user-assigned identity)', async () => {
    const token = await provider({ credentialOptions: { managedIdentityClientId: user.clientId } }).getToken();
    assert.equal(token.oid, user.oid);
  });

  describe('with AZURE_TOKEN_CREDENTIALS=prod (no developer tools in the chain)', () => {
    let restoreProd: () => void;
    beforeEach(() => {
      restoreProd = applyEnv({ AZURE_TOKEN_CREDENTIALS: 'prod' });
    });
    afterEach(() => restoreProd());

    it('a 500 from the identity endpoint is an AggregateAuthenticationError that is retried', async () => {
      await emulator.setFault({ kind: 'status', status: 500 });
      emulator.resetCounters();
      const { error, report } = await failureOf(provider());
      assert.equal(report.attempts, 2);
      assert.equal(emulator.requests.managedIdentity, 2, 'one request per attempt: no internal retries');
      assert.equal(error.cause?.name, 'AggregateAuthenticationError');
      const mi = error.cause.errors?.find((e: Error) => /ManagedIdentityCredential/.test(e.message));
      assert.equal(mi?.cause?.status, 500);
      assert.equal(defaultIsRetryable(error), true);
    });

    it('an unknown managed identity is not retried', async () => {
      emulator.resetCounters();
      const { error, report } = await failureOf(
        provider({ credentialOptions: { managedIdentityClientId: randomUUID() } }),
      );
      assert.equal(report.attempts, 1);
      assert.equal(error.cause?.name, 'AggregateAuthenticationError');
      assert.equal(defaultIsRetryable(error), false);
    });
  });

  describe('invalid options throw a TypeError naming the option', () => {
    const cases: [string, unknown, RegExp][] = [
      ['options not an object', 5, /^Invalid options: expected an object, got 5$/],
      [
        'credentialOptions not an object',
        { credentialOptions: null },
        /^Invalid option "credentialOptions": expected an object, got null$/,
      ],
      ['invalid scopes', { scopes: '' }, /^Invalid option "scopes"/],
      [
        'invalid tokenManagerOptions',
        { tokenManagerOptions: { expirationRefreshRatio: 2 } },
        /^Invalid option "expirationRefreshRatio"/,
      ],
    ];
    for (const [name, options, message] of cases) {
      it(name, () => {
        assert.throws(
          () => createDefaultAzureCredentialsProvider(options as DefaultAzureCredentialsProviderOptions),
          (error: Error) => {
            assert.equal(error.name, 'TypeError');
            assert.match(error.message, message);
            return true;
          },
        );
      });
    }
  });
});
