// Runs one `node --test` process over spec files, with the spec reporter on stdout (or buffered, to print later) and a
// TAP reporter to a temporary file whose closing counts say how many passed and failed. Shared by scripts/test.mjs and
// scripts/test-lanes.mjs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The failed tests of a TAP report (todo ones and suites that failed only through their tests left out), each as its
 * name and the head of its YAML block (location, error, expected and actual): what a reader of a long run needs first.
 */
export function failuresOf(tap) {
  const failures = [];
  const lines = tap.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^(\s*)not ok \d+ - (.*)$/.exec(lines[i]);
    if (!match || / # TODO( |$)/.test(match[2])) continue;
    const block = [];
    for (let j = i + 1; j < lines.length && lines[j].trim() !== '...'; j++) {
      if (lines[j].trim() !== '---') block.push(lines[j].slice(match[1].length + 2));
    }
    if (block.some((line) => line === "failureType: 'subtestsFailed'")) continue;
    const stack = block.findIndex((line) => line.startsWith('stack:'));
    failures.push({ name: match[2], details: (stack === -1 ? block : block.slice(0, stack + 4)).slice(0, 40) });
  }
  return failures;
}

/**
 * Resolves with { label, code, output, passed, failed, failures }; a non-zero exit with no failed test counts as one failure.
 * `imports` are the --import modules (tsx first), `env` the child's whole environment.
 */
export function runNodeTests({ binary, imports, files, label, env, cwd, buffered = false }) {
  const tapDir = mkdtempSync(join(tmpdir(), 'entraid-tap-'));
  const tapFile = join(tapDir, 'out.tap');
  const args = [
    ...imports.flatMap((module) => ['--import', module]),
    '--test',
    '--test-concurrency=2',
    // A test that hangs fails after 10 minutes, naming itself, instead of holding the run until CI's limit.
    '--test-timeout=600000',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ];
  if (!buffered) console.log(`\n=== ${label} ===`);
  return new Promise((resolve) => {
    const child = spawn(binary, args, { cwd, stdio: buffered ? ['ignore', 'pipe', 'pipe'] : 'inherit', env });
    let output = '';
    if (buffered)
      for (const stream of [child.stdout, child.stderr])
        stream.on('data', (chunk) => {
          output += chunk;
        });
    child.on('exit', (code) => {
      const tap = existsSync(tapFile) ? readFileSync(tapFile, 'utf8') : '';
      rmSync(tapDir, { recursive: true, force: true });
      const count = (name) => Number((tap.match(new RegExp(`^# ${name} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
      resolve({
        label,
        code,
        output,
        passed: count('pass'),
        failed: count('fail') + (code !== 0 && count('fail') === 0 ? 1 : 0),
        failures: failuresOf(tap),
      });
    });
  });
}

/**
 * Prints the closing summary of `runNodeTests` results ("N passed, N failed", then each failure again, last, so that a
 * reader of a long log finds it without searching) and returns the exit code: 1 when anything failed.
 */
export function printSummary(results) {
  console.log('\n=== summary ===');
  for (const r of results)
    console.log(`${r.label}: ${r.passed} passed, ${r.failed} failed${r.code !== 0 ? ` (exit ${r.code})` : ''}`);
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  console.log(`${passed} passed, ${failed} failed`);
  for (const r of results) {
    for (const failure of r.failures ?? []) {
      console.log(`\n=== failed: ${failure.name} (${r.label}) ===\n${failure.details.join('\n')}`);
    }
  }
  return failed > 0 || results.some((r) => r.code !== 0) ? 1 : 0;
}
