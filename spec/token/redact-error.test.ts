/**
 * redactError: every place a token can hide in what a credential or ioredis throws. The end-to-end check over the
 * library's real failure paths is spec/binding/secrets.test.ts; this pins the walker itself.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { redactError, redactTokens } from '../../lib/token/redact-error.js';

// Shaped like a JWT (header.claims.signature), which is what the redaction recognises.
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJhYmMifQ.c2lnbmF0dXJlLXRoYXQtbWFrZXMtaXQtdXNhYmxl';
const leaks = (value: unknown) =>
  inspect(value, { depth: 20, showHidden: true }).includes(TOKEN.split('.')[2] as string);

describe('redactError', () => {
  it('redacts the message, the stack and a string property', () => {
    const error = Object.assign(new Error(`bad token ${TOKEN}`), { detail: `was ${TOKEN}` });
    assert.ok(leaks(error), 'the fixture carries the token');
    redactError(error);
    assert.equal(leaks(error), false);
    assert.match(error.message, /bad token <redacted>/);
  });

  it('follows nested plain objects and arrays (a response body, ioredis command arguments)', () => {
    const error = Object.assign(new Error('request failed'), {
      response: { status: 200, bodyAsText: `{"access_token":"${TOKEN}"}`, headers: [['x', TOKEN]] },
      command: { name: 'auth', args: ['user', TOKEN] },
    });
    redactError(error);
    assert.equal(leaks(error), false);
    assert.deepEqual(error.command.args, ['user', '<redacted>']);
    assert.equal(error.response.status, 200, 'other values are kept');
  });

  it("replaces an argument list with a redacted copy, leaving the command's own list as it was", () => {
    const args = ['user', TOKEN];
    const error = Object.assign(new Error('WRONGPASS'), { command: { name: 'auth', args } });
    redactError(error);
    assert.deepEqual(error.command.args, ['user', '<redacted>']);
    assert.deepEqual(args, ['user', TOKEN], 'the array ioredis may send again is untouched');
  });

  it('follows causes, AggregateError members and errors held in properties, and survives cycles', () => {
    const inner = Object.assign(new Error(`inner ${TOKEN}`), { extra: { deep: { deeper: TOKEN } } });
    const aggregate = new AggregateError([inner, new Error('second', { cause: new Error(TOKEN) })], 'all failed');
    const outer = Object.assign(new Error('outer', { cause: aggregate }), { lastNodeError: new Error(TOKEN) });
    (inner.extra as Record<string, unknown>).loop = inner.extra;
    (aggregate as unknown as Record<string, unknown>).self = aggregate;
    redactError(outer);
    assert.equal(leaks(outer), false);
  });

  it('returns a thrown string redacted, and leaves other values alone', () => {
    assert.equal(redactError(`failed for ${TOKEN}`), 'failed for <redacted>');
    assert.equal(redactError(42), 42);
    assert.equal(redactError<unknown>(undefined), undefined);
  });

  it('does not rewrite class instances an error points to, nor run accessors', () => {
    class Client {
      options = { password: TOKEN };
    }
    const client = new Client();
    let getterRan = false;
    const error = Object.assign(new Error('failed'), { client });
    Object.defineProperty(error, 'lazy', {
      enumerable: true,
      get: () => {
        getterRan = true;
        return TOKEN;
      },
    });
    redactError(error);
    assert.equal(client.options.password, TOKEN, 'a client reachable from an error keeps its credentials');
    assert.equal(getterRan, false);
  });

  it('tolerates frozen errors and read-only properties', () => {
    const error = Object.freeze(Object.assign(new Error('frozen'), { body: { text: 'nothing secret' } }));
    assert.doesNotThrow(() => redactError(error));
  });

  it('redactTokens replaces every JWT-shaped run in a string', () => {
    assert.equal(redactTokens(`a ${TOKEN} b ${TOKEN}`), 'a <redacted> b <redacted>');
  });
});
