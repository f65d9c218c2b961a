// Checks the package as users get it: builds, packs, installs the tarball into a temporary project (the tarball
// itself from disk, its dependencies from the registry), then checks what a consumer does with it:
//   - the tarball holds only dist/, bin/, README.md, LICENSE and package.json;
//   - `import` from ES modules and `require` from CommonJS give the public API, with ioredis 5 and with ioredis 6;
//   - TypeScript consumers type-check with moduleResolution node16, nodenext and bundler (ESM and CJS files);
//   - the bin runs;
//   - publint and @arethetypeswrong/cli find nothing wrong with the tarball;
//   - beside an application's newest @azure/identity, npm installs one copy of it (and of MSAL and the core packages).
// Prints one line per check and a closing "N passed, N failed"; exits non-zero when anything failed.
//
//   node scripts/check-package.mjs              everything
//   node scripts/check-package.mjs --skip-build  use dist/ as it is
//   node scripts/check-package.mjs --keep       keep the temporary project and print its path
//   node scripts/check-package.mjs --ioredis 5  only one ioredis major
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index === -1 ? fallback : args[index + 1];
};
const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const require = createRequire(join(root, 'package.json'));
const tsc = require.resolve('typescript/bin/tsc');
const publintBin = join(root, 'node_modules', 'publint', 'src', 'cli.js');
const attwBin = join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const majors = option('--ioredis', '5,6').split(',').filter(Boolean);

/** Names a consumer must get from the package root, in both module systems. */
const EXPECTED_EXPORTS = [
  'createEntraRedis',
  'createEntraCluster',
  'createCredentialsProvider',
  'createManagedIdentityCredentialsProvider',
  'createConfidentialCredentialsProvider',
  'createDefaultAzureCredentialsProvider',
  'EntraCredentialsProvider',
  'EntraToken',
  'TokenUnavailableError',
  'InvalidTokenError',
  'TokenRequestTimeoutError',
  'DisposedError',
  'DEFAULT_REDIS_SCOPE',
  'defaultIsRetryable',
];
/** Names `ioredis-entraid/testing` must give, once package.json exports it. */
const TESTING_EXPORTS = [
  'EntraEmulator',
  'AmrEmulator',
  'startAmrCluster',
  'startRedisServer',
  'startRedisCluster',
  'selfSignedCertificate',
];
/** What the tarball may hold besides dist/. */
const ALLOWED_TOP_LEVEL = new Set(['package.json', 'README.md', 'LICENSE']);

const results = [];
function check(name, fn) {
  try {
    const detail = fn();
    results.push({ name, ok: true });
    console.log(`ok    ${name}${detail ? ` (${detail})` : ''}`);
  } catch (error) {
    results.push({ name, ok: false });
    const message = error instanceof Error ? error.message : String(error);
    console.log(
      `FAIL  ${name}\n${message
        .split('\n')
        .map((line) => `      ${line}`)
        .join('\n')}`,
    );
  }
}

