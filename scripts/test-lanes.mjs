// The CI lanes beside the main matrix, each on its own install of the packages it varies (under .cache/lanes/,
// resolved through lanes/resolve-hook.mjs in place of the project's node_modules):
//
//   newest   the newest published ioredis 5.x and 6.x (installed afresh on every run, not the lockfile's), on the
//            newest Node line of the matrix: the spec files that drive ioredis's internals. A release that breaks
//            what the library relies on fails here the day it ships.
//   lowest   the lowest version of every range package.json declares: ioredis (lowest 5.x and 6.0.0),
//            @azure/identity, @azure/core-auth, @azure/core-rest-pipeline and p-retry, on the lowest Node.js release
//            engines accepts: the same client spec files, plus spec/identity, spec/manager and the built package
//            loaded from CommonJS and ES modules. So that the ranges claim nothing that was never run.
//
//   node scripts/test-lanes.mjs                 both lanes
//   node scripts/test-lanes.mjs lowest          one of them
// Prints a closing line "N passed, N failed" and exits non-zero when anything failed. Needs the npm registry only.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lowestSupportedNode, nodeBinary } from './node-binary.mjs';
import { printSummary, runNodeTests } from './node-tests.mjs';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** The spec files that exercise ioredis's internals through the library. */
const CLIENT_FILES = [
  'spec/binding/create-entra-redis.test.ts',
  'spec/binding/reauth.test.ts',
  'spec/binding/application-state.test.ts',
  'spec/binding/pubsub.test.ts',
  'spec/binding/ioredis-contract.test.ts',
  'spec/binding/ioredis-workarounds.test.ts',
];
const specsIn = (dir) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => `${dir}/${f}`);
/** The runtime dependencies the lowest lane pins (ioredis, the peer, is pinned per major). */
const RUNTIME = ['@azure/identity', '@azure/core-auth', '@azure/core-rest-pipeline', 'p-retry'];

/** Lowest version of each alternative of a range made of "^x.y.z" / ">=x.y.z" parts joined by "||". */
function lowestOf(name, range) {
  return range.split('||').map((part) => {
    const match = /^\s*(?:\^|>=\s*)?(\d+\.\d+\.\d+)\s*$/.exec(part);
    if (!match)
      throw new Error(`${name}: cannot take the lowest version of "${range}" (expected ^x.y.z or >=x.y.z parts)`);
    return match[1];
  });
}

const lowestIoredis = lowestOf('ioredis', pkg.peerDependencies.ioredis);
const lowestRuntime = RUNTIME.map((name) => `${name}@${lowestOf(name, pkg.dependencies[name])[0]}`);
const majorOf = (version) => version.split('.')[0];
const lowestFor = (major) => {
  const version = lowestIoredis.find((v) => majorOf(v) === major);
  if (!version) throw new Error(`package.json's ioredis range has no ${major}.x`);
  return version;
};

const LANES = {
  newest: {
    node: '24',
    packages: ['ioredis'],
    runs: [
      { major: '5', install: ['ioredis@5'], files: CLIENT_FILES },
      { major: '6', install: ['ioredis@6'], files: CLIENT_FILES },
    ],
  },
  lowest: {
    node: lowestSupportedNode().join('.'),
    packages: ['ioredis', ...RUNTIME],
    runs: [
      // spec/package: the built package loads from CommonJS (require of the ES-module p-retry) on this Node.
      {
        major: '5',
        install: [`ioredis@${lowestFor('5')}`, ...lowestRuntime],
        files: [
          ...CLIENT_FILES,
          ...specsIn('spec/identity'),
          ...specsIn('spec/manager'),
          'spec/package/exports.test.ts',
        ],
      },
      { major: '6', install: [`ioredis@${lowestFor('6')}`, ...lowestRuntime], files: CLIENT_FILES },
    ],
  },
};

/** Installs `specs` afresh into .cache/lanes/<name> and returns the prefix and what was installed. */
function install(name, specs, binary) {
  const prefix = join(root, '.cache', 'lanes', name);
  rmSync(prefix, { recursive: true, force: true });
  mkdirSync(prefix, { recursive: true });
  const env = { ...process.env, PATH: `${join(binary, '..')}:${process.env.PATH ?? ''}` };
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', prefix, ...specs], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  });
  const installed = JSON.parse(readFileSync(join(prefix, 'package.json'), 'utf8')).dependencies ?? {};
  const versions = Object.keys(installed).map((dep) => {
    const file = join(prefix, 'node_modules', dep, 'package.json');
    return `${dep}@${existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).version : '?'}`;
  });
  return { prefix, versions };
}

function run(binary, label, files, env, buffered) {
  return runNodeTests({
    binary,
    imports: ['tsx', './scripts/lanes/register.mjs'],
    files,
    label,
    env: { ...process.env, ...env },
    cwd: root,
    buffered,
  });
}

const chosen = process.argv.slice(2);
// spec/package/exports.test.ts loads the built package (test:ci builds before the lanes).
if (!existsSync(join(root, 'dist', 'cjs', 'index.js')))
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
for (const name of chosen)
  if (!(name in LANES)) throw new Error(`unknown lane "${name}"; lanes: ${Object.keys(LANES).join(', ')}`);
const results = [];
for (const name of chosen.length > 0 ? chosen : Object.keys(LANES)) {
  const lane = LANES[name];
  const started = Date.now();
  const binary = nodeBinary(lane.node);
  const nodeVersion = execFileSync(binary, ['--version']).toString().trim();
  const prepared = lane.runs.map((r) => ({ ...r, ...install(`${name}-ioredis${r.major}`, r.install, binary) }));
  // The ioredis majors run side by side, as in the main matrix: the first prints as it goes, the other once done.
  const runs = prepared.map((r, index) =>
    run(
      binary,
      `lane ${name}, Node ${nodeVersion}: ${r.versions.join(', ')} (${r.files.length} files)`,
      r.files,
      { IOREDIS_MAJOR: r.major, ENTRAID_LANE_PREFIX: r.prefix, ENTRAID_LANE_PACKAGES: lane.packages.join(',') },
      index > 0,
    ),
  );
  for (const result of await Promise.all(runs)) {
    if (result.output) console.log(`\n=== ${result.label} ===\n${result.output}`);
    results.push(result);
  }
  console.log(`\nlane ${name}: ${Math.round((Date.now() - started) / 1000)} s`);
}

process.exit(printSummary(results));
