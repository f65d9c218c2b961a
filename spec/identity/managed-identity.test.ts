// createManagedIdentityCredentialsProvider through a real ManagedIdentityCredential against the Entra emulator's
// App Service endpoint. One emulator for the file: MSAL pins the managed-identity endpoint for the process.
import { failureOf as sharedFailureOf } from '../support/provider-failure.js';
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import {
  createManagedIdentityCredentialsProvider,
  type ManagedIdentityCredentialsProviderOptions,
} from '../../lib/identity/managed-identity.js';
import { defaultIsRetryable, retryAfterMs } from '../../lib/manager/retryable.js';
import { EntraEmulator, type EmulatedManagedIdentity, type EntraFault } from '../../lib/testing/entra-emulator.js';

const FAST_RETRIES = { maxAttempts: 2, initialDelay: 1, maxDelay: 1 };

describe('createManagedIdentityCredentialsProvider', () => {
  let emulator: EntraEmulator;
  let system: EmulatedManagedIdentity;
  let user: EmulatedManagedIdentity;
  let restoreEnv: () => void;
  const providers: EntraCredentialsProvider[] = [];

  function provider(options: ManagedIdentityCredentialsProviderOptions = {}): EntraCredentialsProvider {
    const created = createManagedIdentityCredentialsProvider({
      ...options,
      tokenManagerOptions: { tokenRequestTimeout: 5_000, retryOptions: FAST_RETRIES, ...options.tokenManagerOptions },
    });
    providers.push(created);
    return created;
  }

  const failureOf = (p: EntraCredentialsProvider) => sharedFailureOf(p, {});

  before(async () => {
    // 60 s tokens: below MSAL's 5-minute renewal margin, so every credential call reaches the emulator.
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
    emulator.destroyHungRequests();
    await emulator.clearFault();
  });
  after(async () => {
    await emulator.stop();
  });

  describe('obtains a token for', () => {
    it('the system-assigned identity by default', async () => {
      const token = await provider().getToken();
      assert.equal(token.oid, system.oid);
      assert.equal(token.username, system.oid);
      assert.equal(token.claims.aud, 'https://redis.azure.com');
      assert.equal(token.claims.tid, emulator.tenantId);
    });

    it('"system-assigned" given explicitly', async () => {
      const token = await provider({ managedIdentityType: 'system-assigned' }).getToken();
      assert.equal(token.oid, system.oid);
    });

    const selectors: [string, () => ManagedIdentityCredentialsProviderOptions][] = [
      ['clientId', () => ({ clientId: user.clientId })],
      ['objectId', () => ({ objectId: user.objectId })],
      ['resourceId', () => ({ resourceId: user.resourceId })],
    ];
    for (const [name, options] of selectors) {
      it(`a user-assigned identity by ${name}`, async () => {
        emulator.resetCounters();
        const token = await provider({ managedIdentityType: 'user-assigned', ...options() }).getToken();
        assert.equal(token.oid, user.oid);
        assert.equal(token.username, user.oid, 'the username is the oid, not the client id');
        assert.equal(token.claims.aud, 'https://redis.azure.com');
        assert.equal(emulator.requests.byOid[user.oid], 1);
      });
    }

    it('a user-assigned identity when an id is given without managedIdentityType', async () => {
      const token = await provider({ clientId: user.clientId }).getToken();
      assert.equal(token.oid, user.oid);
    });

    it('another scope, with aud derived from it', async () => {
      const token = await provider({ scopes: 'https://vault.azure.net/.default' }).getToken();
      assert.equal(token.claims.aud, 'https://vault.azure.net');
    });
  });

  describe('failures', () => {
    it('an unknown user-assigned identity is not retried', async () => {
      emulator.resetCounters();
      const { error, report } = await failureOf(
        provider({
          clientId: randomUUID(),
          tokenManagerOptions: { retryOptions: { maxAttempts: 3, initialDelay: 1, maxDelay: 1 } },
        }),
      );
      assert.equal(report.attempts, 1);
      assert.equal(emulator.requests.managedIdentity, 1);
      assert.equal(error.cause?.name, 'CredentialUnavailableError');
      assert.equal(error.cause.cause?.status, 400);
      assert.equal(defaultIsRetryable(error), false);
    });

    const faults: EntraFault[] = [
      { kind: 'down' },
      { kind: 'reset' },
      { kind: 'status', status: 500 },
      { kind: 'status', status: 503, retryAfterSeconds: 1 },
      { kind: 'status', status: 429, retryAfterSeconds: 1 },
    ];
    for (const fault of faults) {
      it(`${JSON.stringify(fault)} is retried, then reported; the provider recovers`, async () => {
        const p = provider();
        await emulator.setFault(fault);
        emulator.resetCounters();
        const { error, report } = await failureOf(p);
        assert.equal(report.attempts, 2);
        assert.equal(emulator.requests.managedIdentity, fault.kind === 'down' ? 0 : 2);
        assert.equal(defaultIsRetryable(error), true);
        assert.equal(defaultIsRetryable(error.cause), true);
        assert.equal(retryAfterMs(error), undefined, 'ManagedIdentityCredential drops Retry-After');
        await emulator.clearFault();
        assert.equal((await p.getToken()).oid, system.oid);
      });
    }

    it('a hung request ends at tokenRequestTimeout, retryably', async () => {
      const p = provider({ tokenManagerOptions: { tokenRequestTimeout: 100, retryOptions: { maxAttempts: 1 } } });
      await emulator.setFault({ kind: 'hang' });
      const { error, report } = await failureOf(p);
      assert.equal(report.attempts, 1);
      assert.equal(error.cause?.name, 'TokenRequestTimeoutError');
      assert.equal(defaultIsRetryable(error), true);
      assert.equal(emulator.requests.managedIdentity >= 1, true);
    });
  });

  describe('invalid options throw a TypeError naming the option', () => {
    const cases: [string, unknown, RegExp][] = [
      ['options not an object', 'system', /^Invalid options: expected an object, got the string "system"$/],
      [
        'unknown managedIdentityType',
        { managedIdentityType: 'both' },
        /^Invalid option "managedIdentityType": expected "system-assigned" or "user-assigned", got the string "both"$/,
      ],
      [
        'user-assigned without an id',
        { managedIdentityType: 'user-assigned' },
        /^Invalid option "managedIdentityType": "user-assigned" needs exactly one of "clientId", "objectId" or "resourceId", got none$/,
      ],
      [
        'user-assigned with two ids',
        { managedIdentityType: 'user-assigned', clientId: 'a', objectId: 'b' },
        /got "clientId" and "objectId"$/,
      ],
      [
        'two ids without a type',
        { clientId: 'a', resourceId: '/subscriptions/s/resourceGroups/g/providers/x' },
        /got "clientId" and "resourceId"$/,
      ],
      [
        'system-assigned with an id',
        { managedIdentityType: 'system-assigned', objectId: 'b' },
        /^Invalid option "managedIdentityType": "system-assigned" takes no "objectId"/,
      ],
      [
        'empty clientId',
        { clientId: '' },
        /^Invalid option "clientId": expected a non-empty string, got an empty string$/,
      ],
      ['numeric objectId', { objectId: 42 }, /^Invalid option "objectId": expected a non-empty string, got 42$/],
      [
        'resourceId that is not an ARM id',
        { resourceId: 'my-identity' },
        /^Invalid option "resourceId": expected an ARM resource id/,
      ],
      [
        'credentialOptions not an object',
        { credentialOptions: 'x' },
        /^Invalid option "credentialOptions": expected an object/,
      ],
      ['invalid scopes (common option)', { scopes: [] }, /^Invalid option "scopes"/],
    ];
    for (const [name, options, message] of cases) {
      it(name, () => {
        assert.throws(
          () => createManagedIdentityCredentialsProvider(options as ManagedIdentityCredentialsProviderOptions),
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
