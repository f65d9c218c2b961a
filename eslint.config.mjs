// Lint configuration. Every TypeScript file (the shipped code in lib/, and the specs, benchmarks, the harness they
// share and examples) gets typescript-eslint's strict type-checked rules; the plain JavaScript scripts get ESLint's
// recommended rules.
// Type-aware rules check against tsconfig.json.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Options, not exemptions, shared by every TypeScript file.
const shared = {
  // Messages state durations and counts (`${ms} ms`), so numbers may be interpolated; anything else must be turned
  // into a string on purpose.
  '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
  // A rejection passes on what was caught, or an abort signal's reason, unchanged (as only-throw-error allows).
  '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
  // A leading underscore names what a signature or a destructuring must mention but does not use.
  '@typescript-eslint/no-unused-vars': [
    'error',
    { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
  ],
  // node:test's describe/it/test return promises that the runner itself awaits.
  '@typescript-eslint/no-floating-promises': [
    'error',
    {
      allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }],
    },
  ],
  // One-line arrows such as `() => client.disconnect()` are the house style for callbacks whose value is unused.
  '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
};

export default tseslint.config(
  { ignores: ['dist/**', 'docs/**', 'node_modules/**', 'coverage/**', '.cache/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    files: ['lib/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.strictTypeChecked],
    rules: {
      ...shared,
      // createEntraRedis's overloads mirror ioredis's constructor (port, path, url), one documented signature each.
      '@typescript-eslint/unified-signatures': ['error', { ignoreDifferentlyNamedParameters: true }],
    },
  },
  {
    // ioredis's methods are taken off their objects here to be wrapped and later restored, and are always called
    // back with their own `this`.
    files: ['lib/binding/ioredis-internals.ts'],
    rules: { '@typescript-eslint/unbound-method': 'off' },
  },
  {
    files: ['spec/**/*.ts', 'bench/**/*.ts', 'harness/**/*.ts', 'examples/**/*.ts', 'scripts/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.strictTypeChecked],
    rules: {
      ...shared,
      // Stand-ins for asynchronous APIs (credentials, token sources, job processors, traced calls) are written `async`
      // on purpose: like the real ones they return a promise and turn a throw into a rejection.
      '@typescript-eslint/require-await': 'off',
      // A NestJS module is an empty class that its @Module decorator describes.
      '@typescript-eslint/no-extraneous-class': ['error', { allowWithDecorator: true }],
    },
  },
  {
    files: ['**/*.mjs', 'bin/ioredis-entraid'],
    extends: [js.configs.recommended],
    languageOptions: {
      // Node.js globals the scripts use (the `globals` package is not a dependency).
      globals: Object.fromEntries(
        [
          'process',
          'console',
          'setTimeout',
          'clearTimeout',
          'setInterval',
          'clearInterval',
          'URL',
          'Buffer',
          'AbortController',
          'AbortSignal',
          'fetch',
          'structuredClone',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
);
