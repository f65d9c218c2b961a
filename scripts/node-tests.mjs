// Runs one `node --test` process over spec files, with the spec reporter on stdout (or buffered, to print later) and a
// TAP reporter to a temporary file whose closing counts say how many passed and failed. Shared by scripts/test.mjs and
// scripts/test-lanes.mjs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Resolves with { label, code, output, passed, failed }; a non-zero exit with no failed test counts as one failure.
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
      });
    });
  });
}
