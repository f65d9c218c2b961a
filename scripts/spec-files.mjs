// Which spec files exist and which ioredis majors each runs on. A spec file that drives ioredis (imports it, the
// client factories, or anything of harness/: the test world, the soak, the leak runs) says so on one of its first lines:
//
//   // ioredis majors: 5, 6
//
// and scripts/test.mjs runs it once per major listed. A file that drives ioredis without saying which majors is an
// error, so that a new file cannot silently run on one major only. Files that do not touch ioredis run once.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

export const KNOWN_MAJORS = ['5', '6'];
const TAG = /^\/\/ ioredis majors: ([0-9, ]+?)(?: \(.*\))?$/m;
const DRIVES_IOREDIS =
  /from '(ioredis|[./]+(lib\/)?(index|create-entra-redis|create-entra-cluster)\.js|[./]+harness\/[^']+)'/;
/** How many leading lines may hold the tag (a file's header comment). */
const HEADER_LINES = 12;

/** Every *.test.ts under `dir`, relative to the working directory, sorted. */
export function findSpecs(dir) {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return findSpecs(path);
      return name.endsWith('.test.ts') ? [relative('.', path)] : [];
    })
    .sort();
}

/**
 * The ioredis majors `file` declares, or `undefined` for a file that does not drive ioredis. Throws for a file that
 * drives ioredis without a tag, or names a major other than 5 and 6.
 */
export function ioredisMajorsOf(file) {
  const source = readFileSync(file, 'utf8');
  const header = source.split('\n').slice(0, HEADER_LINES).join('\n');
  const tag = TAG.exec(header);
  if (!tag) {
    if (DRIVES_IOREDIS.test(source)) {
      throw new Error(
        `${file} drives ioredis but does not say on which majors: add "// ioredis majors: 5, 6" (or the ones it needs) as one of its first ${HEADER_LINES} lines`,
      );
    }
    return undefined;
  }
  const majors = tag[1]
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  const unknown = majors.filter((m) => !KNOWN_MAJORS.includes(m));
  if (majors.length === 0 || unknown.length > 0) {
    throw new Error(`${file}: "ioredis majors: ${tag[1]}" must list some of ${KNOWN_MAJORS.join(', ')}`);
  }
  return majors;
}
