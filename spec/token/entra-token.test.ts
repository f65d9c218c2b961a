import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { InvalidTokenError } from '../../lib/errors.js';
import { expectedAudiences } from '../../lib/identity/credentials-provider.js';
import { EntraToken } from '../../lib/token/entra-token.js';
import { makeAccessToken } from '../support/fake-credential.js';
import { must } from '../support/must.js';

const redisAudiences = must(
  expectedAudiences(['https://redis.azure.com/.default']),
  'the audiences of the Redis scope',
);

function rejects(accessToken: { token: string; expiresOnTimestamp: number }, message: RegExp, options = {}) {
  assert.throws(
    () => EntraToken.fromAccessToken(accessToken, options),
    (error: unknown) => {
      assert.ok(error instanceof InvalidTokenError, String(error));
      assert.match(error.message, message);
      assert.ok(
        !error.message.includes(accessToken.token) || accessToken.token.length < 8,
        'the message quotes the token',
      );
      assert.ok(!String(error.stack).includes(accessToken.token) || accessToken.token.length < 8);
      return true;
    },
  );
}

const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('EntraToken', () => {
  it('takes the username from oid, the password from the raw token, and the earlier expiry', () => {
    const access = makeAccessToken(60_000, { oid: 'the-oid' });
    const token = EntraToken.fromAccessToken(
      { ...access, expiresOnTimestamp: access.expiresOnTimestamp + 10_000 },
      { audiences: redisAudiences },
    );
    assert.equal(token.username, 'the-oid');
    assert.equal(token.oid, 'the-oid');
    assert.equal(token.password, access.token);
    assert.ok(Math.abs(token.expiresOn - access.expiresOnTimestamp) < 1_000);
    assert.ok(token.receivedAt <= Date.now());
  });

  it('lets a username function override the oid', () => {
    const token = EntraToken.fromAccessToken(makeAccessToken(60_000, { appid: 'app' }), {
      username: ({ claims }) => String(claims.appid),
    });
    assert.equal(token.username, 'app');
  });

  it('never shows the raw token in JSON, inspect or string conversion', () => {
    const access = makeAccessToken(60_000);
    const token = EntraToken.fromAccessToken(access);
    for (const shown of [
      JSON.stringify(token),
      inspect(token),
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the default stringification must not show the token
      String(token),
      inspect({ nested: token }, { depth: 5 }),
    ]) {
      assert.ok(!shown.includes(access.token), shown);
    }
  });

  it('refuses a token that is not a JWT', () => {
    rejects({ token: 'opaque-token-value', expiresOnTimestamp: Date.now() + 60_000 }, /not a JWT/);
    rejects({ token: `a.!!!.c`, expiresOnTimestamp: Date.now() + 60_000 }, /not base64url-encoded JSON/);
    rejects({ token: `a.${segment([1, 2])}.c`, expiresOnTimestamp: Date.now() + 60_000 }, /not a JSON object/);
    rejects({ token: '', expiresOnTimestamp: Date.now() + 60_000 }, /no access token/);
  });

  it('refuses a token without oid', () => {
    rejects(makeAccessToken(60_000, { oid: undefined }), /no "oid" claim/);
  });

  it('refuses a token without any expiry, and one already expired', () => {
    const access = makeAccessToken(60_000, { exp: undefined });
    rejects({ token: access.token, expiresOnTimestamp: 0 }, /no expiry/);
    rejects(makeAccessToken(-5_000), /expired at/);
  });

  it('refuses a token for another audience, naming it, and accepts the Redis application id', () => {
    rejects(
      makeAccessToken(60_000, { aud: 'https://management.azure.com' }),
      /audience "https:\/\/management\.azure\.com", not "https:\/\/redis\.azure\.com".*"scopes"/,
      { audiences: redisAudiences },
    );
    rejects(makeAccessToken(60_000, { aud: undefined }), /no "aud"/, { audiences: redisAudiences });
    assert.ok(
      EntraToken.fromAccessToken(makeAccessToken(60_000, { aud: 'acca5fbb-b7e4-4009-81f1-37e38fd66d78' }), {
        audiences: redisAudiences,
      }),
    );
    assert.ok(
      EntraToken.fromAccessToken(makeAccessToken(60_000, { aud: ['x', 'https://redis.azure.com/'] }), {
        audiences: redisAudiences,
      }),
    );
  });

  it('derives audiences only from <resource>/.default scopes', () => {
    assert.deepEqual(expectedAudiences(['api://my-app/.default']), ['api://my-app', 'api://my-app/']);
    assert.equal(expectedAudiences(['https://redis.azure.com/user_impersonation']), undefined);
  });

  it('refuses a username function that returns nothing usable', () => {
    rejects(makeAccessToken(60_000), /"username" option returned an empty or non-string username/, {
      username: () => '',
    });
  });
});

