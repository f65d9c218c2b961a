/**
 * `ioredis-entraid`: a diagnostic tool for operators whose Entra ID setup fails. Gets a token with the chosen
 * credential, connects, sends AUTH by hand and reports every step, with hints for the usual mistakes.
 * Never prints a token unless asked to with `--show-token`.
 */
import type { Writable } from 'node:stream';
import { redactTokens } from '../token/redact-error.js';
import { EntraToken } from '../token/entra-token.js';
import { decodeJwtClaims, type EntraTokenClaims } from '../token/jwt-claims.js';
import { CredentialSetupError, chooseCredential, describeCredentialError, requestToken } from './credential.js';
import { USAGE, parseCli, type CliOptions } from './options.js';
import { REDIS_AUDIENCES } from '../token/redis-audience.js';
import { RedisCheck, errorMessage, formatReply, jsonReply, tlsOptions, type Step } from './redis-check.js';

/** Audiences Azure's Redis accepts: its resource URI and the application id of its first-party app. */
export { REDIS_AUDIENCES };

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_NO_TOKEN = 3;
export const EXIT_NO_CONNECTION = 4;

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  /** Printed by `--version`. */
  version?: string;
}

/** Everything the report says; `--json` prints it as is. Never holds the token unless `--show-token`. */
interface Report {
  ok: boolean;
  command: string;
  endpoint: { host: string; port: number; tls: boolean; servername?: string };
  credential?: { kind: string; name: string; detail: string; error?: string[] };
  token?: {
    oid?: string;
    tenantId?: string;
    appId?: string;
    identityType?: string;
    upn?: string;
    audience?: string | string[];
    audienceOk: boolean;
    scope: string;
    issuedAt?: string;
    expiresOn?: string;
    expiresInSeconds?: number;
    accessToken?: string;
  };
  connect?: { ok: boolean; ms: number; error?: string; code?: string };
  auth?: { ok: boolean; username: string; reply: string; ms: number };
  result?: { command: string[]; ok: boolean; reply: unknown; ms: number };
  hints: string[];
}

