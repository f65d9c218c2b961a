import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import type { RefreshFailedEvent } from '../../lib/identity/events.js';

/** Anything shaped like a JWT. */
export const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\./;

/** An error as @azure/identity and MSAL build them, as far as the tests read it: any level may have a cause. */
export interface SdkError extends Error {
  cause?: SdkError;
  errors?: SdkError[];
  errorCode?: string;
  status?: number;
}

/**
 * The error a provider's getToken() rejects with and the refreshFailed report, checking that it is a
 * TokenUnavailableError and that neither a token nor any of `secrets` appears in it.
 */
export async function failureOf(
  provider: EntraCredentialsProvider,
  options: { timeout?: number; secrets?: string[] } = {},
): Promise<{ error: SdkError; report: RefreshFailedEvent }> {
  let report: RefreshFailedEvent | undefined;
  provider.once('refreshFailed', (event) => {
    report = event;
  });
  const error = await provider.getToken({ timeout: options.timeout ?? 10_000 }).then(
    () => assert.fail('expected getToken to fail'),
    (e: unknown) => e,
  );
  assert.equal((error as Error).name, 'TokenUnavailableError');
  const text = inspect(error, { depth: 10 });
  assert.doesNotMatch(text, JWT);
  for (const secret of options.secrets ?? [])
    assert.equal(text.includes(secret), false, 'a secret appears in the error');
  assert.ok(report, 'refreshFailed was emitted');
  return { error: error as SdkError, report };
}
