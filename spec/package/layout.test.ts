/**
 * The layout of the test and benchmark code: spec/ (tests) and bench/ (benchmarks) never import each other; what both
 * drive (the test world, the soak and leak scenarios) lives in harness/, which imports neither. Every import of every
 * .ts file under these folders is read with TypeScript's own scanner (static imports, re-exports, dynamic import()).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Top-level folders whose files may not import from the folders listed against them. */
const FORBIDDEN: Record<string, readonly string[]> = {
  spec: ['bench'],
  bench: ['spec'],
  harness: ['spec', 'bench'],
};

function typeScriptFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    if (statSync(path).isDirectory()) return typeScriptFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The top-level folder (relative to the repository) a relative import of `file` resolves into. */
function topFolderOf(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return relative(ROOT, resolve(dirname(file), specifier)).split(sep)[0];
}

/** Every forbidden import under ROOT, as "file: import 'specifier' reaches folder/". */
function forbiddenImports(): string[] {
  const found: string[] = [];
  for (const [folder, forbidden] of Object.entries(FORBIDDEN)) {
    for (const file of typeScriptFiles(join(ROOT, folder))) {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      for (const { fileName: specifier } of importedFiles) {
        const target = topFolderOf(file, specifier);
        if (target !== undefined && forbidden.includes(target)) {
          found.push(`${relative(ROOT, file)}: import '${specifier}' reaches ${target}/`);
        }
      }
    }
  }
  return found.sort();
}

it('spec/ and bench/ do not import each other, and harness/ imports neither', () => {
  assert.deepEqual(
    forbiddenImports(),
    [],
    'imports across spec/, bench/ and harness/ (shared code belongs in harness/)',
  );
});

it('the check sees the files it is meant to read', () => {
  // A check that found no file would pass for any layout.
  assert.ok(typeScriptFiles(join(ROOT, 'spec')).some((file) => file.endsWith(`${sep}layout.test.ts`)));
  assert.ok(typeScriptFiles(join(ROOT, 'bench')).some((file) => file.endsWith(`${sep}run.ts`)));
});