/** Runs a command; throws with its output when it fails. */
function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${[command, ...commandArgs].join(' ')} exited ${result.status}\n${output}`);
  return output;
}

const work = mkdtempSync(join(tmpdir(), 'entraid-package-'));
try {
  // 1. Build and pack.
  if (!flag('--skip-build')) {
    console.log('building...');
    execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  }
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: root }));
  const tarball = join(packDir, packed.filename);
  const files = packed.files.map((file) => file.path).sort();
  console.log(
    `packed ${packed.filename}: ${files.length} files, ${(packed.size / 1024).toFixed(1)} kB (unpacked ${(packed.unpackedSize / 1024).toFixed(1)} kB)`,
  );

  check('tarball holds only dist/, bin/, README.md, LICENSE and package.json', () => {
    const binFiles = new Set(
      Object.values(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : (pkg.bin ?? {})).map((path) =>
        path.replace(/^\.\//, ''),
      ),
    );
    const stray = files.filter(
      (path) => !path.startsWith('dist/') && !ALLOWED_TOP_LEVEL.has(path) && !binFiles.has(path),
    );
    if (stray.length > 0) throw new Error(`unexpected files:\n${stray.join('\n')}`);
    const missing = [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/esm/index.js',
      'dist/esm/index.d.ts',
      'dist/cjs/index.js',
      'dist/cjs/index.d.ts',
      'dist/esm/package.json',
      'dist/cjs/package.json',
      ...binFiles,
    ].filter((path) => !files.includes(path));
    if (missing.length > 0) throw new Error(`missing files:\n${missing.join('\n')}`);
    const sources = files.filter((path) => /\.test\.|\/spec\/|\.tsbuildinfo$/.test(path));
    if (sources.length > 0) throw new Error(`test or build files in the tarball:\n${sources.join('\n')}`);
    return `${files.filter((path) => !path.startsWith('dist/')).join(', ')} and ${files.filter((path) => path.startsWith('dist/')).length} files in dist/`;
  });

  // 2. publint and attw on the tarball itself.
  check('publint', () => {
    const output = run(process.execPath, [publintBin, 'run', tarball, '--level', 'suggestion', '--strict'], {
      cwd: work,
    });
    if (/suggestion|warning|error/i.test(output.replace(/^Running publint.*$/m, '').replace(/All good!/, ''))) {
      throw new Error(output);
    }
    return output.split('\n').at(-1);
  });
  check('@arethetypeswrong/cli', () => {
    const output = run(
      process.execPath,
      [attwBin, tarball, '--format', 'ascii', '--no-emoji', '--no-color', '--no-definitely-typed'],
      { cwd: work },
    );
    return output.split('\n').find((line) => /No problems found/.test(line)) ?? 'no problems';
  });

  // 3. A consumer project with the tarball installed.
  const consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2)}\n`,
  );
  const npmInstall = (specs) =>
    run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--no-package-lock', '--prefer-offline', '--loglevel', 'error', ...specs],
      { cwd: consumer },
    );

  for (const [index, major] of majors.entries()) {
    console.log(`installing the tarball with ioredis ${major}...`);
    npmInstall([
      ...(index === 0 ? [tarball, `@types/node@${pkg.devDependencies['@types/node']}`] : []),
      `ioredis@^${major}`,
    ]);
    const installed = JSON.parse(
      readFileSync(join(consumer, 'node_modules', 'ioredis', 'package.json'), 'utf8'),
    ).version;
    const label = `ioredis ${installed}`;

    check(`ESM import (${label})`, () => {
      const script = `import * as m from 'ioredis-entraid';
const missing = ${JSON.stringify(EXPECTED_EXPORTS)}.filter((name) => !(name in m));
if (missing.length) { console.error('missing: ' + missing.join(', ')); process.exit(1); }
if (m.default !== undefined) { console.error('unexpected default export'); process.exit(1); }
const { Redis } = await import('ioredis');
const provider = m.createCredentialsProvider({ credential: { getToken: async () => null } });
const redis = m.createEntraRedis({ lazyConnect: true, credentialsProvider: provider });
if (!(redis instanceof Redis)) { console.error('createEntraRedis did not return the consumer\\'s ioredis Redis'); process.exit(1); }
redis.disconnect(); provider.dispose();`;
      run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer });
    });

    check(`CommonJS require (${label})`, () => {
      const script = `const m = require('ioredis-entraid');
const missing = ${JSON.stringify(EXPECTED_EXPORTS)}.filter((name) => !(name in m));
if (missing.length) { console.error('missing: ' + missing.join(', ')); process.exit(1); }
const { Redis } = require('ioredis');
const provider = m.createCredentialsProvider({ credential: { getToken: async () => null } });
const redis = m.createEntraRedis({ lazyConnect: true, credentialsProvider: provider });
if (!(redis instanceof Redis)) { console.error('createEntraRedis did not return the consumer\\'s ioredis Redis'); process.exit(1); }
redis.disconnect(); provider.dispose();`;
      run(process.execPath, ['-e', script], { cwd: consumer });
    });

    if (pkg.exports?.['./testing']) {
      check(`ioredis-entraid/testing from ES modules and CommonJS (${label})`, () => {
        const names = JSON.stringify(TESTING_EXPORTS);
        run(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const m = await import('ioredis-entraid/testing');
const missing = ${names}.filter((name) => !(name in m)); if (missing.length) { console.error('missing: ' + missing.join(', ')); process.exit(1); }`,
          ],
          { cwd: consumer },
        );
        run(
          process.execPath,
          [
            '-e',
            `const m = require('ioredis-entraid/testing');
const missing = ${names}.filter((name) => !(name in m)); if (missing.length) { console.error('missing: ' + missing.join(', ')); process.exit(1); }`,
          ],
          { cwd: consumer },
        );
        const main = run(
          process.execPath,
          [
            '-e',
            `require('ioredis-entraid'); console.log(Object.keys(require.cache).filter((f) => /testing|emulator/.test(f)).length)`,
          ],
          { cwd: consumer },
        );
        if (main !== '0') throw new Error('the main entry loads the testing helpers');
      });
    }

    check(`a provider made by require() is accepted by the ESM build and vice versa (${label})`, () => {
      const script = `import { createRequire } from 'node:module';
const cjs = createRequire(process.cwd() + '/x.js')('ioredis-entraid');
const esm = await import('ioredis-entraid');
const credential = { getToken: async () => null };
for (const [make, use, label] of [[cjs, esm, 'CommonJS provider, ESM client'], [esm, cjs, 'ESM provider, CommonJS client']]) {
  const provider = make.createCredentialsProvider({ credential });
  try { use.createEntraRedis({ lazyConnect: true, credentialsProvider: provider }).disconnect(); }
  catch (error) { console.error(label + ': ' + error.message); process.exitCode = 1; }
  provider.dispose();
}`;
      run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer });
    });

    // TypeScript consumers: one ESM file and (for node16/nodenext) one CommonJS file each.
    const consumerSource = `import { createEntraCluster, createEntraRedis, createManagedIdentityCredentialsProvider, EntraCredentialsProvider,
  TokenUnavailableError, type EntraRedisOptions, type TokenInfo } from 'ioredis-entraid';
import { Cluster, Redis } from 'ioredis';
const provider: EntraCredentialsProvider = createManagedIdentityCredentialsProvider({ clientId: '00000000-0000-0000-0000-000000000000' });
provider.on('tokenRefreshed', (token: TokenInfo) => { const expires: number = token.expiresOn; void expires; });
const options: EntraRedisOptions = { host: 'example.redis.azure.net', port: 10000, tls: {}, credentialsProvider: provider, lazyConnect: true };
const redis: Redis = createEntraRedis(options);
const copy: Redis = redis.duplicate();
const cluster: Cluster = createEntraCluster([{ host: 'example.redis.azure.net', port: 10000 }], { credentialsProvider: provider, lazyConnect: true });
const error: Error = new TokenUnavailableError('x');
export { copy, cluster, error };
`;
    for (const resolution of ['node16', 'nodenext', 'bundler']) {
      check(`TypeScript, moduleResolution ${resolution} (${label})`, () => {
        const dir = join(consumer, `ts-${resolution}`);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
        const module = resolution === 'bundler' ? 'esnext' : resolution;
        writeFileSync(
          join(dir, 'tsconfig.json'),
          JSON.stringify(
            {
              compilerOptions: {
                module,
                moduleResolution: resolution,
                target: 'es2022',
                strict: true,
                noEmit: true,
                skipLibCheck: false,
                types: ['node'],
                typeRoots: [join(consumer, 'node_modules', '@types')],
              },
              include: ['*.ts', '*.mts', '*.cts'],
            },
            null,
            2,
          ),
        );
        const source = pkg.exports?.['./testing']
          ? `${consumerSource}import { AmrEmulator, EntraEmulator, startRedisServer } from 'ioredis-entraid/testing';\nexport const testing = [AmrEmulator, EntraEmulator, startRedisServer];\n`
          : consumerSource;
        writeFileSync(join(dir, 'esm.mts'), source);
        if (resolution !== 'bundler') writeFileSync(join(dir, 'cjs.cts'), source);
        const output = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], {
          cwd: dir,
          encoding: 'utf8',
        });
        // Errors in our declarations or in the consumer's files fail the check; errors that other packages' own
        // declarations have under these settings (skipLibCheck is off here) are only counted.
        const errors = [];
        for (const line of `${output.stdout}${output.stderr}`.split('\n')) {
          if (/^\S.*\(\d+,\d+\): error TS\d+/.test(line)) errors.push([line]);
          else if (line.trim() && errors.length > 0) errors.at(-1).push(line);
        }
        const ours = errors.filter(([first]) => /ioredis-entraid|^(esm|cjs)\.[mc]ts/.test(first));
        if (ours.length > 0 || (output.status !== 0 && errors.length === 0)) {
          throw new Error(
            (ours.length > 0 ? ours.flat() : [`${output.stdout}${output.stderr}`]).slice(0, 40).join('\n'),
          );
        }
        const others = [
          ...new Set(errors.map(([first]) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(first)?.[1] ?? first)),
        ];
        const files = resolution === 'bundler' ? 'esm.mts' : 'esm.mts and cjs.cts';
        if (others.length > 0) return `${files}; errors in other packages' declarations ignored: ${others.join(', ')}`;
        return files;
      });
    }

    check(`bin (${label})`, () => {
      const binName = typeof pkg.bin === 'string' ? pkg.name : Object.keys(pkg.bin ?? {})[0];
      if (!binName) throw new Error('package.json has no "bin"');
      const binPath = join(consumer, 'node_modules', '.bin', binName);
      const version = run(binPath, ['--version'], { cwd: consumer });
      if (version !== pkg.version)
        throw new Error(`--version printed ${JSON.stringify(version)}, expected ${pkg.version}`);
      const help = run(binPath, ['--help'], { cwd: consumer });
      if (!help.startsWith('Usage: ioredis-entraid')) throw new Error(`--help printed:\n${help}`);
      const usage = spawnSync(binPath, [], {
        cwd: consumer,
        encoding: 'utf8',
        env: { ...process.env, REDIS_ENDPOINT: '' },
      });
      if (usage.status !== 2)
        throw new Error(`without an endpoint it exited ${usage.status}, expected 2\n${usage.stderr}`);
      return `${binName} ${version}`;
    });
  }

  // 4. An application that depends on the newest @azure/identity itself: npm keeps one copy of it and of what it
  // brings (no upper cap in the library's ranges), so the library's credentials run on the application's release.
  check(
    "one copy each of @azure/identity, @azure/msal-node, @azure/core-auth, @azure/core-rest-pipeline beside the application's newest @azure/identity",
    () => {
      npmInstall(['@azure/identity@latest']);
      const found = ['@azure/identity', '@azure/msal-node', '@azure/core-auth', '@azure/core-rest-pipeline'].map(
        (name) => {
          const nodes = JSON.parse(run('npm', ['query', `#${name}`], { cwd: consumer }));
          return { name, versions: nodes.map((node) => node.version) };
        },
      );
      const duplicated = found.filter((entry) => entry.versions.length !== 1);
      if (duplicated.length > 0)
        throw new Error(duplicated.map((entry) => `${entry.name}: ${entry.versions.join(', ') || 'none'}`).join('\n'));
      return found.map((entry) => `${entry.name}@${entry.versions[0]}`).join(', ');
    },
  );
} finally {
  if (flag('--keep')) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
