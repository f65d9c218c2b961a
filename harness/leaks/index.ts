/** The leak scenario, driven by spec/leaks.test.ts (a small scale) and bench/leaks.ts (the full run, docs/leaks.md). */
export { renderLeaks } from './render.js';
export type { LeakOptions, LeakReport, PhaseReport } from './report.js';
export { runLeaks } from './run.js';
