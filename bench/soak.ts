/**
 * Chaos soak: every client shape the library binds (standalone clients, duplicates of them and of their duplicates, a
 * Cluster, a pub/sub subscriber, a queue consumer blocked in BLMOVE) writes continuously through the AMR emulator while
 * token lifetimes change at random between 2 and 6 s, the token service fails at random (5xx, 429 with Retry-After,
 * hangs, resets, down for longer than a token's life), redis-server is restarted (SIGTERM) or killed (SIGKILL) and
 * restarted, and cluster nodes are killed and restarted. Every acknowledged write is recorded and verified at the end.
 *
 *   npm run soak -- --minutes 30             writes docs/soak.md
 *   npm run soak -- --minutes 2 --no-write   prints the report only
 *   options: --seed N (reproducible fault schedule), --out FILE
 *
 * The scenario is harness/soak/; spec/soak.test.ts runs its 2-minute version and asserts the must-be-0 figures.
 * Exit code of the command: 0 when every must-be-0 figure is 0, else 1.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mustBeZero, renderSoak, runSoak } from '../harness/soak/index.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string) => {
    const index = args.indexOf(name);
    return index === -1 ? undefined : args[index + 1];
  };
  const minutes = Number(value('--minutes') ?? 30);
  if (!Number.isFinite(minutes) || minutes < 1) throw new Error('--minutes must be a number of at least 1');
  const seedArg = value('--seed');
  const out = args.includes('--no-write')
    ? undefined
    : (value('--out') ?? fileURLToPath(new URL('../docs/soak.md', import.meta.url)));
  const report = await runSoak({ minutes, ...(seedArg !== undefined ? { seed: Number(seedArg) } : {}) });
  const markdown = renderSoak(report);
  if (out) {
    writeFileSync(out, markdown);
    process.stderr.write(`soak: wrote ${out}\n`);
  }
  process.stdout.write(`${markdown}\n`);
  const zero = mustBeZero(report);
  process.stderr.write(`soak: must-be-0 figures ${JSON.stringify(zero)}\n`);
  process.exitCode = Object.values(zero).every((v) => v === 0) ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
