import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { nextEvent } from '../../harness/world.js';

/** Resolves with 'done' or 'failed' when the next subscriber handover of the connection `name` ends. */
export function handoverEnded(provider: EntraCredentialsProvider, name: string): Promise<'done' | 'failed'> {
  return Promise.race([
    nextEvent(provider, 'reauthenticated', (e) => e.connection === name && e.method === 'handover', 20_000).then(
      () => 'done' as const,
    ),
    nextEvent(provider, 'reauthenticationFailed', (e) => e.connection === name, 20_000).then(() => 'failed' as const),
  ]);
}
