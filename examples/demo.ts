/**
 * A live demonstration without Azure: `npm run demo` (or `npm run demo -- --seconds 60`).
 *
 * Starts a local redis-server, the Entra ID emulator (an App Service managed-identity endpoint minting short-lived
 * tokens) and the AMR emulator (a TLS proxy that verifies every token, answers WRONGPASS for bad ones and closes a
 * connection the moment its token expires). Then three clients made with createEntraRedis, authenticated through a
 * real ManagedIdentityCredential, work through many token lifetimes: one runs commands, one takes jobs with a blocking
 * BLMOVE, one is subscribed to a channel. The terminal shows tokens rotating and connections re-authenticating; the
 * demo exits 0 when no command failed, no job or message was lost and the server never had to close a connection for
 * an expired token, else 1.
 *
 * Options: --seconds N (default 30), --token-lifetime S (default 5).
 * Needs redis-server (Debian/Ubuntu: apt-get install redis-server; or set REDIS_SERVER_BIN) and openssl.
 */
import { parseArgs } from 'node:util';
import { AmrEmulator } from '../lib/testing/amr-emulator.js';
import { selfSignedCertificate } from '../lib/testing/certs.js';
import { EntraEmulator } from '../lib/testing/entra-emulator.js';
import { startRedisServer, type RedisServerHandle } from '../lib/testing/redis-server.js';
// In your application: from 'ioredis-entraid'
import {
  createEntraRedis,
  createManagedIdentityCredentialsProvider,
  type EntraCredentialsProvider,
} from '../lib/index.js';
import type { Redis } from 'ioredis';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    'token-lifetime': { type: 'string', default: '5' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('Usage: npm run demo [-- --seconds N] [--token-lifetime S]');
  process.exit(0);
}
const seconds = Number(values.seconds);
const tokenLifetime = Number(values['token-lifetime']);
if (!(seconds > 0) || !(tokenLifetime >= 3)) {
  console.error('--seconds must be a positive number and --token-lifetime at least 3');
  process.exit(2);
}

const tty = (process.stdout.isTTY as boolean | undefined) === true; // undefined when not a terminal, despite its type
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
const shortId = (id: string) => `${id.slice(0, 8)}…`;

const stats = {
  commandsOk: 0,
  commandsFailed: 0,
  tokens: 0,
  reauthByAuth: 0,
  reauthByReconnect: 0,
  reauthFailures: 0,
  refreshFailures: 0,
  clientErrors: 0,
  jobsPushed: 0,
  jobsReceived: 0,
  messagesPublished: 0,
  messagesReceived: 0,
};
const problems: string[] = [];

let progressShown = false;
/** Prints a line above the progress line (TTY) or as is (pipes, CI logs). */
function log(line: string): void {
  if (tty && progressShown) process.stdout.write('\r\x1b[2K');
  process.stdout.write(`${line}\n`);
  progressShown = false;
}

function progress(amr: AmrEmulator): string {
  return (
    `${elapsed()}  commands ${stats.commandsOk} ok, ${stats.commandsFailed} failed | tokens ${stats.tokens}` +
    ` | re-auth ${stats.reauthByAuth} AUTH, ${stats.reauthByReconnect} reconnect | expiry disconnects ${amr.counters.expiryDisconnects}` +
    ` | jobs ${stats.jobsReceived}/${stats.jobsPushed} | messages ${stats.messagesReceived}/${stats.messagesPublished}`
  );
}

const cleanups: (() => Promise<void> | void)[] = [];
async function cleanup(): Promise<void> {
  for (const step of cleanups.reverse()) {
    try {
      await step();
    } catch {
      // best effort: the process ends anyway
    }
  }
}

let stopRequested = false;
process.once('SIGINT', () => {
  stopRequested = true;
});

let redisServer: RedisServerHandle;
try {
  redisServer = await startRedisServer();
} catch (error) {
  const message = (error as Error).message;
  console.error(`Could not start redis-server: ${message}`);
  if (/ENOENT/.test(message))
    console.error('Install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_SERVER_BIN to its path.');
  process.exit(1);
}
cleanups.push(() => redisServer.stop());

const entra = await EntraEmulator.start({ tokenLifetimeSeconds: tokenLifetime });
cleanups.push(() => entra.stop());
const identity = entra.addManagedIdentity({ kind: 'user' });
// What App Service sets for a managed identity: IDENTITY_ENDPOINT and IDENTITY_HEADER, here pointing at the emulator.
cleanups.push(entra.applyManagedIdentityEnv());

const certificate = selfSignedCertificate();
const amr = await AmrEmulator.start({
  backend: { host: redisServer.host, port: redisServer.port },
  publicKey: entra.publicKey,
  admin: redisServer.admin,
  tls: certificate,
});
cleanups.push(() => amr.stop());

