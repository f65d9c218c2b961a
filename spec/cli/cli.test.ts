// The ioredis-entraid diagnostic tool, run as operators run it: the built bin in a child process, with real
// @azure/identity credentials against the Entra ID emulator and a real redis-server behind the AMR emulator.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AmrEmulator } from '../../lib/testing/amr-emulator.js';
import { selfSignedCertificate } from '../../lib/testing/certs.js';
import {
  EntraEmulator,
  type EmulatedManagedIdentity,
  type EmulatedServicePrincipal,
} from '../../lib/testing/entra-emulator.js';
import { freePort } from '../../lib/testing/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../lib/testing/redis-server.js';
import { must } from '../support/must.js';
import { stopStarted } from '../support/stop-started.js';

const BIN = join(process.cwd(), 'bin', 'ioredis-entraid');
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\./;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let redis: RedisServerHandle;
let entra: EntraEmulator;
let tlsAmr: AmrEmulator;
let plainAmr: AmrEmulator;
let system: EmulatedManagedIdentity;
let user: EmulatedManagedIdentity;
let principal: EmulatedServicePrincipal;
let dir: string;
let caFile: string;
let authorityCaFile: string;
let spCertFile: string;
const tenantId = randomUUID();
const spSecret = `secret-${randomUUID()}`;

/** Environment of a process on an App Service with this emulator as its identity endpoint, and nothing else. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(AZURE_|IDENTITY_|MSI_|IMDS_|REDIS_|NODE_OPTIONS$|NODE_EXTRA_CA_CERTS$)/.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...entra.managedIdentityEnv(), ...extra };
}

function cli(args: string[], env: NodeJS.ProcessEnv = baseEnv()): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const tlsArgs = () => [
  '--host',
  '127.0.0.1',
  '--port',
  String(tlsAmr.port),
  '--ca',
  caFile,
  '--servername',
  'localhost',
];
const plainArgs = () => ['--host', '127.0.0.1', '--port', String(plainAmr.port), '--no-tls'];

function assertNoToken(run: Run): void {
  assert.doesNotMatch(run.stdout, JWT_SHAPE, 'stdout must not hold a token');
  assert.doesNotMatch(run.stderr, JWT_SHAPE, 'stderr must not hold a token');
}

before(async () => {
  assert.ok(existsSync('dist/esm/cli/main.js'), 'the CLI runs from the build: run "npm run build" first');
  redis = await startRedisServer();
  entra = await EntraEmulator.start({ tokenLifetimeSeconds: 600 });
  const certificate = selfSignedCertificate();
  tlsAmr = await AmrEmulator.start({
    backend: { host: redis.host, port: redis.port },
    publicKey: entra.publicKey,
    admin: redis.admin,
    tls: certificate,
  });
  plainAmr = await AmrEmulator.start({
    backend: { host: redis.host, port: redis.port },
    publicKey: entra.publicKey,
    admin: redis.admin,
  });
  system = entra.addManagedIdentity({ kind: 'system' });
  user = entra.addManagedIdentity({ kind: 'user' });
  const spCertificate = selfSignedCertificate('ioredis-entraid-cli-sp');
  principal = entra.addServicePrincipal({
    tenantId,
    clientId: randomUUID(),
    clientSecret: spSecret,
    certificate: spCertificate.cert,
  });
  dir = mkdtempSync(join(tmpdir(), 'entraid-cli-'));
  caFile = join(dir, 'redis-ca.pem');
  writeFileSync(caFile, certificate.cert);
  authorityCaFile = join(dir, 'authority-ca.pem');
  writeFileSync(authorityCaFile, entra.tlsCertificate);
  spCertFile = join(dir, 'sp.pem');
  writeFileSync(spCertFile, `${spCertificate.cert}\n${spCertificate.key}`);
});

after(async () => {
  await stopStarted(tlsAmr, plainAmr, entra, redis);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What these tests read of the report `--json` prints. */
interface JsonReport {
  ok: boolean;
  command: string;
  credential: { kind: string; name: string; error: string[] };
  token: { oid: string; audience: string; audienceOk: boolean; expiresInSeconds: number; accessToken?: unknown };
  auth: { ok: boolean; username?: string; reply: string; ms: number };
  endpoint: { host: string; port: number; tls: boolean };
  hints: string[];
}

