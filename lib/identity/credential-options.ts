import type { HttpClient } from '@azure/core-rest-pipeline';
import { abortableHttpClient } from './abortable-http-client.js';

/** The part of @azure/identity's credential options the library sets. */
interface LibraryManagedOptions {
  retryOptions?: { maxRetries?: number };
  httpClient?: HttpClient;
}

/**
 * The options the library gives every credential it creates, over the caller's `credentialOptions`: the SDK's own
 * HTTP retries off unless the caller sets them (the token manager retries: one policy governs attempts, delays and
 * Retry-After), and an HTTP client that aborts every request the token manager abandons (the caller's client, wrapped).
 */
export function libraryCredentialOptions<T extends LibraryManagedOptions>(given: T | undefined): T {
  return {
    ...given,
    retryOptions: { maxRetries: 0, ...given?.retryOptions },
    httpClient: abortableHttpClient(given?.httpClient),
  } as T;
}
