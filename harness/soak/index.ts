/** The chaos soak scenario, driven by spec/soak.test.ts (2 minutes) and bench/soak.ts (the long run, docs/soak.md). */
export { mustBeZero, type FaultRecord, type LaneReport, type SoakReport } from './report.js';
export { renderSoak } from './render.js';
export { runSoak } from './run.js';
export type { SoakOptions } from './settings.js';
