// ioredis majors: 5 (what this file tests does not depend on the ioredis major; the client files run on both)
/**
 * The short chaos soak (about 2 minutes of harness/soak/, which bench/soak.ts runs for longer): all client shapes
 * writing through token rotations of 2-6 s, token-service faults of every kind (an outage longer than a token's life
 * included), redis-server restarts and kills, and a cluster node kill. Asserts the figures that must be 0; timings and
 * the other figures are printed, not asserted (`npm run soak -- --minutes 30` writes them to docs/soak.md). An expiry
 * close counts against the library when the newer token came before the old one's re-AUTH deadline (min(5 s, 20 % of
 * its life) before expiry): what the library guarantees; after that deadline, with 2-6 s tokens, a busy scheduler
 * decides (the long soak keeps its strict 250 ms).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { mustBeZero, renderSoak, runSoak } from '../harness/soak/index.js';

it(
  'chaos soak, 2 minutes: no acknowledged write lost, no avoidable expiry disconnect, nothing unhandled',
  { timeout: 8 * 60_000 },
  async (t) => {
    const report = await runSoak({ minutes: 2, lateTokenRule: 'deadline', log: (line) => t.diagnostic(line) });
    const rendered = renderSoak(report);
    for (const line of rendered.split('\n')) t.diagnostic(line);

    // The run really exercised what it claims: every fault kind, rotations, every lane writing.
    for (const kind of [
      'token service 5xx',
      'token service 429',
      'token service hang',
      'token service reset',
      'token service down',
    ]) {
      assert.ok((report.faultCounts[kind] ?? 0) >= 1, `fault injected: ${kind}`);
    }
    assert.ok(
      (report.faultCounts['redis-server restart (SIGTERM)'] ?? 0) +
        (report.faultCounts['redis-server kill (SIGKILL) + start'] ?? 0) >=
        1,
      'redis-server restarted or killed',
    );
    assert.ok((report.faultCounts['cluster node kill (SIGKILL) + restart'] ?? 0) >= 1, 'a cluster node killed');
    assert.ok(
      report.rotations.standalone >= 10 && report.rotations.cluster >= 10,
      `rotations: ${JSON.stringify(report.rotations)}`,
    );
    for (const lane of report.lanes) assert.ok(lane.acked > 0, `lane ${lane.name} wrote`);
    assert.ok(report.queue.delivered > 0 && report.pubsub.received > 0, 'queue and pub/sub carried messages');

    assert.deepEqual(
      mustBeZero(report),
      {
        ackedWritesLost: 0,
        expiryDisconnectsNotBlocked: 0,
        expiryDisconnectsBlocked: 0,
        unhandledRejections: 0,
        uncaughtExceptions: 0,
        lanesNotRecovered: 0,
      },
      report.expiry.details.join('\n') || report.unhandledMessages.join('\n'),
    );
  },
);
