/** Command-line parsing of the `ioredis-entraid` diagnostic tool. No I/O here. */
import { parseArgs } from 'node:util';
import { DEFAULT_REDIS_SCOPE } from '../identity/credentials-provider.js';

/** The credentials the tool can use. */
export const CREDENTIAL_KINDS = ['default', 'managed-identity', 'workload', 'cli', 'secret', 'certificate'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

export type CliCommand = { name: 'check' } | { name: 'ping' } | { name: 'exec'; args: string[] };

/** Port of Azure Managed Redis. Azure Cache for Redis listens on 6380 (TLS). */
export const DEFAULT_PORT = 10_000;
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface CliOptions {
  command: CliCommand;
  host: string;
  port: number;
  tls: boolean;
  /** PEM file of a CA to trust for the server's certificate. */
  ca: string | undefined;
  servername: string | undefined;
  credential: CredentialKind;
  clientId: string | undefined;
  objectId: string | undefined;
  resourceId: string | undefined;
  tenantId: string | undefined;
  certificate: string | undefined;
  authorityHost: string | undefined;
  instanceDiscovery: boolean;
  scope: string;
  username: string | undefined;
  timeoutMs: number;
  json: boolean;
  showToken: boolean;
}

export type ParseResult =
  { kind: 'run'; options: CliOptions } | { kind: 'help' } | { kind: 'version' } | { kind: 'error'; message: string };

export const USAGE = `Usage: ioredis-entraid [check | ping | exec <command...>] [options]

Gets a Microsoft Entra ID token, connects to Azure Managed Redis or Azure Cache for Redis, authenticates, and
reports every step: which credential and identity (oid) were used, the token's audience and expiry, and whether
AUTH succeeded, with the server's exact answer. The token itself is never printed unless --show-token is given.

Commands:
  check                  get a token, connect, send AUTH, report (the default)
  ping                   check, then PING
  exec <command...>      check, then run one command and print its reply (e.g. exec GET session:42)

Endpoint:
  --host HOST            default: the host of REDIS_ENDPOINT (host:port), else REDIS_HOST
  --port PORT            default: the port of REDIS_ENDPOINT, else REDIS_PORT, else ${DEFAULT_PORT}
  --no-tls               connect without TLS (Azure requires TLS; for local emulators only)
  --ca FILE              trust this CA certificate (PEM) for the server's certificate
  --servername NAME      TLS server name (SNI and certificate check); default: the host

Credential:
  --credential KIND      default | managed-identity | workload | cli | secret | certificate (default: default,
                         i.e. DefaultAzureCredential: environment, workload identity, managed identity, developer
                         sign-ins, whichever works first)
  --client-id ID         client id: of a user-assigned managed identity, an app registration (secret,
                         certificate) or a workload identity; default: AZURE_CLIENT_ID where the credential reads it
  --object-id ID         object id of a user-assigned managed identity
  --resource-id ID       ARM resource id of a user-assigned managed identity
  --tenant-id ID         tenant id; default: AZURE_TENANT_ID
  --certificate FILE     PEM file holding the certificate and its private key (certificate); default:
                         AZURE_CLIENT_CERTIFICATE_PATH; its password is read from AZURE_CLIENT_CERTIFICATE_PASSWORD
  --authority-host URL   Entra ID authority (sovereign clouds); default: AZURE_AUTHORITY_HOST, else the public cloud
  --no-instance-discovery
                         do not validate the authority with the public cloud (private or test authorities)
  --scope SCOPE          token scope; default ${DEFAULT_REDIS_SCOPE}
  --username NAME        Redis username for AUTH; default: the token's oid claim, which is what Azure expects
  The client secret (--credential secret) is read from AZURE_CLIENT_SECRET, never from the command line.

Other:
  --timeout MS           time limit of the token request and of the connection, each; default ${DEFAULT_TIMEOUT_MS}
  --json                 print one JSON object on stdout instead of the report
  --show-token           also print the access token (a secret: a warning goes to stderr)
  -h, --help             this text
  --version              the version

Exit status: 0 all steps succeeded; 1 AUTH or the command failed; 2 usage error; 3 no token could be had;
4 the connection failed.
Set AZURE_LOG_LEVEL=info to see what the Azure Identity library tries (it never logs tokens).
`;

/** Splits `host:port`, `[v6]:port` or a bare host. */
export function parseEndpoint(value: string): { host: string; port: number | undefined } | undefined {
  const trimmed = value
    .trim()
    .replace(/^rediss?:\/\//, '')
    .replace(/\/.*$/, '');
  if (trimmed.length === 0) return undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed)
    return { host: bracketed[1] ?? '', port: bracketed[2] === undefined ? undefined : Number(bracketed[2]) };
  const colons = trimmed.split(':').length - 1;
  if (colons === 1) {
    const [host, port] = trimmed.split(':') as [string, string];
    if (!/^\d+$/.test(port) || host.length === 0) return undefined;
    return { host, port: Number(port) };
  }
  return { host: trimmed, port: undefined };
}

function parsePort(value: string | undefined, source: string): number | string {
  if (value === undefined) return DEFAULT_PORT;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65_535)
    return `${source}: expected a port number (1-65535), got ${JSON.stringify(value)}`;
  return port;
}

