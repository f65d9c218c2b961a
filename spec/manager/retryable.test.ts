// defaultIsRetryable / retryAfterMs on error shapes built by hand (the real ones: retryable-real-errors.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AggregateAuthenticationError,
  AuthenticationError,
  AuthenticationRequiredError,
  CredentialUnavailableError,
} from '@azure/identity';
import { DisposedError, InvalidTokenError, TokenRequestTimeoutError, TokenUnavailableError } from '../../lib/errors.js';
import { defaultIsRetryable, retryAfterMs } from '../../lib/manager/retryable.js';

const withCode = (code: string, message = `connect ${code} 127.0.0.1:1`) => Object.assign(new Error(message), { code });
const msalServerError = (status: number) =>
  Object.assign(new Error(': Error(s): Not Available - Description: x'), {
    name: 'ServerError',
    errorCode: '',
    status,
  });
const restError = (statusCode: number, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`Status ${statusCode}`), {
    name: 'RestError',
    statusCode,
    response: { status: statusCode, headers: { get: (name: string) => headers[name.toLowerCase()] } },
  });
const abortError = (cause?: unknown, message = 'This operation was aborted') =>
  Object.assign(new Error(message, { cause }), { name: 'AbortError' });
const entraBody = (error: string, code: number) =>
  JSON.stringify({ error, error_description: `AADSTS${code}: text`, error_codes: [code] });

describe('defaultIsRetryable', () => {
  const retryable: [string, unknown][] = [
    ['ECONNREFUSED', withCode('ECONNREFUSED')],
    ['ECONNRESET', withCode('ECONNRESET')],
    ['ETIMEDOUT', withCode('ETIMEDOUT')],
    ['EPIPE', withCode('EPIPE')],
    ['EAI_AGAIN', withCode('EAI_AGAIN', 'getaddrinfo EAI_AGAIN login.microsoftonline.com')],
    ['socket hang up (message only)', new Error('socket hang up')],
    [
      'undici fetch failed with a connect timeout cause',
      new TypeError('fetch failed', { cause: withCode('UND_ERR_CONNECT_TIMEOUT') }),
    ],
    [
      'core RestError REQUEST_SEND_ERROR',
      Object.assign(new Error('send failed'), { name: 'RestError', code: 'REQUEST_SEND_ERROR' }),
    ],
    ['TokenRequestTimeoutError', new TokenRequestTimeoutError(100)],
    ['DOMException TimeoutError (AbortSignal.timeout)', new DOMException('The operation timed out.', 'TimeoutError')],
    ['AbortError caused by TokenRequestTimeoutError', abortError(new TokenRequestTimeoutError(100))],
    ['AbortError saying it timed out', abortError(undefined, 'The operation was aborted due to timeout')],
    ['HTTP 408 (RestError)', restError(408)],
    ['HTTP 429 (RestError)', restError(429)],
    ['HTTP 500 (RestError)', restError(500)],
    ['HTTP 503 (AuthenticationError)', new AuthenticationError(503, entraBody('temporarily_unavailable', 90033))],
    ['HTTP 504 (MSAL ServerError)', msalServerError(504)],
    [
      'MSAL network_error',
      Object.assign(new Error('network_error: x'), { name: 'ClientAuthError', errorCode: 'network_error' }),
    ],
    [
      'MI: CredentialUnavailableError caused by ServerError 503',
      new CredentialUnavailableError('ManagedIdentityCredential: Authentication failed.', {
        cause: msalServerError(503),
      }),
    ],
    [
      'confidential: server_error message',
      new AuthenticationRequiredError({
        scopes: [],
        message: 'server_error: Error(s): 50000 - Description: AADSTS50000: x',
      }),
    ],
    [
      'confidential: temporarily_unavailable message',
      new AuthenticationRequiredError({
        scopes: [],
        message: 'temporarily_unavailable: Error(s): 90033 - Description: AADSTS90033: x',
      }),
    ],
    [
      'confidential: MSAL throttle replay "90055: AADSTS90055"',
      new AuthenticationRequiredError({ scopes: [], message: '90055: AADSTS90055: TenantThrottlingError' }),
    ],
    [
      'confidential: metadata unreachable',
      new CredentialUnavailableError(
        'endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error for details',
      ),
    ],
    [
      'our TokenUnavailableError wrapping a retryable chain',
      new TokenUnavailableError('no token', {
        cause: new CredentialUnavailableError('x', { cause: msalServerError(500) }),
      }),
    ],
    [
      'aggregate with one retryable error',
      new AggregateAuthenticationError(
        [
          new CredentialUnavailableError('EnvironmentCredential is unavailable.'),
          new CredentialUnavailableError('ManagedIdentityCredential: Network unreachable.', {
            cause: Object.assign(new Error('network_error'), { errorCode: 'network_error' }),
          }),
        ],
        'ChainedTokenCredential authentication failed.',
      ),
    ],
    [
      'structure wins over message: status 503 below a message quoting AADSTS7000215',
      new CredentialUnavailableError('AADSTS7000215 in text', { cause: msalServerError(503) }),
    ],
  ];
  for (const [name, error] of retryable) {
    it(`retries: ${name}`, () => assert.equal(defaultIsRetryable(error), true));
  }

  const selfCaused = new Error('loop');
  (selfCaused as { cause?: unknown }).cause = selfCaused;
  const selfAbort = abortError();
  (selfAbort as { cause?: unknown }).cause = selfAbort;
  const fatal: [string, unknown][] = [
    ['InvalidTokenError', new InvalidTokenError('no oid')],
    ['DisposedError', new DisposedError('disposed')],
    ['a plain abort', abortError()],
    ['DOMException AbortError', new DOMException('This operation was aborted', 'AbortError')],
    [
      'HTTP 400 invalid_client (AuthenticationError)',
      new AuthenticationError(400, entraBody('invalid_client', 7000215)),
    ],
    ['HTTP 401 (AuthenticationError)', new AuthenticationError(401, entraBody('invalid_client', 7000215))],
    ['HTTP 403 (RestError)', restError(403)],
    ['HTTP 404 (RestError)', restError(404)],
    [
      'MI unknown identity: CredentialUnavailableError caused by ServerError 400',
      new CredentialUnavailableError(
        'ManagedIdentityCredential: Authentication failed. Message Unable to load the proper Managed Identity.',
        { cause: msalServerError(400) },
      ),
    ],
    [
      'confidential wrong secret',
      new AuthenticationRequiredError({
        scopes: [],
        message: 'invalid_client: Error(s): 7000215 - Description: AADSTS7000215: Invalid client secret provided.',
      }),
    ],
    [
      'confidential unknown client',
      new AuthenticationRequiredError({
        scopes: [],
        message: 'unauthorized_client: Error(s): 700016 - Description: AADSTS700016: Application not found',
      }),
    ],
    ['unknown AADSTS code', new Error('Something: AADSTS123456: no idea')],
    [
      'credential unavailable in this environment',
      new CredentialUnavailableError('EnvironmentCredential is unavailable. No underlying credential could be used.'),
    ],
    [
      'aggregate of unavailable credentials',
      new AggregateAuthenticationError(
        [
          new CredentialUnavailableError('EnvironmentCredential is unavailable.'),
          new CredentialUnavailableError('Azure CLI could not be found.'),
        ],
        'ChainedTokenCredential authentication failed.',
      ),
    ],
    ['an unknown error', new Error('boom')],
    ['undefined', undefined],
    ['a string', 'ECONNRESET'],
    ['a self-caused error', selfCaused],
    ['a self-caused abort', selfAbort],
  ];
  for (const [name, error] of fatal) {
    it(`does not retry: ${name}`, () => assert.equal(defaultIsRetryable(error), false));
  }
});

