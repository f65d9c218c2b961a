/**
 * Importing the package installs nothing in the importing process: no SIGINT / SIGTERM / exit handlers (the testing
 * entry installs its safety net only when a redis-server is started). Checked in a fresh `node` process that loads the
 * built package by its own name, as a user would, from both module systems.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { it } from 'node:test';

const EVENTS = ['SIGINT', 'SIGTERM', 'exit'] as const;
type Counts = Record<(typeof EVENTS)[number], number>;
const NONE: Counts = { SIGINT: 0, SIGTERM: 0, exit: 0 };

/** The process listener counts of a fresh process once `load` (an expression giving a promise) has settled. */
function listenerCountsAfter(load: string, inputType: 'commonjs' | 'module'): Counts {
  const print = `console.log(JSON.stringify(Object.fromEntries(${JSON.stringify(EVENTS)}.map((e) => [e, process.listenerCount(e)]))))`;
  // No top-level await: the counts are read once the import has settled, from a plain callback.
  const script = `Promise.resolve(${load}).then(() => { ${print}; })`;
  const out = execFileSync(process.execPath, ['--input-type', inputType, '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as Counts;
}

for (const entry of ['ioredis-entraid/testing', 'ioredis-entraid']) {
  it(`import '${entry}' installs no process signal or exit handlers`, () => {
    assert.deepEqual(listenerCountsAfter(`import('${entry}')`, 'module'), NONE);
  });

  it(`require('${entry}') installs no process signal or exit handlers`, () => {
    assert.deepEqual(listenerCountsAfter(`require('${entry}')`, 'commonjs'), NONE);
  });
}