const credentialsProvider: EntraCredentialsProvider = createManagedIdentityCredentialsProvider({
  managedIdentityType: 'user-assigned',
  clientId: identity.clientId,
  tokenManagerOptions: { tokenRequestTimeout: 2_000, retryOptions: { initialDelay: 100, maxDelay: 1_000 } },
});
cleanups.push(() => credentialsProvider.dispose());

console.log('ioredis-entraid demo: Entra ID token rotation against a local Azure Managed Redis emulator');
console.log(
  `  redis-server       ${redisServer.host}:${redisServer.port} (the default user is off, as on a cache with access keys disabled)`,
);
console.log(
  `  Entra ID emulator  ${entra.managedIdentityEndpoint} (App Service managed identity); tokens live ${tokenLifetime} s`,
);
console.log(
  `  AMR emulator       ${amr.host}:${amr.port} (TLS): verifies every token, closes a connection when its token expires`,
);
console.log(
  `  identity           user-assigned managed identity, client id ${shortId(identity.clientId)}, oid ${shortId(identity.oid)}`,
);
console.log('  clients            demo-app (commands), demo-worker (BLMOVE), demo-subscriber (SUBSCRIBE)');
console.log(`Running for ${seconds} s (--seconds N to change)${tty ? ', Ctrl-C to stop early' : ''}.\n`);

credentialsProvider.on('tokenRefreshed', (token) => {
  stats.tokens++;
  log(
    `${elapsed()}  token #${stats.tokens} for oid ${shortId(token.oid)}, valid ${((token.expiresOn - Date.now()) / 1000).toFixed(1)} s`,
  );
});
credentialsProvider.on('reauthenticated', ({ connection, method }) => {
  if (method === 'auth') {
    stats.reauthByAuth++;
  } else {
    stats.reauthByReconnect++;
    log(
      `${elapsed()}  ${connection} reconnected with the new token (AUTH cannot run there now: RESP2 subscribe mode, or a blocking command)`,
    );
  }
});
credentialsProvider.on('reauthenticationFailed', ({ connection, error, willRetry }) => {
  stats.reauthFailures++;
  log(
    `${elapsed()}  re-authentication of ${connection} failed${willRetry ? ', retrying' : ''}: ${(error as Error).message}`,
  );
});
credentialsProvider.on('refreshFailed', ({ error, consecutiveFailures }) => {
  stats.refreshFailures++;
  problems.push(`token refresh failed: ${(error as Error).message}`);
  log(`${elapsed()}  token refresh failed (${consecutiveFailures} in a row): ${(error as Error).message}`);
});
amr.on('expired', (info: { name?: string }) => {
  problems.push(`the server closed ${info.name ?? 'a connection'} because its token expired`);
  log(`${elapsed()}  the server closed ${info.name ?? 'a connection'}: its token expired`);
});

const tls = { ca: certificate.cert, servername: 'localhost' };
const app = createEntraRedis({ host: amr.host, port: amr.port, tls, credentialsProvider, connectionName: 'demo-app' });
const worker = app.duplicate({ connectionName: 'demo-worker' });
const subscriber = app.duplicate({ connectionName: 'demo-subscriber' });
const clients: Redis[] = [app, worker, subscriber];
cleanups.push(() => {
  for (const client of clients) client.disconnect();
});
for (const client of clients) {
  client.on('error', (error: Error) => {
    stats.clientErrors++;
    problems.push(`${client.options.connectionName}: ${error.message}`);
    log(`${elapsed()}  ${client.options.connectionName} error: ${error.message}`);
  });
}

await subscriber.subscribe('demo:events');
subscriber.on('message', () => {
  stats.messagesReceived++;
});

const deadline = started + seconds * 1_000;
const running = () => !stopRequested && Date.now() < deadline;

async function count<T>(command: Promise<T>): Promise<T | undefined> {
  try {
    const result = await command;
    stats.commandsOk++;
    return result;
  } catch (error) {
    stats.commandsFailed++;
    problems.push(`command failed: ${(error as Error).message}`);
    log(`${elapsed()}  command failed: ${(error as Error).message}`);
    return undefined;
  }
}

/** Set once the application has pushed its last job (its LPUSH answered, or failed). */
let appDone = false as boolean; // set by the application loop, read by the worker's
const jobsPushed = new Set<string>();
const jobsReceived = new Set<string>();

// The worker takes jobs with the reliable-queue pattern: BLMOVE hands a job over and records it in demo:taken in one
// step, and the worker removes it from there once done. The library reconnects the worker to move it to a new token
// when BLMOVE still blocks at the deadline (AUTH cannot run behind it); Redis may take a job in the instant the old
// connection closes, and its reply is then lost with the connection, as on any client whose blocked connection
// closes. With BLPOP that job would be gone; here it stays on record in demo:taken.
const workerLoop = (async () => {
  for (;;) {
    // A BLMOVE sent after the last push that times out (null) finds the queue empty: every job has been taken.
    const afterLastPush = appDone;
    const job = await count(worker.blmove('demo:jobs', 'demo:taken', 'LEFT', 'RIGHT', 1));
    if (job) {
      stats.jobsReceived++;
      jobsReceived.add(job);
      await count(worker.lrem('demo:taken', 1, job));
    } else if (afterLastPush) {
      break;
    }
  }
})();