describe('retryAfterMs', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('reads a retryAfterMs or retryAfterInMs property', () => {
    assert.equal(retryAfterMs(Object.assign(new Error('x'), { retryAfterMs: 1500 }), now), 1500);
    assert.equal(retryAfterMs(Object.assign(new Error('x'), { retryAfterInMs: 250 }), now), 250);
  });

  it('reads Retry-After seconds from response headers (HttpHeaders-like get())', () => {
    assert.equal(retryAfterMs(restError(429, { 'retry-after': '3' }), now), 3000);
    assert.equal(retryAfterMs(restError(503, { 'retry-after': '0.5' }), now), 500);
  });

  it('reads plain header objects in any case, on headers or responseHeaders (MSAL NetworkError)', () => {
    assert.equal(retryAfterMs({ headers: { 'Retry-After': '2' } }, now), 2000);
    assert.equal(retryAfterMs({ responseHeaders: { 'retry-after': ['4'] } }, now), 4000);
  });

  it('reads an HTTP date, 0 when it is past', () => {
    assert.equal(retryAfterMs({ headers: { 'retry-after': new Date(now + 7000).toUTCString() } }, now), 7000);
    assert.equal(retryAfterMs({ headers: { 'retry-after': new Date(now - 7000).toUTCString() } }, now), 0);
  });

  it('prefers retry-after-ms and x-ms-retry-after-ms', () => {
    assert.equal(retryAfterMs({ headers: { 'retry-after-ms': '120', 'retry-after': '9' } }, now), 120);
    assert.equal(retryAfterMs({ headers: { 'x-ms-retry-after-ms': '80' } }, now), 80);
  });

  it('walks causes and aggregate errors and takes the longest delay', () => {
    const inner = restError(429, { 'retry-after': '5' });
    assert.equal(retryAfterMs(new TokenUnavailableError('x', { cause: new Error('y', { cause: inner }) }), now), 5000);
    const aggregate = new AggregateAuthenticationError([
      restError(429, { 'retry-after': '1' }),
      restError(503, { 'retry-after': '6' }),
    ]);
    assert.equal(retryAfterMs(aggregate, now), 6000);
  });

  it('is undefined without a usable value', () => {
    assert.equal(retryAfterMs(new Error('x'), now), undefined);
    assert.equal(retryAfterMs({ headers: { 'retry-after': 'soon' } }, now), undefined);
    assert.equal(retryAfterMs({ retryAfterMs: -1 }, now), undefined);
    assert.equal(retryAfterMs(undefined, now), undefined);
    const loop = new Error('loop');
    (loop as { cause?: unknown }).cause = loop;
    assert.equal(retryAfterMs(loop, now), undefined);
  });
});