/** Parses argv (without node and the script) and the environment. Never throws. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): ParseResult {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return { kind: 'error', message: (error as Error).message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  const [name = 'check', ...rest] = positionals;
  let command: CliCommand;
  if (name === 'check' || name === 'ping') {
    if (rest.length > 0)
      return {
        kind: 'error',
        message: `"${name}" takes no arguments, got ${rest.map((a) => JSON.stringify(a)).join(' ')}`,
      };
    command = { name };
  } else if (name === 'exec') {
    if (rest.length === 0) return { kind: 'error', message: '"exec" needs a command, e.g. exec GET mykey' };
    command = { name: 'exec', args: rest };
  } else {
    return { kind: 'error', message: `unknown command ${JSON.stringify(name)}: expected check, ping or exec` };
  }

  const fromEndpoint = env.REDIS_ENDPOINT ? parseEndpoint(env.REDIS_ENDPOINT) : undefined;
  if (env.REDIS_ENDPOINT && !fromEndpoint)
    return { kind: 'error', message: `REDIS_ENDPOINT: expected host:port, got ${JSON.stringify(env.REDIS_ENDPOINT)}` };
  const host = values.host ?? fromEndpoint?.host ?? env.REDIS_HOST;
  if (!host)
    return { kind: 'error', message: 'no endpoint: give --host (and --port), or set REDIS_ENDPOINT=host:port' };
  const portSource =
    values.port !== undefined ? '--port' : fromEndpoint?.port !== undefined ? 'REDIS_ENDPOINT' : 'REDIS_PORT';
  const port = parsePort(
    values.port ?? (fromEndpoint?.port === undefined ? env.REDIS_PORT : String(fromEndpoint.port)),
    portSource,
  );
  if (typeof port === 'string') return { kind: 'error', message: port };

  const credential = values.credential ?? 'default';
  if (!(CREDENTIAL_KINDS as readonly string[]).includes(credential)) {
    return {
      kind: 'error',
      message: `--credential: expected one of ${CREDENTIAL_KINDS.join(', ')}, got ${JSON.stringify(credential)}`,
    };
  }
  const ids = (['client-id', 'object-id', 'resource-id'] as const).filter((key) => values[key] !== undefined);
  if (credential === 'managed-identity' && ids.length > 1) {
    return {
      kind: 'error',
      message: `--credential managed-identity: give one of --client-id, --object-id and --resource-id, got ${ids.map((k) => `--${k}`).join(' and ')}`,
    };
  }
  if (credential !== 'managed-identity' && (values['object-id'] !== undefined || values['resource-id'] !== undefined)) {
    return {
      kind: 'error',
      message:
        '--object-id and --resource-id select a user-assigned managed identity: use them with --credential managed-identity',
    };
  }
  if (values.certificate !== undefined && credential !== 'certificate') {
    return { kind: 'error', message: '--certificate applies to --credential certificate only' };
  }
  if (values['no-tls'] && (values.ca !== undefined || values.servername !== undefined)) {
    return { kind: 'error', message: '--ca and --servername apply to TLS connections, not with --no-tls' };
  }

  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout);
    if (!/^\d+$/.test(values.timeout) || timeoutMs <= 0)
      return { kind: 'error', message: `--timeout: expected a number of ms, got ${JSON.stringify(values.timeout)}` };
  }
  const scope = values.scope ?? DEFAULT_REDIS_SCOPE;
  if (scope.length === 0)
    return { kind: 'error', message: '--scope: expected a scope such as https://redis.azure.com/.default' };

  return {
    kind: 'run',
    options: {
      command,
      host,
      port,
      tls: !values['no-tls'],
      ca: values.ca,
      servername: values.servername,
      credential: credential as CredentialKind,
      clientId: values['client-id'],
      objectId: values['object-id'],
      resourceId: values['resource-id'],
      tenantId: values['tenant-id'],
      certificate: values.certificate,
      authorityHost: values['authority-host'],
      instanceDiscovery: !values['no-instance-discovery'],
      scope,
      username: values.username,
      timeoutMs,
      json: values.json === true,
      showToken: values['show-token'] === true,
    },
  };
}

const STRING_OPTIONS = new Set([
  '--host',
  '--port',
  '--ca',
  '--servername',
  '--credential',
  '--client-id',
  '--object-id',
  '--resource-id',
  '--tenant-id',
  '--certificate',
  '--authority-host',
  '--scope',
  '--username',
  '--timeout',
]);

/** Index of the first word that is neither an option nor an option's value, or -1. */
function firstPositionalIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (STRING_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    return i;
  }
  return -1;
}

function firstPositional(argv: readonly string[]): string | undefined {
  const index = firstPositionalIndex(argv);
  return index === -1 ? undefined : argv[index];
}

function parse(argv: readonly string[]) {
  // Everything after the command name of `exec` belongs to the Redis command, even words that start with "--".
  const execAt = firstPositional(argv) === 'exec' ? argv.indexOf('exec', firstPositionalIndex(argv)) : -1;
  const ownArgs = execAt === -1 ? [...argv] : argv.slice(0, execAt + 1);
  const commandArgs = execAt === -1 ? [] : argv.slice(execAt + 1);
  const result = parseArgs({
    args: ownArgs,
    allowPositionals: true,
    strict: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'no-tls': { type: 'boolean' },
      ca: { type: 'string' },
      servername: { type: 'string' },
      credential: { type: 'string' },
      'client-id': { type: 'string' },
      'object-id': { type: 'string' },
      'resource-id': { type: 'string' },
      'tenant-id': { type: 'string' },
      certificate: { type: 'string' },
      'authority-host': { type: 'string' },
      'no-instance-discovery': { type: 'boolean' },
      scope: { type: 'string' },
      username: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      'show-token': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  return { values: result.values, positionals: [...result.positionals, ...commandArgs] };
}