const appLoop = (async () => {
  try {
    for (let i = 0; running(); i++) {
      await count(app.set(`demo:key:${i % 100}`, String(i)));
      await count(app.get(`demo:key:${i % 100}`));
      if (i % 25 === 0) {
        if ((await count(app.lpush('demo:jobs', String(i)))) !== undefined) {
          stats.jobsPushed++;
          jobsPushed.add(String(i));
        }
        if ((await count(app.publish('demo:events', String(i)))) !== undefined) stats.messagesPublished++;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    appDone = true;
  }
})();

const ticker = setInterval(() => {
  if (tty) {
    // One terminal line, rewritten in place: cut to the terminal's width so that it never wraps.
    // Undefined when the terminal's size could not be read, despite its type.
    const width = Math.max(20, ((process.stdout.columns as number | undefined) ?? 120) - 1);
    process.stdout.write(`\r\x1b[2K${progress(amr).slice(0, width)}`);
    progressShown = true;
  }
}, 250);
const reporter = tty ? undefined : setInterval(() => log(progress(amr)), 5_000);

await appLoop;
await workerLoop;
// Every PUBLISH has been answered: its message is on its way to the subscriber (up to 15 s on a busy machine).
await new Promise<void>((resolve) => {
  const done = () => {
    if (stats.messagesReceived < stats.messagesPublished) return;
    clearTimeout(bound);
    subscriber.off('message', done);
    resolve();
  };
  const bound = setTimeout(() => {
    subscriber.off('message', done);
    resolve();
  }, 15_000);
  subscriber.on('message', done);
  done();
});
clearInterval(ticker);
if (reporter) clearInterval(reporter);
log(progress(amr));

const expiryDisconnects = amr.counters.expiryDisconnects;
const lifetimes = ((Date.now() - started) / 1000 / tokenLifetime).toFixed(1);
// A job the worker did not get is either in demo:taken (taken by Redis, its reply lost as the worker's connection
// closed), still queued (the worker stopped early), or lost.
const taken = new Set((await count(app.lrange('demo:taken', 0, -1))) ?? []);
const queued = new Set((await count(app.lrange('demo:jobs', 0, -1))) ?? []);
const jobsTaken = [...jobsPushed].filter((job) => !jobsReceived.has(job) && taken.has(job)).length;
const jobsQueued = [...jobsPushed].filter((job) => !jobsReceived.has(job) && queued.has(job)).length;
const jobsLost = [...jobsPushed].filter((job) => !jobsReceived.has(job) && !taken.has(job) && !queued.has(job)).length;
if (jobsQueued > 0) problems.push(`${jobsQueued} jobs were still queued`);
if (jobsLost > 0) problems.push(`${jobsLost} jobs were lost`);
if (stats.messagesReceived < stats.messagesPublished)
  problems.push(`${stats.messagesPublished - stats.messagesReceived} messages were not received`);
const expectRotation = (Date.now() - started) / 1000 > tokenLifetime * 1.5;
if (expectRotation && stats.tokens < 2) problems.push('no token rotation was seen');
if (expectRotation && stats.reauthByAuth + stats.reauthByReconnect === 0)
  problems.push('no connection was re-authenticated');

console.log('');
console.log(`Summary after ${((Date.now() - started) / 1000).toFixed(1)} s (${lifetimes} token lifetimes):`);
console.log(`  commands              ${stats.commandsOk} ok, ${stats.commandsFailed} failed`);
console.log(`  tokens received       ${stats.tokens} (refresh failures: ${stats.refreshFailures})`);
console.log(
  `  re-authentications    ${stats.reauthByAuth} by AUTH in place, ${stats.reauthByReconnect} by reconnect (failed attempts: ${stats.reauthFailures})`,
);
console.log(`  expiry disconnects    ${expiryDisconnects}`);
console.log(
  `  jobs through BLMOVE   ${stats.jobsReceived} of ${stats.jobsPushed}` +
    (jobsTaken > 0
      ? `; ${jobsTaken} taken by Redis as the worker's connection closed, reply lost, kept in demo:taken (BLPOP would have lost ${jobsTaken === 1 ? 'it' : 'them'})`
      : ''),
);
console.log(`  pub/sub messages      ${stats.messagesReceived} of ${stats.messagesPublished}`);
const failed = problems.length > 0;
if (failed) {
  console.log(`\nFAILED: ${[...new Set(problems)].slice(0, 10).join('; ')}`);
} else {
  console.log('\nOK: every connection moved to each new token before the old one expired, and no command failed.');
}

await cleanup();
process.exitCode = failed ? 1 : 0;
// Nothing should keep the process alive now; should something, do not hang.
setTimeout(() => process.exit(process.exitCode), 2_000).unref();
