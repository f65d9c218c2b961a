/**
 * Every ```ts block of README.md and docs/ type-checks against the current public API (`ioredis-entraid` and
 * `ioredis-entraid/testing` resolve to lib/). A block may use the names its surrounding prose assumes (`host`, a
 * `credentialsProvider`, the test emulators, a logger: CONTEXT below); a block that is not a program on its own (an
 * options fragment such as `retryOptions: { ... }`, a method of a class) does not parse and is skipped.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SNIPPETS = join(ROOT, '.doc-snippets'); // virtual: nothing is written there

/** The names the docs' blocks use without defining them, typed as the prose describes them. */
const CONTEXT = `
declare const host: string;
declare const ip: string;
declare const log: { info(...a: unknown[]): void; warn(...a: unknown[]): void; debug(...a: unknown[]): void };
declare const credentialsProvider: import('ioredis-entraid').EntraCredentialsProvider;
declare const createEntraRedis: typeof import('ioredis-entraid').createEntraRedis;
declare const createEntraCluster: typeof import('ioredis-entraid').createEntraCluster;
declare const createManagedIdentityCredentialsProvider: typeof import('ioredis-entraid').createManagedIdentityCredentialsProvider;
declare const createConfidentialCredentialsProvider: typeof import('ioredis-entraid').createConfidentialCredentialsProvider;
declare const redis: import('ioredis').Redis;
declare const cluster: import('ioredis').Cluster;
declare const entra: import('ioredis-entraid/testing').EntraEmulator;
declare let amr: import('ioredis-entraid/testing').AmrEmulator;
declare const options: import('ioredis-entraid/testing').AmrEmulatorOptions;
declare const Queue: typeof import('bullmq').Queue;
declare const Worker: typeof import('bullmq').Worker;
declare const worker: import('bullmq').Worker;
declare const events: import('bullmq').QueueEvents;
declare const queue: import('bullmq').Queue;
declare const connection: import('ioredis').Redis;
declare const processor: (job: import('bullmq').Job) => Promise<void>;
declare function sendEmail(data: unknown): Promise<void>;
declare const app: { use(handler: unknown): void };
declare const httpServer: import('node:http').Server;
type Redis = import('ioredis').Redis;
type RedisOptions = import('ioredis').RedisOptions;
declare const Injectable: () => ClassDecorator;
declare const InjectRedis: () => ParameterDecorator;
declare const Module: (metadata: object) => ClassDecorator;
declare const EntraRedisModule: unknown, EmailsService: unknown, EmailProcessor: unknown;
declare const BULL_CONNECTION: unique symbol;
`;

/** Modules a block may import that this repository does not install (the application's own). */
const APPLICATION_MODULES = ['@azure/functions', './redis.js'];

function docs(): string[] {
  const underDocs = readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' });
  return ['README.md', ...underDocs.filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
}

/** Each ```ts block as a module of its own; its virtual file name gives the doc and the line the block starts at. */
function snippets(): Map<string, string> {
  const found = new Map<string, string>();
  for (const doc of docs()) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const match of text.matchAll(/^```ts\n([\s\S]*?)^```/gm)) {
      const firstLine = text.slice(0, match.index).split('\n').length + 1;
      found.set(join(SNIPPETS, doc, String(firstLine), 'block.ts'), `${match[1]}\nexport {};\n`);
    }
  }
  return found;
}

/** `docs/x.md:12: message` for a diagnostic in a block. */
function located(diagnostic: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
  if (!diagnostic.file) return message;
  const [, doc = '', firstLine = '0'] =
    /^(.*)\/(\d+)\/block\.ts$/.exec(diagnostic.file.fileName.slice(SNIPPETS.length + 1)) ?? [];
  const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
  return `${doc}:${Number(firstLine) + line}: ${message}`;
}

it('the TypeScript examples of README.md and docs/ type-check against the current API', () => {
  const files = snippets();
  const parses = (source: string) =>
    (ts.createSourceFile('x.ts', source, ts.ScriptTarget.ES2022) as unknown as { parseDiagnostics: unknown[] })
      .parseDiagnostics.length === 0;
  const programs = new Map([...files].filter(([, source]) => parses(source)));
  assert.ok(programs.size >= 35, `most blocks are programs (${programs.size} of ${files.size})`);
  const context = join(SNIPPETS, 'context.d.ts');

  const config = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    },
  );
  assert.ok(config);
  const options: ts.CompilerOptions = {
    ...config.options,
    noEmit: true,
    baseUrl: ROOT,
    paths: { 'ioredis-entraid': ['lib/index.ts'], 'ioredis-entraid/testing': ['lib/testing/index.ts'] },
  };
  const host = ts.createCompilerHost(options);
  const virtual = new Map([...programs, [context, CONTEXT]]);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => {
    const source = virtual.get(name);
    return source === undefined ? getSourceFile(name, version, ...rest) : ts.createSourceFile(name, source, version);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => virtual.has(name) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => virtual.get(name) ?? readFile(name);

  const program = ts.createProgram([context, ...programs.keys()], options, host);
  const errors = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName.startsWith(SNIPPETS))
    .filter(
      (d) =>
        !APPLICATION_MODULES.some((name) => ts.flattenDiagnosticMessageText(d.messageText, '').includes(`'${name}'`)),
    )
    .map(located);
  assert.deepEqual(errors, [], 'examples in the docs that do not type-check');
});
