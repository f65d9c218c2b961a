// ioredis majors: 5 (what this file tests does not depend on the ioredis major; the client files run on both)
/**
 * Fast leak regression (harness/leaks/ at a small scale; bench/leaks.ts runs it in full): 500 rotations over 50
 * connections, 100 rotations with a connection blocked in BLPOP 0, 200 reconnect rounds, 200 create/quit cycles.
 * Asserts that nothing accumulates: listener counts equal a fresh client's, the provider's subscriberCount equals the
 * clients alive, ioredis's queues hold no more than a fresh client's, no timer of the library is left once everything
 * is closed (unref'd ones included), no ref'd timer either, no `process` listener added. Heap figures are printed, not
 * asserted: they belong to `npm run bench:leaks` (docs/leaks.md).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { renderLeaks, runLeaks, type LeakReport, type PhaseReport } from '../harness/leaks/index.js';

describe('leaks: rotations, reconnects and create/quit cycles', { timeout: 10 * 60_000 }, () => {
  let report: LeakReport;
  const phase = (name: string): PhaseReport => {
    const found = report.phases.find((p) => p.name === name);
    assert.ok(found, `phase ${name} ran`);
    return found;
  };

  before(async () => {
    report = await runLeaks({
      rotations: 500,
      connections: 50,
      blockedRotations: 100,
      reconnects: 200,
      cycles: 200,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stderr.write(`${renderLeaks(report)}\n`);
  });

  it('the rotations really ran through the library', () => {
    assert.ok(Number(phase('rotations').notes['tokens received']) >= 500, 'at least 500 tokens received');
    assert.ok(Number(phase('rotations').notes['re-AUTH in place']) > 0, 're-AUTHs happened');
  });

  for (const name of [
    'rotations',
    'rotations, one connection blocked in BLPOP 0',
    'reconnects',
    'create/quit cycles',
  ]) {
    it(`${name}: listener counts and subscriberCount stay flat`, () => {
      assert.deepEqual(phase(name).listenerDiffs, [], 'listener counts against the start and against fresh clients');
      assert.deepEqual(phase(name).subscriberMismatches, [], 'provider.subscriberCount against the clients alive');
    });
  }

  for (const name of ['rotations', 'reconnects', 'create/quit cycles']) {
    it(`${name}: ioredis's command queues hold no more than a fresh client's`, () => {
      assert.deepEqual(phase(name).queueGrowth, []);
    });
  }

  it("rotations with a connection blocked in BLPOP 0: its command queue holds no more than a fresh blocked client's", () => {
    assert.deepEqual(phase('rotations, one connection blocked in BLPOP 0').queueGrowth, []);
  });

  it("no timer of the library, no ref'd timer, no process listener is left once everything is closed", () => {
    assert.deepEqual(report.libTimersLeft, [], 'timers of the library left after everything was closed');
    assert.ok(
      report.activeTimersAfter <= report.activeTimersBefore,
      `ref'd timers: ${report.activeTimersBefore} before, ${report.activeTimersAfter} after`,
    );
    assert.deepEqual(report.processListenerDiffs, [], 'process listeners');
    assert.equal(report.unhandledRejections, 0, 'unhandled rejections');
  });
});
