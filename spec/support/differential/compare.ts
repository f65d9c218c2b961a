/**
 * Compares what the application observed on the two sides.
 *
 * Normalisation rule (the only one): 'error' events of a dropped or refused connection (ECONNRESET, EPIPE,
 * ECONNREFUSED, "Connection is closed.") are left out on both sides. A drop is the same CLIENT KILL at the same point
 * of both runs, but whether the client reads it as a clean close or as a reset depends on what is in flight in each
 * direction at that instant (and on the emulator, a proxy, in between), and ioredis reports a reset as an 'error'
 * event and a close as nothing. Such events carry no reply and no data; the commands of the dropped connection are
 * compared like all others. Nothing else is normalised: the operations never ask the server for anything that
 * legitimately differs between the two servers (connection ids, ports, addresses), keys and counters start empty on
 * both, and every reply, reply error, message and other 'error' event must be equal, in order.
 *
 * One known difference, a documented limit of the RESP2 subscriber handover (docs/guarantees.md, "Not guaranteed",
 * "One subscriber count during a RESP2 handover"), is allowed so that the property keeps checking everything else:
 * while a handover runs, the reply of PUBLISH/SPUBLISH may count one subscriber more than the plain client's (the
 * shadow connection), never anything else. The counts (P|S)(UN)SUBSCRIBE resolve with, and the messages of every
 * pattern subscription, are compared as they are.
 */
import { isDeepStrictEqual, inspect } from 'node:util';
import type { Outcome } from './run-sequence.js';

const CONNECTION_ERROR = /\b(ECONNRESET|EPIPE|ECONNREFUSED)\b|^Connection is closed\.$/;
/** Replies that count the subscribers a message reached: of the publish operations (see run-sequence.ts labels). */
const COUNT_REPLY = / s?publish /;

/** The documented handover difference in a PUBLISH count: one more than the plain client's. */
function shadowCounted(
  plain: { at: string; value: unknown } | undefined,
  entra: { at: string; value: unknown } | undefined,
): boolean {
  return (
    plain !== undefined &&
    entra !== undefined &&
    plain.at === entra.at &&
    COUNT_REPLY.test(plain.at) &&
    typeof plain.value === 'number' &&
    entra.value === plain.value + 1
  );
}

function withoutConnectionErrors(events: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(events).map(([client, messages]) => [
      client,
      messages.filter((message) => !CONNECTION_ERROR.test(message)),
    ]),
  );
}

/** Differing replies listed: after a first difference, the following ones are often its consequences. */
const MAX_REPLY_LINES = 3;

/**
 * Whether plain ioredis itself lost track of its connection in this run (a reply it could not match to a command, a
 * command never answered): such a run is no reference for the library, and the property discards it. Known cause: a
 * RESP2 UNSUBSCRIBE answered with count 0 while shard channels remain makes ioredis 5 leave subscriber mode while the
 * server does not.
 */
export function plainLostTrack(plain: Outcome): boolean {
  return (
    Object.values(plain.errorEvents).some((events) =>
      events.some((message) => /Command queue state error/.test(message)),
    ) || plain.replies.some(({ value }) => typeof value === 'string' && value.startsWith('no reply within'))
  );
}

const show = (value: unknown) => inspect(value, { depth: 6, breakLength: Infinity });

/** The differences between the plain client's outcome and the library's, one line each; empty when equal. */
export function differences(plain: Outcome, entra: Outcome): string[] {
  const found: string[] = [];
  const length = Math.max(plain.replies.length, entra.replies.length);
  let shown = 0;
  for (let i = 0; i < length && shown < MAX_REPLY_LINES; i += 1) {
    const p = plain.replies[i];
    const e = entra.replies[i];
    if (isDeepStrictEqual(p, e) || shadowCounted(p, e)) continue;
    shown += 1;
    found.push(
      `reply #${i}: plain ${p ? `${p.at} -> ${show(p.value)}` : '(none)'}; entra ${e ? `${e.at} -> ${show(e.value)}` : '(none)'}`,
    );
  }
  const keys = new Set([...Object.keys(plain.messages), ...Object.keys(entra.messages)]);
  for (const key of keys) {
    const p = plain.messages[key] ?? [];
    const e = entra.messages[key] ?? [];
    if (!isDeepStrictEqual(p, e)) found.push(`messages of "${key}": plain ${show(p)}; entra ${show(e)}`);
  }
  const plainErrors = withoutConnectionErrors(plain.errorEvents);
  const entraErrors = withoutConnectionErrors(entra.errorEvents);
  for (const client of new Set([...Object.keys(plainErrors), ...Object.keys(entraErrors)])) {
    const p = plainErrors[client] ?? [];
    const e = entraErrors[client] ?? [];
    if (!isDeepStrictEqual(p, e)) found.push(`'error' events of ${client}: plain ${show(p)}; entra ${show(e)}`);
  }
  if (!isDeepStrictEqual(plain.leftovers, entra.leftovers)) {
    found.push(
      `connections left open after disconnect(): plain ${show(plain.leftovers)}; entra ${show(entra.leftovers)}`,
    );
  }
  return found;
}
