// Runs `node <args>` on a Node.js release package.json's engines accept: this one when it does, else the lowest
// supported line from npm (see node-binary.mjs), with that binary first on PATH so that what the command starts
// (node, npm) runs on it too. The npm scripts that run code (demo, test, check:package, bench, soak) go through here,
// so that `bash scripts/setup.sh && npm run demo` works on a machine whose own node is older.
//
//   node scripts/with-node.mjs --import tsx examples/demo.ts
import { spawn } from 'node:child_process';
import { dirname, delimiter } from 'node:path';
import { currentNodeSupported, lowestSupportedNode, nodeBinary } from './node-binary.mjs';

const binary = nodeBinary();
const env = { ...process.env };
if (!currentNodeSupported()) {
  console.error(
    `Node.js ${process.version} is older than this package supports (>=${lowestSupportedNode().join('.')}): ` +
      `running on ${binary}`,
  );
  env.PATH = `${dirname(binary)}${delimiter}${env.PATH ?? ''}`;
}
const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
