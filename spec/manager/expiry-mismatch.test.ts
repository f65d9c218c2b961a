// ioredis majors: 5 (what this file tests does not depend on the ioredis major; the client files run on both)
// A credential that reports its expiry in the wrong unit (a bug other SDKs have shipped): the JWT's exp decides, the
// mismatch is reported once per provider, and a client works through token rotations. Real tokens from the Entra
// emulator, a real redis-server behind the AMR emulator (which closes a connection when its token expires).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { ManagedIdentityCredential } from '@azure/identity';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createEntraRedis } from '../../lib/create-entra-redis.js';
import { createCredentialsProvider, type EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import type { ExpiryMismatchEvent } from '../../lib/identity/events.js';
import { countEvents, waitUntil, World } from '../../harness/world.js';
import { must } from '../support/must.js';

let world: World;
before(async () => {
  world = await World.start({ tokenLifetimeSeconds: 3 });
});
after(async () => {
  await world.stop();
});

/** The emulator's tokens, through a real ManagedIdentityCredential, with expiresOnTimestamp rewritten by `misreport`. */
function misreporting(misreport: (token: AccessToken) => unknown): { credential: TokenCredential; issued: string[] } {
  const real = new ManagedIdentityCredential({ clientId: world.identity.clientId, retryOptions: { maxRetries: 0 } });
  const issued: string[] = [];
  return {
    issued,
    credential: {
      getToken: async (scopes, options) => {
        const token = await real.getToken(scopes, options);
        issued.push(token.token);
        return { ...token, expiresOnTimestamp: misreport(token) as number };
      },
    },
  };
}

describe("a credential's implausible expiresOnTimestamp", () => {
  const providers: EntraCredentialsProvider[] = [];
  function provider(credential: TokenCredential): EntraCredentialsProvider {
    const created = createCredentialsProvider({
      credential,
      tokenManagerOptions: { retryOptions: { initialDelay: 50, maxDelay: 200 } },
    });
    providers.push(created);
    return created;
  }
  afterEach(() => {
    for (const p of providers.splice(0)) p.dispose();
  });

  it('epoch seconds: the JWT exp decides, commands work through rotations, the mismatch is reported once', async () => {
    const { credential, issued } = misreporting((token) => Math.floor(token.expiresOnTimestamp / 1000));
    const seconds = provider(credential);
    const mismatches: ExpiryMismatchEvent[] = [];
    seconds.on('expiryMismatch', (event) => mismatches.push(event));
    const refreshed = countEvents(seconds, 'tokenRefreshed');
    const redis = world.track(createEntraRedis({ ...world.endpoint, credentialsProvider: seconds }));
    assert.equal(await redis.set('unit', 'seconds'), 'OK');
    const first = seconds.currentToken();
    assert.ok(first, 'a token is in use');
    assert.equal(first.expiresOn, Number(first.claims.exp) * 1000);
    // Three more tokens: the connection is re-authenticated on the JWT's schedule and the server never closes it.
    await waitUntil(() => refreshed.count >= 4, { timeoutMs: 30_000, description: 'three token rotations' });
    assert.equal(await redis.get('unit'), 'seconds');
    assert.equal(mismatches.length, 1, 'reported once per provider, not once per token');
    const mismatch = must(mismatches[0], 'the reported mismatch');
    assert.equal(mismatch.reason, 'before-issue');
    assert.equal(mismatch.tokenExpiresOn, first.expiresOn);
    const shown = JSON.stringify(mismatches);
    for (const token of issued) assert.ok(!shown.includes(token), 'the event never carries a token');
    refreshed.stop();
  });

  it('each provider reports its own mismatch once; a credential that reports ms reports nothing', async () => {
    const a = provider(misreporting(() => Number.NaN).credential);
    const b = provider(misreporting((token) => token.expiresOnTimestamp * 1000).credential);
    const good = provider(misreporting((token) => token.expiresOnTimestamp).credential);
    const counts = [a, b, good].map((p) => countEvents(p, 'expiryMismatch'));
    const reasons: string[] = [];
    b.on('expiryMismatch', (event) => reasons.push(event.reason));
    for (const p of [a, b, good]) {
      const token = await p.getToken();
      assert.equal(token.expiresOn, Number(token.claims.exp) * 1000);
    }
    assert.deepEqual(
      counts.map((c) => c.count),
      [1, 1, 0],
    );
    assert.deepEqual(reasons, ['after-token-expiry']);
  });
});
