import diagnosticsChannel from 'node:diagnostics_channel';
import type { EntraCredentialsProvider } from '../../lib/identity/credentials-provider.js';
import { HANDOVER_CHANNEL, type HandoverPhaseMessage } from '../../lib/tracing.js';
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

/**
 * Runs `act` synchronously the moment a handover of `name` enters 'reconnecting' with `ready()` true; a handover where
 * it is false at that moment is skipped and the next one waited for (5 at most, then throws `Error(missed)`).
 * Resolves with what `act` returned and how that handover ended.
 */
export async function actAtReconnecting<T>(
  provider: EntraCredentialsProvider,
  name: string,
  ready: () => boolean,
  act: () => T,
  missed: string,
): Promise<{ value: T; outcome: string }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let acted: { value: T } | undefined;
    const listener = (message: unknown) => {
      const m = message as HandoverPhaseMessage;
      if (m.connection !== name || m.phase !== 'reconnecting' || acted || !ready()) return;
      acted = { value: act() };
    };
    const ended = handoverEnded(provider, name);
    diagnosticsChannel.subscribe(HANDOVER_CHANNEL, listener);
    let outcome: string;
    try {
      outcome = await ended;
    } finally {
      diagnosticsChannel.unsubscribe(HANDOVER_CHANNEL, listener);
    }
    if (acted) return { value: acted.value, outcome };
  }
  throw new Error(missed);
}
