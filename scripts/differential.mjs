// The differential property-based test (spec/binding/differential.test.ts) with many runs, shrinking failures to a
// smallest sequence. Runs on ioredis 5 and 6 side by side, like the regular suite.
//
//   npm run test:differential -- --runs 200
//   npm run test:differential -- --runs 200 --ioredis 6
//   npm run test:differential -- --seed <seed> --path <path>     replays one case (and shrinks it)
//   npm run test:differential -- --runs 50 --no-shrink --verbose
//   npm run test:differential -- --runs 100 --survey     runs them all, prints every failing sequence (no shrinking)
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const take = (name) => {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  return args.splice(index, 2)[1];
};
const flag = (name) => {
  const index = args.indexOf(name);
  if (index === -1) return false;
  args.splice(index, 1);
  return true;
};
const env = {
  ...process.env,
  DIFFERENTIAL_RUNS: take('--runs') ?? '200',
  DIFFERENTIAL_SHRINK: flag('--no-shrink') ? '0' : '1',
};
const seed = take('--seed');
const path = take('--path');
if (seed !== undefined) env.DIFFERENTIAL_SEED = seed;
if (path !== undefined) env.DIFFERENTIAL_PATH = path;
if (flag('--verbose')) env.DIFFERENTIAL_VERBOSE = '1';
if (flag('--survey')) env.DIFFERENTIAL_SURVEY = '1';
const ioredis = take('--ioredis');
if (args.length > 0) {
  console.error(`unknown arguments: ${args.join(' ')}`);
  process.exit(2);
}
const child = spawn(
  process.execPath,
  ['scripts/test.mjs', ...(ioredis ? ['--ioredis', ioredis] : []), 'spec/binding/differential.test.ts'],
  { stdio: 'inherit', env },
);
child.on('exit', (code) => process.exit(code ?? 1));
