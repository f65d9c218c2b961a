// Lint configuration: typescript-eslint's strict type-checked rules on every TypeScript file, checked against the
// project's tsconfig.json; the plain JavaScript scripts get the recommended rules (they are not type-checked).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'docs/**', 'node_modules/**', 'coverage/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Options, not exemptions. Messages state durations and counts (`${ms} ms`), so numbers may be interpolated;
      // anything else must be turned into a string on purpose.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // One-line arrows such as `() => client.disconnect()` are the house style for callbacks whose value is unused.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // node:test's describe/it/test return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }],
      }],
    },
  },
  {
    files: ['**/*.mjs', 'bin/**'],
    extends: [js.configs.recommended],
    languageOptions: {
      // Node.js globals the scripts use (the `globals` package is not a dependency).
      globals: Object.fromEntries(['process', 'console', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
        'URL', 'Buffer', 'AbortController', 'AbortSignal', 'fetch', 'structuredClone'].map((name) => [name, 'readonly'])),
    },
  },
);
