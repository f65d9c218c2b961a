import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { InvalidTokenError, TokenUnavailableError } from '../../lib/errors.js';
import { createCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import type { RefreshFailedEvent } from '../../lib/identity/events.js';
import { makeAccessToken } from '../support/fake-credential.js';

const credentialReturning = (make: () => AccessToken | null): TokenCredential => ({ getToken: async () => make() });

describe('credentials provider with malformed tokens from a credential', () => {
  const cases: Array<[string, () => AccessToken, RegExp]> = [
    ['not a JWT', () => ({ token: 'opaque', expiresOnTimestamp: Date.now() + 60_000 }), /not a JWT/],
    ['no oid', () => makeAccessToken(60_000, { oid: undefined }), /no "oid"/],
    ['expiry missing', () => ({ ...makeAccessToken(60_000, { exp: undefined }), expiresOnTimestamp: 0 }), /no expiry/],
    ['expired', () => makeAccessToken(-1_000), /expired/],
    [
      'wrong audience',
      () => makeAccessToken(60_000, { aud: 'https://vault.azure.net' }),
      /audience "https:\/\/vault\.azure\.net"/,
    ],
  ];
  for (const [name, make, message] of cases) {
    it(`reports "${name}" clearly, without the token, and keeps running`, async () => {
      const issued: string[] = [];
      const provider = createCredentialsProvider({
        credential: credentialReturning(() => {
          const t = make();
          issued.push(t.token);
          return t;
        }),
        tokenManagerOptions: { retryOptions: { maxAttempts: 1 } },
      });
      const failures: RefreshFailedEvent[] = [];
      provider.on('refreshFailed', (event) => failures.push(event));
      const error = await provider.getToken().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof TokenUnavailableError);
      assert.match(error.message, message);
      assert.ok(error.cause instanceof InvalidTokenError);
      assert.equal(failures.length, 1);
      const everything = JSON.stringify({
        message: error.message,
        stack: error.stack,
        failures: failures.map((f) => ({ ...f, error: String(f.error) })),
      });
      for (const token of issued) assert.ok(!everything.includes(token));
      provider.dispose();
    });
  }

  it('a credential returning null is reported, not crashed on', async () => {
    const provider = createCredentialsProvider({
      credential: credentialReturning(() => null),
      tokenManagerOptions: { retryOptions: { maxAttempts: 1 } },
    });
    await assert.rejects(provider.getToken(), /returned no access token/);
    provider.dispose();
  });
});

describe('credentials provider lifecycle', () => {
  it('runs its schedule while subscribed, holds no timer once the last subscriber leaves', async () => {
    const provider = createCredentialsProvider({ credential: credentialReturning(() => makeAccessToken(60_000)) });
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const leaveA = provider.subscribe({ onToken: () => {} });
    const leaveB = provider.subscribe({ onToken: () => {} });
    await provider.getToken();
    assert.equal(provider.scheduleRunning, true);
    leaveA();
    assert.equal(provider.scheduleRunning, true);
    leaveB();
    leaveB();
    assert.equal(provider.scheduleRunning, false);
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- the earlier name must keep working
    assert.equal(provider.refreshing, false, 'the earlier name says the same');
    assert.equal(provider.subscriberCount, 0);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, timersBefore);
    provider.dispose();
  });

  it('a caller waiting for a token keeps the process alive until it has its answer', () => {
    // The credential fails twice (retryable), then answers: the retry delays are timers, the only thing left running.
    const script = `
      import { createCredentialsProvider } from './lib/identity/credentials-provider.ts';
      import { makeAccessToken } from './spec/support/fake-credential.ts';
      let calls = 0;
      const credential = { getToken: async () => {
        if (++calls < 3) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return makeAccessToken(60_000);
      } };
      const provider = createCredentialsProvider({ credential, tokenManagerOptions: { retryOptions: { initialDelay: 200 } } });
      await provider.getToken({ timeout: 10_000 });
      console.log('settled after ' + calls + ' calls');
      provider.dispose();
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.match(out, /settled after 3 calls/);
  });

  it('validates its own options', () => {
    assert.throws(() => createCredentialsProvider({} as never), /Invalid option "credential"/);
    assert.throws(
      () => createCredentialsProvider({ credential: credentialReturning(() => null), scopes: [] }),
      /Invalid option "scopes"/,
    );
    assert.throws(
      () => createCredentialsProvider({ credential: credentialReturning(() => null), username: 'oid' as never }),
      /Invalid option "username"/,
    );
    assert.throws(
      () =>
        createCredentialsProvider({
          credential: credentialReturning(() => null),
          tokenManagerOptions: { expirationRefreshRatio: 2 },
        }),
      /"expirationRefreshRatio"/,
    );
  });
});
