/**
 * The claims of README.md and docs/ most likely to drift from the code: option defaults, the fan-out's batch size, the
 * re-AUTH margin and the other timing bounds the guides state, an error message, the spec files they cite, and the
 * README's figures against the generated measurement pages. Each is read from the docs and compared with the value
 * the code exports (or, for a module-private constant of a module that loads ioredis, its source line).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { TokenRequestTimeoutError } from '../../lib/errors.js';
import { FAN_OUT_BATCH_SIZE } from '../../lib/identity/token-fan-out.js';
import { DEFAULT_TOKEN_REQUEST_TIMEOUT, resolveTokenManagerOptions } from '../../lib/manager/options.js';
import { defaultIsRetryable } from '../../lib/manager/retryable.js';
import { MAX_VALIDITY_MARGIN_MS, VALIDITY_MARGIN_FRACTION } from '../../lib/manager/schedule.js';
import { DEFAULT_REDIS_SCOPE } from '../../lib/token/redis-audience.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Written by the bench commands: checked for file names only; the README's figures are checked against them. */
const GENERATED = ['docs/benchmarks.md', 'docs/leaks.md', 'docs/soak.md', 'docs/handover-window.md'];

const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const markdownUnder = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(dir, name))
    .sort();
const ALL_DOCS = ['README.md', ...markdownUnder('docs')];
const WRITTEN_DOCS = ALL_DOCS.filter((path) => !GENERATED.includes(path));
/** The hand-written docs as one text, line breaks folded into spaces so that a phrase may wrap. */
const prose = WRITTEN_DOCS.map((path) => read(path).replace(/\s+/g, ' ')).join('\n');

/** A `const NAME = <number>;` of a module that cannot be imported here (it loads ioredis). */
function constantInSource(path: string, name: string): number {
  const match = new RegExp(`const ${name} = ([\\d_.]+);`).exec(read(path));
  assert.ok(match?.[1], `${path} declares ${name}`);
  return Number(match[1].replace(/_/g, ''));
}

/** Every match of `pattern` in the hand-written docs; fails when there is none, so a reworded claim is noticed. */
function claims(pattern: RegExp, what: string): RegExpExecArray[] {
  const found = [...prose.matchAll(new RegExp(pattern, 'g'))];
  assert.ok(found.length > 0, `the docs no longer state ${what} in the form ${pattern}: update this test`);
  return found;
}

/** What each documented option defaults to, by its name in the docs' tables. */
const resolved = resolveTokenManagerOptions(undefined, defaultIsRetryable);
const DEFAULTS: Record<string, number | string> = {
  scopes: DEFAULT_REDIS_SCOPE,
  expirationRefreshRatio: resolved.expirationRefreshRatio,
  lowerRefreshBounds: resolved.lowerRefreshBounds,
  tokenRequestTimeout: resolved.tokenRequestTimeout,
  refreshJitter: resolved.refreshJitter,
  'retryOptions.maxAttempts': resolved.retryOptions.maxAttempts,
  'retryOptions.initialDelay': resolved.retryOptions.initialDelay,
  'retryOptions.maxDelay': resolved.retryOptions.maxDelay,
  'retryOptions.backoffMultiplier': resolved.retryOptions.backoffMultiplier,
  'retryOptions.jitter': resolved.retryOptions.jitter,
  'retryOptions.isRetryable': defaultIsRetryable.name,
  reauthJitter: Number(/options\.reauthJitter \?\? ([\d_]+)/.exec(read('lib/binding/client-binding.ts'))?.[1]),
};
const TOKEN_MANAGER_OPTIONS = Object.keys(DEFAULTS).filter((name) => !['scopes', 'reauthJitter'].includes(name));

/** Rows `| \`option\` | \`default\` ... |` of the tables in `path`: option name (without `tokenManagerOptions.`) and default. */
function documentedDefaults(path: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const [, name, value] of read(path).matchAll(/^\| `([\w.]+)` \| `([^`]+)`[^|]*\|/gm)) {
    rows.set((name ?? '').replace(/^tokenManagerOptions\./, ''), value ?? '');
  }
  return rows;
}

function assertDefaults(path: string, rows: Map<string, string>): void {
  for (const [name, value] of rows) {
    assert.ok(name in DEFAULTS, `${path} documents a default for "${name}", which this test does not know`);
    const expected = DEFAULTS[name];
    const actual = typeof expected === 'number' ? Number(value.replace(/_/g, '')) : value;
    assert.equal(actual, expected, `${path}: default of ${name}`);
  }
}

describe('documented defaults', () => {
  it("README's option tables give every token manager option with the resolved default", () => {
    const rows = documentedDefaults('README.md');
    assertDefaults('README.md', rows);
    for (const name of [...TOKEN_MANAGER_OPTIONS, 'scopes', 'reauthJitter']) {
      if (name === 'retryOptions.isRetryable') continue; // described in words there
      assert.ok(rows.has(name), `README.md's option tables give ${name}`);
    }
  });

  it("docs/tuning.md's tables give every token manager option with the resolved default", () => {
    const rows = documentedDefaults('docs/tuning.md');
    assertDefaults('docs/tuning.md', rows);
    for (const name of [...TOKEN_MANAGER_OPTIONS, 'reauthJitter']) {
      assert.ok(rows.has(name), `docs/tuning.md's tables give ${name}`);
    }
  });

  it("docs/tuning.md's first example spells out the defaults", () => {
    const example = /```ts\n([\s\S]*?)```/.exec(read('docs/tuning.md'))?.[1] ?? '';
    const values = [...example.matchAll(/^\s*(\w+): ([\d_.]+),/gm)];
    assert.ok(values.length >= 9, 'the example sets the numeric options');
    for (const [, name = '', value = ''] of values) {
      const key = name in DEFAULTS ? name : `retryOptions.${name}`;
      assert.equal(Number(value.replace(/_/g, '')), DEFAULTS[key], `docs/tuning.md's example: ${name}`);
    }
  });

  it('the default tokenRequestTimeout, wherever a guide states it in seconds', () => {
    for (const [claim, seconds] of claims(/`tokenRequestTimeout`,? \(?(?:default )?(\d+) s\b/, 'the default timeout')) {
      assert.equal(Number(seconds) * 1000, DEFAULT_TOKEN_REQUEST_TIMEOUT, claim);
    }
    const message = new TokenRequestTimeoutError(DEFAULT_TOKEN_REQUEST_TIMEOUT).message;
    assert.ok(read('docs/troubleshooting.md').includes(message), `docs/troubleshooting.md quotes "${message}"`);
  });
});

