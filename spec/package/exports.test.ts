// ioredis majors: 5 (what this file tests does not depend on the ioredis major; the client files run on both)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { it } from 'node:test';

// The built package (npm run build runs before the suite), loaded by its own name as a user would.
const expected = [
  'createEntraRedis',
  'createCredentialsProvider',
  'createManagedIdentityCredentialsProvider',
  'createConfidentialCredentialsProvider',
  'createDefaultAzureCredentialsProvider',
  'EntraCredentialsProvider',
  'TokenUnavailableError',
  'InvalidTokenError',
];

function exportsOf(script: string, inputType: 'commonjs' | 'module'): string[] {
  const out = execFileSync(process.execPath, ['--input-type', inputType, '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

it('require("ioredis-entraid") works from CommonJS', () => {
  const names = exportsOf(`console.log(JSON.stringify(Object.keys(require('ioredis-entraid'))))`, 'commonjs');
  for (const name of expected) assert.ok(names.includes(name), `missing ${name}`);
});

it('import "ioredis-entraid" works from ES modules', () => {
  const names = exportsOf(
    `const m = await import('ioredis-entraid'); console.log(JSON.stringify(Object.keys(m)))`,
    'module',
  );
  for (const name of expected) assert.ok(names.includes(name), `missing ${name}`);
});

it('ships type declarations for both formats', () => {
  assert.ok(existsSync('dist/esm/index.d.ts'));
  assert.ok(existsSync('dist/cjs/index.d.ts'));
});

it('ioredis-entraid/testing exports the emulators to both module systems, apart from the main entry', () => {
  const wanted = ['EntraEmulator', 'AmrEmulator', 'startRedisServer', 'startRedisCluster', 'startAmrCluster'];
  const cjs = exportsOf(`console.log(JSON.stringify(Object.keys(require('ioredis-entraid/testing'))))`, 'commonjs');
  const esm = exportsOf(
    `const m = await import('ioredis-entraid/testing'); console.log(JSON.stringify(Object.keys(m)))`,
    'module',
  );
  for (const name of wanted) {
    assert.ok(cjs.includes(name), `CJS missing ${name}`);
    assert.ok(esm.includes(name), `ESM missing ${name}`);
  }
  const main = exportsOf(`console.log(JSON.stringify(Object.keys(require('ioredis-entraid'))))`, 'commonjs');
  assert.ok(!main.includes('EntraEmulator'), 'the main entry does not carry the emulators');
});