describe('ioredis-entraid check', () => {
  it('reports the managed identity, its oid, the audience and expiry, and AUTH OK over TLS', async () => {
    const run = await cli(['check', '--credential', 'managed-identity', '--client-id', user.clientId, ...tlsArgs()]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^endpoint\s+127\.0\.0\.1:\d+ \(TLS, server name localhost\)$/m);
    assert.match(
      run.stdout,
      new RegExp(
        `^credential\\s+ManagedIdentityCredential \\(user-assigned, client id ${user.clientId}; source: App Service`,
        'm',
      ),
    );
    assert.match(
      run.stdout,
      new RegExp(`^token\\s+oid ${user.oid}, tenant ${entra.tenantId}, app ${user.clientId}`, 'm'),
    );
    assert.match(run.stdout, /^\s+audience https:\/\/redis\.azure\.com \(ok\)$/m);
    assert.match(run.stdout, /^\s+expires \d{4}-\d\d-\d\dT[\d:.]+Z \(in (9|10) min/m);
    assert.match(run.stdout, /^connect\s+OK \(TLS, \d+ ms\)$/m);
    assert.match(run.stdout, new RegExp(`^AUTH\\s+OK as ${user.oid}: the server answered "OK"$`, 'm'));
    assert.match(run.stdout, /^result\s+OK$/m);
    assertNoToken(run);
  });

  it('is the default command, and tells which member of DefaultAzureCredential answered (--json)', async () => {
    const run = await cli(['--json', ...plainArgs()]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as JsonReport;
    assert.equal(report.ok, true);
    assert.equal(report.command, 'check');
    assert.equal(report.credential.kind, 'default');
    assert.equal(report.credential.name, 'DefaultAzureCredential > ManagedIdentityCredential');
    assert.equal(report.token.oid, system.oid);
    assert.equal(report.token.audience, 'https://redis.azure.com');
    assert.equal(report.token.audienceOk, true);
    assert.ok(report.token.expiresInSeconds > 500 && report.token.expiresInSeconds <= 600);
    assert.equal(report.token.accessToken, undefined);
    assert.deepEqual({ ...report.auth, ms: 0 }, { ok: true, username: system.oid, reply: 'OK', ms: 0 });
    assert.deepEqual(report.endpoint, { host: '127.0.0.1', port: plainAmr.port, tls: false });
    assertNoToken(run);
  });

  it('reads REDIS_ENDPOINT when no --host is given', async () => {
    const run = await cli(
      ['--no-tls', '--credential', 'managed-identity'],
      baseEnv({ REDIS_ENDPOINT: `127.0.0.1:${plainAmr.port}` }),
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`^endpoint\\s+127\\.0\\.0\\.1:${plainAmr.port} \\(no TLS\\)$`, 'm'));
    assert.match(run.stdout, /system-assigned; source: App Service/);
  });

  it("shows the server's exact answer when AUTH is refused, with a hint, and exits 1", async () => {
    // The client id is not the oid: the classic mistake, and Azure answers WRONGPASS.
    const run = await cli([
      '--credential',
      'managed-identity',
      '--client-id',
      user.clientId,
      '--username',
      user.clientId,
      ...plainArgs(),
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(
      run.stdout,
      new RegExp(
        `^AUTH\\s+FAILED as ${user.clientId}: the server answered "WRONGPASS invalid username-password pair or user is disabled\\."$`,
        'm',
      ),
    );
    assert.match(
      run.stdout,
      new RegExp(`^hint\\s+The username ${user.clientId} is not the token's oid \\(${user.oid}\\)`, 'm'),
    );
    assert.match(run.stdout, /^result\s+FAILED$/m);
    assertNoToken(run);
  });

  it('flags a token for another audience, which the server refuses', async () => {
    const run = await cli([
      '--credential',
      'managed-identity',
      '--scope',
      'https://storage.azure.com/.default',
      '--json',
      ...plainArgs(),
    ]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as JsonReport;
    assert.equal(report.token.audience, 'https://storage.azure.com');
    assert.equal(report.token.audienceOk, false);
    assert.match(report.auth.reply, /^WRONGPASS/);
    assert.ok(report.hints.some((hint: string) => hint.includes('https://redis.azure.com/.default')));
    assertNoToken(run);
  });

  it('reports why no token could be had, and exits 3', async () => {
    const run = await cli(['--credential', 'managed-identity', '--client-id', randomUUID(), ...plainArgs()]);
    assert.equal(run.code, 3, run.stdout + run.stderr);
    assert.match(run.stdout, /^credential\s+ManagedIdentityCredential \(user-assigned/m);
    assert.match(run.stdout, /FAILED to get a token for https:\/\/redis\.azure\.com\/\.default:/);
    assert.match(run.stdout, /Unable to load the proper Managed Identity/);
    assert.match(run.stdout, /^hint\s+Managed identity: check that an identity is assigned/m);
    assert.doesNotMatch(run.stdout, /^connect/m, 'no connection without a token');
  });

  it('lists every member of the default chain when none works', async () => {
    const env = baseEnv();
    delete env.IDENTITY_ENDPOINT;
    delete env.IDENTITY_HEADER;
    // IMDS is not reachable here, and no developer tool is signed in: every member fails.
    env.PATH = '/nonexistent';
    env.IMDS_ENDPOINT = `http://127.0.0.1:${await freePort()}`;
    env.IDENTITY_ENDPOINT = env.IMDS_ENDPOINT; // Azure Arc source, pointing at a closed port: fails fast
    const run = await cli(['--json', '--timeout', '20000', ...plainArgs()], env);
    assert.equal(run.code, 3, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as JsonReport;
    const text = report.credential.error.join('\n');
    assert.match(text, /EnvironmentCredential/);
    assert.match(text, /ManagedIdentityCredential/);
    assert.match(text, /AzureCliCredential|Azure CLI/);
  });

  it('tells a refused connection apart from a refused token, and exits 4', async () => {
    const port = await freePort();
    const run = await cli([
      '--credential',
      'managed-identity',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--no-tls',
    ]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    assert.match(run.stdout, /^connect\s+FAILED after \d+ ms: connect ECONNREFUSED 127\.0\.0\.1:\d+$/m);
    assert.match(run.stdout, /^hint\s+Nothing listens on 127\.0\.0\.1:\d+: Azure Managed Redis listens on 10000/m);
  });

  it('explains a certificate it cannot verify', async () => {
    const run = await cli(['--credential', 'managed-identity', '--host', '127.0.0.1', '--port', String(tlsAmr.port)]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    assert.match(run.stdout, /^connect\s+FAILED after \d+ ms: self[- ]signed certificate/m);
    assert.match(run.stdout, /^hint\s+TLS failed: .*--servername .*--ca <file>/m);
  });

  it('explains plain text sent to a TLS port', async () => {
    const run = await cli([
      '--credential',
      'managed-identity',
      '--host',
      '127.0.0.1',
      '--port',
      String(tlsAmr.port),
      '--no-tls',
      '--timeout',
      '3000',
    ]);
    assert.notEqual(run.code, 0, run.stdout + run.stderr);
    assertNoToken(run);
  });

  it('works with a service principal and a client secret read from the environment', async () => {
    const env = baseEnv({ AZURE_CLIENT_SECRET: spSecret, NODE_EXTRA_CA_CERTS: authorityCaFile });
    const run = await cli(
      [
        '--credential',
        'secret',
        '--client-id',
        principal.clientId,
        '--tenant-id',
        tenantId,
        '--authority-host',
        entra.authorityHost,
        '--no-instance-discovery',
        ...plainArgs(),
      ],
      env,
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(
      run.stdout,
      new RegExp(
        `^credential\\s+ClientSecretCredential \\(service principal, client id ${principal.clientId}, tenant ${tenantId}\\)$`,
        'm',
      ),
    );
    assert.match(run.stdout, new RegExp(`^AUTH\\s+OK as ${principal.oid}`, 'm'));
    assert.doesNotMatch(run.stdout + run.stderr, new RegExp(spSecret), 'the secret is never printed');
  });

  it("reports a wrong client secret with the service's error and a hint", async () => {
    const env = baseEnv({ AZURE_CLIENT_SECRET: 'not-the-secret', NODE_EXTRA_CA_CERTS: authorityCaFile });
    const run = await cli(
      [
        '--credential',
        'secret',
        '--client-id',
        principal.clientId,
        '--tenant-id',
        tenantId,
        '--authority-host',
        entra.authorityHost,
        '--no-instance-discovery',
        ...plainArgs(),
      ],
      env,
    );
    assert.equal(run.code, 3, run.stdout + run.stderr);
    assert.match(run.stdout, /AADSTS7000215/);
    assert.match(run.stdout, /^hint\s+invalid_client: the client secret is wrong or expired/m);
    assert.doesNotMatch(run.stdout + run.stderr, /not-the-secret/);
  });

  it('works with a service principal and a certificate file', async () => {
    const env = baseEnv({ NODE_EXTRA_CA_CERTS: authorityCaFile });
    const run = await cli(
      [
        '--credential',
        'certificate',
        '--client-id',
        principal.clientId,
        '--tenant-id',
        tenantId,
        '--certificate',
        spCertFile,
        '--authority-host',
        entra.authorityHost,
        '--no-instance-discovery',
        ...plainArgs(),
      ],
      env,
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^credential\s+ClientCertificateCredential /m);
    assert.match(run.stdout, new RegExp(`^AUTH\\s+OK as ${principal.oid}`, 'm'));
  });

  it('says how to fix a missing Azure CLI', async () => {
    const env = baseEnv({ PATH: '/nonexistent' });
    const run = await cli(['--credential', 'cli', ...plainArgs()], env);
    assert.equal(run.code, 3, run.stdout + run.stderr);
    assert.match(run.stdout, /^hint\s+Install the Azure CLI and run "az login"/m);
  });
});

describe('ioredis-entraid ping and exec', () => {
  it('ping answers PONG', async () => {
    const run = await cli(['ping', '--credential', 'managed-identity', ...tlsArgs()]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^PING\s+"PONG"$/m);
  });

  it('exec runs one command and prints its reply as redis-cli does', async () => {
    const key = `cli:${randomUUID()}`;
    const set = await cli(['--credential', 'managed-identity', ...plainArgs(), 'exec', 'SET', key, 'hello world']);
    assert.equal(set.code, 0, set.stdout + set.stderr);
    assert.match(set.stdout, /^SET\s+"OK"$/m);
    const get = await cli(['--credential', 'managed-identity', ...plainArgs(), 'exec', 'GET', key]);
    assert.equal(get.code, 0, get.stdout + get.stderr);
    assert.match(get.stdout, /^GET\s+"hello world"$/m);
    const list = await cli(['--credential', 'managed-identity', ...plainArgs(), 'exec', 'RPUSH', `${key}:l`, 'a', 'b']);
    assert.match(list.stdout, /^RPUSH\s+\(integer\) 2$/m);
    const range = await cli([
      '--credential',
      'managed-identity',
      ...plainArgs(),
      'exec',
      'LRANGE',
      `${key}:l`,
      '0',
      '-1',
    ]);
    assert.match(range.stdout, /^LRANGE\s+1\) "a"\n\s+2\) "b"$/m);
  });

  it('exec reports an error reply and exits 1', async () => {
    const run = await cli(['--credential', 'managed-identity', ...plainArgs(), 'exec', 'NOSUCHCOMMAND', 'x']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /^NOSUCHCOMMAND\s+\(error\) ERR unknown command 'NOSUCHCOMMAND'/m);
  });
});

describe('ioredis-entraid --show-token', () => {
  it('prints the token only when asked, and warns on stderr', async () => {
    const run = await cli(['--show-token', '--credential', 'managed-identity', ...plainArgs()]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const line = /^token\s+(eyJ\S+)$/m.exec(run.stdout);
    assert.ok(line, run.stdout);
    const payload = must(must(line[1], 'the printed token').split('.')[1], "the token's payload");
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { oid?: unknown };
    assert.equal(claims.oid, system.oid);
    assert.match(run.stderr, /^WARNING: the access token printed on stdout is a live credential/m);
  });
});

describe('ioredis-entraid usage', () => {
  it('prints help and the version', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: ioredis-entraid \[check \| ping \| exec <command\.\.\.>\] \[options\]/);
    const version = await cli(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });

  for (const [args, message] of [
    [[], /no endpoint/],
    [
      ['--host', 'h', '--credential', 'password'],
      /--credential: expected one of default, managed-identity, workload, cli, secret, certificate/,
    ],
    [['--host', 'h', 'exec'], /"exec" needs a command/],
    [['--host', 'h', 'frobnicate'], /unknown command "frobnicate"/],
    [['--host', 'h', '--port', '99999'], /--port: expected a port number/],
    [
      ['--host', 'h', '--credential', 'managed-identity', '--client-id', 'a', '--object-id', 'b'],
      /give one of --client-id, --object-id and --resource-id/,
    ],
    [['--host', 'h', '--credential', 'secret', '--client-id', 'a', '--tenant-id', 't'], /AZURE_CLIENT_SECRET/],
    [['--host', 'h', '--client-secret', 's'], /Unknown option '--client-secret'/],
  ] as [string[], RegExp][]) {
    it(`exits 2 on: ${args.join(' ') || '(nothing)'}`, async () => {
      const run = await cli(args);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, message);
    });
  }
});
