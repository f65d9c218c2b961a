/**
 * Leaks: what a long-lived process accumulates per token rotation, per reconnect and per client created and closed
 * (the scenario is harness/leaks/; spec/leaks.test.ts runs it at a small scale).
 *
 *   npm run bench:leaks                       10,000 rotations over 100 connections, 1,000 reconnect rounds,
 *                                             1,000 create/quit cycles; writes docs/leaks.md
 *   npm run bench:leaks -- --rotations 500 --reconnects 200 --cycles 200 --no-write
 *   other options: --connections N, --blocked-rotations N, --token-ms N
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderLeaks, runLeaks } from '../harness/leaks/index.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string, fallback: number) => {
    const index = args.indexOf(name);
    return index === -1 ? fallback : Number(args[index + 1]);
  };
  const report = await runLeaks({
    rotations: value('--rotations', 10_000),
    connections: value('--connections', 100),
    blockedRotations: value('--blocked-rotations', 1_000),
    reconnects: value('--reconnects', 1_000),
    cycles: value('--cycles', 1_000),
    tokenMs: value('--token-ms', 100),
  });
  const markdown = renderLeaks(report);
  if (!args.includes('--no-write')) {
    const out = fileURLToPath(new URL('../docs/leaks.md', import.meta.url));
    writeFileSync(out, markdown);
    process.stderr.write(`leaks: wrote ${out}\n`);
  }
  process.stdout.write(`${markdown}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`leaks failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
