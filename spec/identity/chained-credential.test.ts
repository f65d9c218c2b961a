// createCredentialsProvider over any TokenCredential: a ChainedTokenCredential of real credentials against the Entra
// emulator, and credentials that hand back unusable tokens (which must never leak into errors).
import { inspect } from 'node:util';
import { JWT, failureOf as sharedFailureOf } from '../support/provider-failure.js';
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import {
  ChainedTokenCredential,
  ClientSecretCredential,
  EnvironmentCredential,
  ManagedIdentityCredential,
} from '@azure/identity';
import { createCredentialsProvider, type EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { defaultIsRetryable } from '../../lib/manager/retryable.js';
import {
  EntraEmulator,
  type EmulatedManagedIdentity,
  type EmulatedServicePrincipal,
} from '../../lib/testing/entra-emulator.js';

const NO_RETRIES = { retryOptions: { maxRetries: 0 } };

describe('createCredentialsProvider with real and hand-made credentials', () => {
  let emulator: EntraEmulator;
  let system: EmulatedManagedIdentity;
  let app: EmulatedServicePrincipal;
  const tenantId = randomUUID();
  const secret = 'chained-test-secret';
  let restoreEnv: () => void;
  const providers: EntraCredentialsProvider[] = [];

  function provider(credential: TokenCredential, maxAttempts = 2): EntraCredentialsProvider {
    const created = createCredentialsProvider({
      credential,
      tokenManagerOptions: { tokenRequestTimeout: 5_000, retryOptions: { maxAttempts, initialDelay: 1, maxDelay: 1 } },
    });
    providers.push(created);
    return created;
  }

  const failureOf = (p: EntraCredentialsProvider) => sharedFailureOf(p, {});

  before(async () => {
    emulator = await EntraEmulator.start({ tokenLifetimeSeconds: 60 });
    system = emulator.addManagedIdentity({ kind: 'system' });
    app = emulator.addServicePrincipal({ tenantId, clientId: randomUUID(), clientSecret: secret });
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

  describe('ChainedTokenCredential', () => {
    it('skips an unavailable EnvironmentCredential and uses the managed identity', async () => {
      const chain = new ChainedTokenCredential(new EnvironmentCredential(), new ManagedIdentityCredential(NO_RETRIES));
      const token = await provider(chain).getToken();
      assert.equal(token.oid, system.oid);
    });

    it('moves on from a managed identity that is not assigned to a service principal', async () => {
      const chain = new ChainedTokenCredential(
        new ManagedIdentityCredential({ clientId: randomUUID(), ...NO_RETRIES }),
        new ClientSecretCredential(tenantId, app.clientId, secret, { ...emulator.credentialOptions(), ...NO_RETRIES }),
      );
      emulator.resetCounters();
      const token = await provider(chain).getToken();
      assert.equal(token.oid, app.oid);
      assert.equal(token.claims.tid, tenantId);
      assert.equal(emulator.requests.managedIdentity, 1);
      assert.equal(emulator.requests.tokenEndpoint, 1);
    });

    it("reports the chain's AggregateAuthenticationError, retryable when one link failed transiently", async () => {
      const chain = new ChainedTokenCredential(new EnvironmentCredential(), new ManagedIdentityCredential(NO_RETRIES));
      await emulator.setFault({ kind: 'status', status: 503, endpoint: 'managed-identity' });
      const { error, report } = await failureOf(provider(chain));
      assert.equal(report.attempts, 2);
      assert.equal(error.cause?.name, 'AggregateAuthenticationError');
      assert.equal(defaultIsRetryable(error), true);
      assert.doesNotMatch(inspect(error, { depth: 10 }), JWT);
    });
  });

  describe('tokens never appear in errors', () => {
    it('a token without oid is an InvalidTokenError, not retried, and not quoted', async () => {
      const raw = emulator.mint({ oid: undefined });
      const credential: TokenCredential = {
        getToken: async () => ({ token: raw, expiresOnTimestamp: Date.now() + 60_000 }),
      };
      const { error, report } = await failureOf(provider(credential, 3));
      assert.equal(report.attempts, 1);
      assert.equal(error.cause?.name, 'InvalidTokenError');
      assert.equal(defaultIsRetryable(error), false);
      for (const text of [
        error.message,
        error.stack ?? '',
        inspect(error, { depth: 10 }),
        inspect(report, { depth: 10 }),
      ]) {
        assert.equal(text.includes(raw), false);
        assert.doesNotMatch(text, JWT);
      }
    });

    it('an expired token is an InvalidTokenError, not quoted', async () => {
      const raw = emulator.mint({ exp: Math.floor(Date.now() / 1000) - 10 });
      const credential: TokenCredential = {
        getToken: async () => ({ token: raw, expiresOnTimestamp: Date.now() - 10_000 }),
      };
      const { error } = await failureOf(provider(credential, 1));
      assert.equal(error.cause?.name, 'InvalidTokenError');
      assert.equal(inspect(error, { depth: 10 }).includes(raw), false);
    });

    it('a credential error that quotes a token is redacted', async () => {
      const raw = emulator.mint();
      const credential: TokenCredential = {
        getToken: async () => {
          throw new Error(`upstream rejected ${raw}`, { cause: new Error(`because of ${raw}`) });
        },
      };
      const { error, report } = await failureOf(provider(credential, 1));
      for (const text of [inspect(error, { depth: 10 }), inspect(report, { depth: 10 })]) {
        assert.equal(text.includes(raw), false);
        assert.doesNotMatch(text, JWT);
      }
    });
  });
});