describe("EntraToken expiry when the credential's expiresOnTimestamp is implausible", () => {
  const HOUR = 3_600_000;
  /** A token issued now for an hour, with `iat` and `nbf` as Entra ID sets them, and its `exp` in ms. */
  function issued(claims: Record<string, unknown> = {}): { token: string; exp: number } {
    const now = Math.floor(Date.now() / 1000);
    const access = makeAccessToken(HOUR, { iat: now, nbf: now, exp: now + 3600, ...claims });
    return { token: access.token, exp: (now + 3600) * 1000 };
  }

  type Case = [
    name: string,
    reported: (exp: number) => unknown,
    reason: string | undefined,
    expected?: (exp: number) => number,
  ];
  const cases: Case[] = [
    ['epoch seconds instead of ms', (exp) => Math.floor(exp / 1000), 'before-issue'],
    ['NaN', () => Number.NaN, 'not-a-number'],
    ['Infinity', () => Number.POSITIVE_INFINITY, 'not-a-number'],
    ['missing', () => undefined, 'not-a-number'],
    ['a string', (exp) => String(exp), 'not-a-number'],
    ['zero', () => 0, 'before-issue'],
    ['negative', () => -1, 'before-issue'],
    ['a year before the token was issued', (exp) => exp - 365 * 24 * HOUR, 'before-issue'],
    ['1,000 times too late (microseconds)', (exp) => exp * 1000, 'after-token-expiry'],
    ['an hour too late', (exp) => exp + HOUR, 'after-token-expiry'],
    // Plausible values are used as they are (the earlier one wins) and not reported.
    ['equal to exp', (exp) => exp, undefined, (exp) => exp],
    ['a minute early (the credential may know better)', (exp) => exp - 60_000, undefined, (exp) => exp - 60_000],
    ['a minute late (clock skew)', (exp) => exp + 60_000, undefined, (exp) => exp],
  ];
  for (const [name, reported, reason, expected = (exp: number) => exp] of cases) {
    it(`${name}: ${reason === undefined ? 'used, nothing reported' : `the JWT's exp decides, reported as ${reason}`}`, () => {
      const { token, exp } = issued();
      const mismatches: unknown[] = [];
      const value = reported(exp);
      const entra = EntraToken.fromAccessToken(
        { token, expiresOnTimestamp: value as number },
        {
          audiences: redisAudiences,
          onExpiryMismatch: (mismatch) => mismatches.push(mismatch),
        },
      );
      assert.equal(entra.expiresOn, expected(exp));
      if (reason === undefined) {
        assert.deepEqual(mismatches, []);
        return;
      }
      assert.deepEqual(mismatches, [
        {
          reason,
          reportedExpiresOnTimestamp: typeof value === 'number' ? value : undefined,
          tokenExpiresOn: exp,
        },
      ]);
      assert.ok(!JSON.stringify(mismatches).includes(token));
    });
  }

  it('epoch seconds are recognised without iat and nbf too (decades before exp)', () => {
    const { token, exp } = issued({ iat: undefined, nbf: undefined });
    const mismatches: Array<{ reason: string }> = [];
    const entra = EntraToken.fromAccessToken(
      { token, expiresOnTimestamp: Math.floor(exp / 1000) },
      {
        onExpiryMismatch: (mismatch) => mismatches.push(mismatch),
      },
    );
    assert.equal(entra.expiresOn, exp);
    assert.deepEqual(
      mismatches.map((m) => m.reason),
      ['before-issue'],
    );
  });

  it('without an exp claim, a plausible expiresOnTimestamp decides and an implausible one is refused', () => {
    const { token } = issued({ exp: undefined });
    const later = Date.now() + HOUR;
    assert.equal(EntraToken.fromAccessToken({ token, expiresOnTimestamp: later }).expiresOn, later);
    rejects({ token, expiresOnTimestamp: Math.floor(later / 1000) }, /no expiry/);
    rejects({ token, expiresOnTimestamp: Number.NaN }, /no expiry/);
  });

  it('a token that really expired is still refused, whatever the credential says', () => {
    const now = Math.floor(Date.now() / 1000);
    const { token } = makeAccessToken(-5_000, { iat: now - 3600, exp: now - 5 });
    rejects({ token, expiresOnTimestamp: Date.now() + HOUR }, /expired at/);
    rejects({ token, expiresOnTimestamp: now + 3600 }, /expired at/);
  });
});