describe('documented constants and bounds', () => {
  it('the fan-out hands a new token to FAN_OUT_BATCH_SIZE connections per turn', () => {
    const sizes = claims(/(\d+) per turn of the event loop|batches of (\d+) per event-loop turn/, 'the batch size');
    for (const [claim, a, b] of sizes) assert.equal(Number(a ?? b), FAN_OUT_BATCH_SIZE, claim);
    for (const [claim, turns] of claims(/1,000 connections take (\d+) turns/, 'the turns for 1,000')) {
      assert.equal(Number(turns), Math.ceil(1000 / FAN_OUT_BATCH_SIZE), claim);
    }
  });

  it('the margin of a token and the re-AUTH deadline: min(5 s, 20 % of its life)', () => {
    for (const [claim, seconds, percent] of claims(/min\((\d+) s, (\d+) ?%/, 'the re-AUTH margin')) {
      assert.equal(Number(seconds) * 1000, MAX_VALIDITY_MARGIN_MS, claim);
      assert.equal(Number(percent) / 100, VALIDITY_MARGIN_FRACTION, claim);
    }
  });

  it('an AUTH not answered OK is retried after 50 ms, doubling up to 1 s', () => {
    const binding = 'lib/binding/client-binding.ts';
    for (const [claim, first, max] of claims(/retried after (\d+) ms, doubling up to (\d+) s/, 'the AUTH retry')) {
      assert.equal(Number(first), constantInSource(binding, 'REAUTH_RETRY_INITIAL_MS'), claim);
      assert.equal(Number(max) * 1000, constantInSource(binding, 'REAUTH_RETRY_MAX_MS'), claim);
    }
  });

  it("a RESP2 subscriber's handover phases take at most 5 s, the reconnect and the join 15 s", () => {
    const [[claim, step, join] = []] = claims(
      /reconnect takes at most (\d+) s .{0,60}the reconnect and the join at most (\d+) s each/,
      'the handover bounds',
    );
    assert.equal(
      Number(step) * 1000,
      constantInSource('lib/binding/pubsub-handover.ts', 'HANDOVER_STEP_MAX_MS'),
      claim,
    );
    assert.equal(Number(join) * 1000, constantInSource('lib/binding/client-binding.ts', 'HANDOVER_JOIN_MAX_MS'), claim);
  });
});

/** Decimal figures and figures with thousands separators in `text`. */
function figuresIn(text: string): string[] {
  return [...text.matchAll(/\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+/g)].map(([figure]) => figure);
}

/** The figures of `text` that `source` does not contain. */
function figuresMissing(text: string, source: string): string[] {
  const figures = figuresIn(text);
  const given = (figure: string) => new RegExp(`(?<![\\d.,])${figure.replace(/\./g, '\\.')}(?![\\d,])`).test(source);
  return figures.filter((figure) => !given(figure));
}

describe('cited files and figures', () => {
  it('every *.test.ts a doc names exists', () => {
    const specFiles = readdirSync(join(ROOT, 'spec'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.test.ts'),
    );
    const missing: string[] = [];
    for (const doc of ALL_DOCS) {
      for (const [name] of read(doc).matchAll(/[\w./-]*\.test\.ts/g)) {
        const exists = !name.includes('/')
          ? specFiles.some((file) => basename(file) === name)
          : existsSync(join(ROOT, name.startsWith('.') ? join(dirname(doc), name) : name));
        if (!exists) missing.push(`${doc}: ${name}`);
      }
    }
    assert.deepEqual(missing, [], 'spec files named in the docs that do not exist');
  });

  it("the README's benchmark figures are those of the generated pages", () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('## Benchmarks'), readme.indexOf('## Development'));
    const table = section.split('\n').filter((line) => line.startsWith('|'));
    // Each paragraph against the page it cites: the soak's and the leaks' pages, else docs/benchmarks.md.
    const paragraphs = section
      .split('\n')
      .filter((line) => !line.startsWith('|'))
      .join('\n')
      .split(/\n\s*\n/);
    const ownPage = (paragraph: string) =>
      /docs\/(soak|leaks)\.md/.test(paragraph)
        ? read('docs/soak.md') + read('docs/leaks.md')
        : read('docs/benchmarks.md');
    assert.ok(figuresIn(section).length > 0, 'the README gives figures');
    const absent = [
      ...figuresMissing(table.join('\n'), read('docs/benchmarks.md')),
      ...paragraphs.flatMap((paragraph) => figuresMissing(paragraph, ownPage(paragraph))),
    ];
    assert.deepEqual(absent, [], "figures of the README's Benchmarks section that the generated page does not give");
  });
});