/** Runs the tool; resolves with the exit status. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseCli(argv, io.env);
  if (parsed.kind === 'help') {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (parsed.kind === 'version') {
    io.stdout.write(`${io.version ?? 'unknown'}\n`);
    return EXIT_OK;
  }
  if (parsed.kind === 'error') {
    io.stderr.write(`ioredis-entraid: ${parsed.message}\nRun "ioredis-entraid --help" for the options.\n`);
    return EXIT_USAGE;
  }
  try {
    return await new Check(parsed.options, io).run();
  } catch (error) {
    io.stderr.write(`ioredis-entraid: unexpected failure: ${errorMessage(error)}\n`);
    return EXIT_FAILED;
  }
}

class Check {
  readonly #options: CliOptions;
  readonly #io: CliIo;
  readonly #report: Report;

  constructor(options: CliOptions, io: CliIo) {
    this.#options = options;
    this.#io = io;
    this.#report = {
      ok: false,
      command: options.command.name,
      endpoint: {
        host: options.host,
        port: options.port,
        tls: options.tls,
        ...(options.tls ? { servername: options.servername ?? options.host } : {}),
      },
      hints: [],
    };
  }

  /** One line of the text report (not in --json mode). Token shapes are always removed. */
  #line(label: string, text: string): void {
    if (this.#options.json) return;
    const [first, ...more] = redactTokens(text).split('\n');
    this.#io.stdout.write(`${label.padEnd(11)} ${first}\n`);
    for (const line of more) this.#io.stdout.write(`${' '.repeat(12)}${line}\n`);
  }

  #hint(text: string): void {
    this.#report.hints.push(text);
  }

  #finish(code: number): number {
    this.#report.ok = code === EXIT_OK;
    if (this.#options.json) {
      this.#io.stdout.write(`${JSON.stringify(this.#report, null, 2)}\n`);
    } else {
      for (const hint of this.#report.hints) this.#line('hint', hint);
      this.#line('result', code === EXIT_OK ? 'OK' : 'FAILED');
    }
    return code;
  }

  async run(): Promise<number> {
    const o = this.#options;
    const { endpoint } = this.#report;
    this.#line(
      'endpoint',
      `${endpoint.host}:${endpoint.port} (${o.tls ? `TLS, server name ${endpoint.servername}` : 'no TLS'})`,
    );

    // 1. The credential and its token.
    let chosen;
    try {
      chosen = chooseCredential(o, this.#io.env);
    } catch (error) {
      if (error instanceof CredentialSetupError) {
        this.#io.stderr.write(`ioredis-entraid: --credential ${o.credential}: ${error.message}\n`);
        return EXIT_USAGE;
      }
      throw error;
    }
    this.#report.credential = { kind: o.credential, name: chosen.name, detail: chosen.detail };
    let outcome;
    try {
      outcome = await requestToken(chosen, o.scope, o.timeoutMs);
    } catch (error) {
      const lines = describeCredentialError(error);
      this.#report.credential.error = lines;
      this.#line(
        'credential',
        `${chosen.name} (${chosen.detail})\nFAILED to get a token for ${o.scope}:\n${lines.join('\n')}`,
      );
      this.#credentialHints(error);
      return this.#finish(EXIT_NO_TOKEN);
    }
    this.#report.credential.name = outcome.credentialName;
    this.#line('credential', `${outcome.credentialName} (${chosen.detail})`);

    const raw = outcome.accessToken.token;
    let claims: EntraTokenClaims;
    try {
      claims = decodeJwtClaims(raw);
    } catch (error) {
      this.#line('token', `FAILED: ${errorMessage(error)}`);
      this.#hint("Azure's Redis needs a JWT access token; check that the credential talks to Microsoft Entra ID.");
      return this.#finish(EXIT_NO_TOKEN);
    }
    const token = this.#describeClaims(claims, outcome.accessToken.expiresOnTimestamp);
    if (o.showToken) {
      token.accessToken = raw;
      if (!o.json) this.#io.stdout.write(`${'token'.padEnd(12)}${raw}\n`);
      this.#io.stderr.write(
        'WARNING: the access token printed on stdout is a live credential for this identity until it ' +
          `expires (${token.expiresOn ?? 'unknown'}). Do not paste it into tickets, chats or logs.\n`,
      );
    }
    let username = o.username;
    if (username === undefined) {
      try {
        username = EntraToken.fromAccessToken(outcome.accessToken).username;
      } catch (error) {
        this.#line('token', `UNUSABLE: ${errorMessage(error)}`);
        this.#hint(
          "Azure's Redis authenticates the token's oid claim; tokens of users, service principals and managed identities all have one.",
        );
        return this.#finish(EXIT_NO_TOKEN);
      }
    }

    // 2. The connection.
    let tls;
    try {
      tls = tlsOptions(o);
    } catch (error) {
      this.#io.stderr.write(`ioredis-entraid: --ca: cannot read ${o.ca}: ${(error as Error).message}\n`);
      return EXIT_USAGE;
    }
    const check = new RedisCheck(o, tls);
    try {
      const connected = await check.connect();
      this.#report.connect = connected.ok
        ? { ok: true, ms: connected.ms }
        : { ok: false, ms: connected.ms, error: connected.error, ...(connected.code ? { code: connected.code } : {}) };
      if (!connected.ok) {
        this.#line('connect', `FAILED after ${connected.ms} ms: ${connected.error}`);
        this.#connectHints(connected.error, connected.code);
        return this.#finish(EXIT_NO_CONNECTION);
      }
      this.#line('connect', `OK (${o.tls ? 'TLS' : 'TCP'}, ${connected.ms} ms)`);

      // 3. AUTH, by hand, so that the server's answer can be shown as it is.
      const auth = await check.auth(username, raw);
      const reply = auth.ok ? auth.value : auth.error;
      this.#report.auth = { ok: auth.ok && auth.value === 'OK', username, reply, ms: auth.ms };
      if (!this.#report.auth.ok) {
        this.#line('AUTH', `FAILED as ${username}: the server answered ${JSON.stringify(reply)}`);
        this.#authHints(reply, claims, username);
        return this.#finish(EXIT_FAILED);
      }
      this.#line('AUTH', `OK as ${username}: the server answered "OK"`);

      // 4. The command, if any.
      const command = o.command;
      if (command.name === 'check') return this.#finish(EXIT_OK);
      const args = command.name === 'ping' ? ['PING'] : command.args;
      const step: Step<unknown> = command.name === 'ping' ? await check.ping() : await check.exec(args);
      this.#report.result = {
        command: args,
        ok: step.ok,
        reply: step.ok ? jsonReply(step.value) : step.error,
        ms: step.ms,
      };
      const label = (args[0] ?? '').toUpperCase();
      if (!step.ok) {
        this.#line(label, `(error) ${step.error}`);
        if (/^NOPERM/.test(step.error)) {
          this.#hint(
            'NOPERM: the identity authenticated but its access policy does not allow this command or key; ' +
              'check the data access policy assigned to it on the cache.',
          );
        }
        if (/^MOVED /.test(step.error)) {
          this.#hint(
            'MOVED: this endpoint is a node of an OSS-policy cluster and the key lives on another node; ' +
              'use createEntraCluster in the application (see docs/cluster.md).',
          );
        }
        return this.#finish(EXIT_FAILED);
      }
      this.#line(label, formatReply(step.value, ' '.repeat(12)));
      return this.#finish(EXIT_OK);
    } finally {
      check.close();
    }
  }

  #describeClaims(claims: EntraTokenClaims, expiresOnTimestamp: number | undefined): NonNullable<Report['token']> {
    const o = this.#options;
    const str = (value: unknown) => (typeof value === 'string' && value.length > 0 ? value : undefined);
    const audiences = Array.isArray(claims.aud) ? claims.aud : claims.aud === undefined ? [] : [claims.aud];
    const scopeResource = o.scope.replace(/\/\.default$/, '').replace(/\/$/, '');
    const audienceOk = audiences.some((aud) => REDIS_AUDIENCES.includes(aud.replace(/\/$/, '')));
    const requested = !audienceOk && audiences.some((aud) => aud.replace(/\/$/, '') === scopeResource);
    const expSeconds = typeof claims.exp === 'number' ? claims.exp : undefined;
    const expiresMs = expSeconds !== undefined ? expSeconds * 1000 : expiresOnTimestamp;
    const issuedAt = typeof claims.iat === 'number' ? new Date(claims.iat * 1000).toISOString() : undefined;
    const token: NonNullable<Report['token']> = {
      oid: str(claims.oid),
      tenantId: str(claims.tid),
      appId: str(claims.appid) ?? str(claims.azp),
      identityType: str(claims.idtyp),
      upn: str(claims.upn) ?? str(claims.unique_name) ?? str(claims.preferred_username),
      audience: claims.aud,
      audienceOk,
      scope: o.scope,
      issuedAt,
      expiresOn: expiresMs !== undefined ? new Date(expiresMs).toISOString() : undefined,
      expiresInSeconds: expiresMs !== undefined ? Math.round((expiresMs - Date.now()) / 1000) : undefined,
    };
    this.#report.token = token;
    const who = [
      `oid ${token.oid ?? '(none)'}`,
      token.tenantId ? `tenant ${token.tenantId}` : undefined,
      token.appId ? `app ${token.appId}` : undefined,
      token.identityType ? `type ${token.identityType}` : undefined,
      token.upn ? `user ${token.upn}` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    const audienceText = audiences.length === 0 ? '(none)' : audiences.join(', ');
    const expiry = token.expiresOn
      ? `${token.expiresOn} (${formatDuration(token.expiresInSeconds ?? 0)}${issuedAt ? `; issued ${issuedAt}` : ''})`
      : '(unknown)';
    const verdict = audienceOk
      ? '(ok)'
      : requested
        ? "(as requested with --scope; not the public cloud's Redis audience)"
        : '(NOT Azure Redis)';
    this.#line('token', `${who}\naudience ${audienceText} ${verdict}\nexpires ${expiry}`);
    if (!audienceOk) {
      this.#hint(
        `The token's audience is ${audienceText}, but Azure's Redis accepts https://redis.azure.com: request the scope ` +
          "https://redis.azure.com/.default (the library's default).",
      );
    }
    if ((token.expiresInSeconds ?? 1) <= 0)
      this.#hint('The token is already expired: check the clock of this machine.');
    return token;
  }

  #credentialHints(error: unknown): void {
    const text = describeCredentialError(error).join('\n');
    const o = this.#options;
    if (/AADSTS7000215|invalid_client/i.test(text)) {
      this.#hint(
        'invalid_client: the client secret is wrong or expired; create a new secret for the app registration.',
      );
    }
    if (/AADSTS700016|AADSTS90002/i.test(text)) {
      this.#hint('The application or tenant was not found: check --client-id and --tenant-id.');
    }
    if (/AADSTS700027|AADSTS700023/i.test(text)) {
      this.#hint(
        "The certificate is not registered for this app, or the assertion was rejected: upload the certificate's public part to the app registration.",
      );
    }
    if (/AADSTS70021|AADSTS700213|AADSTS700212/i.test(text)) {
      this.#hint(
        'No federated credential matches: the federated identity credential of the identity must name this cluster\'s OIDC issuer and the service account "system:serviceaccount:<namespace>:<name>".',
      );
    }
    if (/az login|Azure CLI not found|'az' is not recognized|az: not found/i.test(text)) {
      this.#hint('Install the Azure CLI and run "az login" (developer machines only).');
    }
    if (o.credential === 'managed-identity' || o.credential === 'default') {
      if (/identity not found|Identity not found|no managed identity|400|unavailable/i.test(text)) {
        this.#hint(
          'Managed identity: check that an identity is assigned to this resource, and for a user-assigned one that ' +
            '--client-id (or --object-id / --resource-id) names an identity assigned to it.',
        );
      }
    }
    if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|network/i.test(text)) {
      this.#hint(
        'The token service could not be reached from here: check outbound access to Microsoft Entra ID (login.microsoftonline.com) or to the managed-identity endpoint.',
      );
    }
  }

  #connectHints(error: string, code: string | undefined): void {
    const o = this.#options;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      this.#hint(
        'The host name does not resolve: check the endpoint (Azure Managed Redis: <name>.<region>.redis.azure.net).',
      );
    else if (code === 'ECONNREFUSED')
      this.#hint(
        `Nothing listens on ${o.host}:${o.port}: Azure Managed Redis listens on 10000, Azure Cache for Redis on 6380 (TLS).`,
      );
    else if (code === 'ETIMEDOUT' || /timeout/i.test(error)) {
      this.#hint(
        'The connection timed out: check firewall rules, private endpoints and network security groups between here and the cache.',
      );
    }
    if (
      /certificate|self[- ]signed|altnames|CERT_|SSL|TLS|wrong version number|EPROTO|ECONNRESET/i.test(
        `${error} ${code ?? ''}`,
      )
    ) {
      if (!o.tls) this.#hint('The server speaks TLS (Azure requires it): drop --no-tls.');
      else {
        this.#hint(
          "TLS failed: when connecting by IP address (or through a tunnel), give --servername <the cache's host name>; " +
            'for a private CA give --ca <file>. A plain-text server (a local emulator) needs --no-tls.',
        );
      }
    }
  }

  #authHints(reply: string, claims: EntraTokenClaims, username: string): void {
    if (/^WRONGPASS/.test(reply)) {
      if (typeof claims.oid === 'string' && username !== claims.oid) {
        this.#hint(
          `The username ${username} is not the token's oid (${claims.oid}): Azure requires the oid; drop --username.`,
        );
      }
      this.#hint(
        `WRONGPASS: the cache refused this identity or token. Check that the identity with object id ${claims.oid ?? '?'} ` +
          'is added to the cache (Authentication > Microsoft Entra ID: add the managed identity, service principal or user; ' +
          'groups are not supported), that Microsoft Entra authentication is enabled on the cache, and that the token is ' +
          'for https://redis.azure.com and not expired.',
      );
    } else if (/^ERR .*AUTH|^ERR Client sent AUTH, but no password is set/i.test(reply)) {
      this.#hint(
        'The server has no authentication configured: it is not an Azure cache with Microsoft Entra ID enabled.',
      );
    } else if (/^NOAUTH/.test(reply)) {
      this.#hint('NOAUTH: the server wants authentication first; this answer to AUTH itself is unexpected.');
    }
  }
}

function formatDuration(seconds: number): string {
  const past = seconds < 0;
  let s = Math.abs(seconds);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const text = h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`;
  return past ? `expired ${text} ago` : `in ${text}`;
}
