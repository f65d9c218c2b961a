/** What the figures were measured on: versions, machine, limits. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { RedisServerHandle } from '../../lib/testing/redis-server.js';

export interface Environment {
  node: string;
  ioredis: string;
  nodeRedis: string;
  redisEntraid: string;
  azureIdentity: string;
  /** msal-node used by @azure/identity (ours), and the one @redis/entraid bundles. */
  msalNode: string;
  msalNodeOfRedisEntraid: string;
  redisServer: string;
  cpu: string;
  cores: number;
  /** 1-minute load average when the run started. */
  loadAverage: number;
  /** Soft limit of open files. */
  openFilesLimit: string;
  /** Node.js ranges the peer's packages declare. */
  peerEngines: string[];
  date: string;
}

const NODE_MODULES = fileURLToPath(new URL('../../node_modules/', import.meta.url));

interface PackageJson {
  version: string;
  engines?: { node?: string };
}

function packageJson(folder: string): PackageJson | undefined {
  try {
    return JSON.parse(readFileSync(`${NODE_MODULES}${folder}/package.json`, 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
}

/** Version of an installed package, by its folder under node_modules (`@redis/entraid/node_modules/x` works too). */
function versionOf(folder: string): string {
  return packageJson(folder)?.version ?? 'not installed';
}

/** The folder of the copy of `name` that `dependent` loads: its own nested one, else the top-level one. */
function copySeenBy(dependent: string, name: string): string {
  const nested = `${dependent}/node_modules/${name}`;
  return packageJson(nested) ? nested : name;
}

/** The Node.js range a package declares, as `name: range`. */
function engineOf(folder: string): string {
  return `${folder.split('node_modules/').at(-1)} ${packageJson(folder)?.engines?.node ?? '(none declared)'}`;
}

function openFilesLimit(): string {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    return line?.split(/\s{2,}/)[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function describeEnvironment(redis: RedisServerHandle): Promise<Environment> {
  const info = String(await redis.command('INFO', 'server'));
  return {
    node: process.version,
    ioredis: versionOf('ioredis'),
    nodeRedis: versionOf('redis'),
    redisEntraid: versionOf('@redis/entraid'),
    azureIdentity: versionOf('@azure/identity'),
    msalNode: versionOf(copySeenBy('@azure/identity', '@azure/msal-node')),
    msalNodeOfRedisEntraid: versionOf(copySeenBy('@redis/entraid', '@azure/msal-node')),
    redisServer: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadAverage: os.loadavg()[0] ?? Number.NaN,
    openFilesLimit: openFilesLimit(),
    peerEngines: [
      'redis',
      '@redis/client',
      '@redis/entraid',
      '@azure/identity',
      copySeenBy('@redis/entraid', '@azure/msal-node'),
    ].map(engineOf),
    date: new Date().toISOString(),
  };
}
