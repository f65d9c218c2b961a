import type { EntraCredentialsProvider } from './credentials-provider.js';
import { createDefaultAzureCredentialsProvider } from './default-azure.js';

// Held on globalThis so that the ESM and CommonJS copies of the library, if both are loaded, share one provider.
const KEY = Symbol.for('ioredis-entraid.defaultProvider');
type Holder = { [KEY]?: EntraCredentialsProvider };

/**
 * The provider used by clients created without one: DefaultAzureCredential for the Redis scope, made on first use
 * and shared by all such clients, so that they share one token and one refresh schedule.
 */
export function defaultCredentialsProvider(): EntraCredentialsProvider {
  const holder = globalThis as Holder;
  let provider = holder[KEY];
  if (!provider || provider.disposed) {
    provider = createDefaultAzureCredentialsProvider();
    holder[KEY] = provider;
  }
  return provider;
}
