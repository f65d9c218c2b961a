// The examples run as users run them (node --import tsx examples/x.ts), each in its own process, against the Entra ID
// emulator's managed-identity endpoint and a TLS AMR emulator in front of a real redis-server. Examples that need a
// real tenant (service principal, Azure CLI, workload identity) or a real cluster are type-checked only.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AmrEmulator } from '../../lib/testing/amr-emulator.js';
import { selfSignedCertificate } from '../../lib/testing/certs.js';
import { EntraEmulator, type EmulatedManagedIdentity } from '../../lib/testing/entra-emulator.js';
import { startRedisServer, type RedisServerHandle } from '../../lib/testing/redis-server.js';
import { stopStarted } from '../support/stop-started.js';

let redis: RedisServerHandle;
let entra: EntraEmulator;
let amr: AmrEmulator;
let system: EmulatedManagedIdentity;
let user: EmulatedManagedIdentity;
let dir: string;
let caFile: string;

before(async () => {
  redis = await startRedisServer();
  entra = await EntraEmulator.start({ tokenLifetimeSeconds: 600 });
  const certificate = selfSignedCertificate();
  amr = await AmrEmulator.start({
    backend: { host: redis.host, port: redis.port },
    publicKey: entra.publicKey,
    admin: redis.admin,
    tls: certificate,
  });
  system = entra.addManagedIdentity({ kind: 'system' });
  user = entra.addManagedIdentity({ kind: 'user' });
  dir = mkdtempSync(join(tmpdir(), 'entraid-examples-'));
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, certificate.cert);
});

after(async () => {
  await stopStarted(amr, entra, redis);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs an example with the variables an App Service sets, REDIS_HOST/PORT pointing at the emulator. */
function runExample(file: string, extra: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(AZURE_|IDENTITY_|MSI_|IMDS_|REDIS_|NODE_OPTIONS$)/.test(name)) env[name] = value;
  }
  Object.assign(
    env,
    entra.managedIdentityEnv(),
    {
      // The emulator's certificate names localhost; the examples verify it like any other (trusted through this CA).
      REDIS_HOST: 'localhost',
      REDIS_PORT: String(amr.port),
      NODE_EXTRA_CA_CERTS: caFile,
    },
    extra,
  );
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', file], { env, timeout: 90_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, output: stdout + stderr });
    });
  });
}

describe('examples', () => {
  it('system-assigned managed identity', async () => {
    const { code, output } = await runExample('examples/system-assigned-managed-identity.ts');
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`token for oid ${system.oid}`));
    assert.match(output, /^hello from a system-assigned managed identity$/m);
  });

  it('user-assigned managed identity, with a duplicate in subscribe mode', async () => {
    const { code, output } = await runExample('examples/user-assigned-managed-identity.ts', {
      AZURE_CLIENT_ID: user.clientId,
    });
    assert.equal(code, 0, output);
    assert.match(output, /^example:events: hello from a user-assigned managed identity$/m);
  });

  it('DefaultAzureCredential (here it finds the managed identity)', async () => {
    const { code, output } = await runExample('examples/default-azure-credential.ts');
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`signed in as oid ${system.oid}`));
    assert.match(output, /^PONG$/m);
  });

  it('BullMQ: a queue, queue events and a worker on one Entra ID connection and its duplicates', async () => {
    const { code, output } = await runExample('examples/bullmq.ts');
    assert.equal(code, 0, output);
    assert.match(output, /^sending welcome to ada@example\.com$/m);
    assert.match(output, /^result: \{ delivered: true \}$/m);
  });
});

describe('recipes', () => {
  it('socket.io Redis adapter: a room broadcast delivered, fetchSockets() answers', async () => {
    const { code, output } = await runExample('examples/recipes/socket-io.ts');
    assert.equal(code, 0, output);
    assert.match(output, /^received: tokens rotate, sockets stay$/m);
    assert.match(output, /^sockets across all servers: 1$/m);
  });

  it('express-session with connect-redis 8: the second request reads the stored session', async () => {
    const { code, output } = await runExample('examples/recipes/express-session.ts');
    assert.equal(code, 0, output);
    assert.match(output, /^visits: 1\nvisits: 2$/m);
  });

  it('rate-limiter-flexible: three attempts allowed, the fourth rejected', async () => {
    const { code, output } = await runExample('examples/recipes/rate-limiter-flexible.ts');
    assert.equal(code, 0, output);
    assert.match(
      output,
      /^attempt 1: allowed, 2 left\nattempt 2: allowed, 1 left\nattempt 3: allowed, 0 left\nattempt 4: rejected, retry in \d+ s$/m,
    );
  });

  it('NestJS: @InjectRedis() and a @nestjs/bullmq queue and processor on Entra ID clients', async () => {
    const { code, output } = await runExample('examples/recipes/nestjs.ts');
    assert.equal(code, 0, output);
    assert.match(output, /^hello ada \(\d+\)$/m);
    assert.match(output, /^email to ada$/m);
    assert.doesNotMatch(output, /error|NOAUTH|WRONGPASS/i);
  });

  it("OpenTelemetry: the application's commands traced under its span, the library's AUTH not traced, no token", async () => {
    const { code, output } = await runExample('examples/recipes/opentelemetry.ts');
    assert.equal(code, 0, output);
    assert.match(output, /^profile: \{"name":"Ada"\}$/m);
    assert.match(output, /^span set <- GET \/profile: set profile:ada \[3 other arguments\]$/m);
    assert.match(output, /^span get <- GET \/profile: get profile:ada$/m);
    assert.doesNotMatch(output, /^span (auth|hello) /m);
    assert.doesNotMatch(output, /eyJ/, 'no JWT in the output');
  });
});

describe('npm run demo', () => {
  it('shows tokens rotating and connections re-authenticating, and exits 0 (without a terminal)', async () => {
    const output = await new Promise<{ code: number; text: string }>((resolve) => {
      const env: NodeJS.ProcessEnv = {};
      for (const [name, value] of Object.entries(process.env)) {
        if (!/^(AZURE_|IDENTITY_|MSI_|IMDS_|NODE_OPTIONS$)/.test(name)) env[name] = value;
      }
      execFile(
        process.execPath,
        ['--import', 'tsx', 'examples/demo.ts', '--seconds', '8', '--token-lifetime', '3'],
        { env, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, text: stdout + stderr }),
      );
    });
    assert.equal(output.code, 0, output.text);
    assert.match(output.text, /token #3 for oid/);
    assert.match(output.text, /^\s+commands\s+\d+ ok, 0 failed$/m);
    assert.match(output.text, /^\s+expiry disconnects\s+0$/m);
    assert.match(output.text, /^\s+re-authentications\s+[1-9]\d* by AUTH in place/m);
    assert.match(output.text, /^OK: every connection moved to each new token/m);
    // eslint-disable-next-line no-control-regex -- the escape character is what is looked for
    assert.doesNotMatch(output.text, /\x1b\[/, 'no terminal control sequences without a terminal');
  });
});
