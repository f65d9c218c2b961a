/**
 * One plain ioredis connection, opened without credentials so that AUTH can be sent by hand and its answer reported
 * exactly. RESP2 (no HELLO) so that ioredis 5 and 6 behave alike; no reconnects, no retries, no client info.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { redactError, redactTokens } from '../token/redact-error.js';
import type { CliOptions } from './options.js';

export type Step<T> = { ok: true; value: T; ms: number } | { ok: false; error: string; code?: string; ms: number };

/** The message of an error, token shapes removed (a failed AUTH's ReplyError carries the token in its arguments). */
export function errorMessage(error: unknown): string {
  const redacted = redactError(error);
  return redactTokens(redacted instanceof Error ? redacted.message : String(redacted));
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The TLS options of the connection, or undefined for plain TCP. Throws when the CA file cannot be read. */
export function tlsOptions(options: CliOptions): ConnectionOptions | undefined {
  if (!options.tls) return undefined;
  const tls: ConnectionOptions = {};
  if (options.servername !== undefined) tls.servername = options.servername;
  if (options.ca !== undefined) tls.ca = readFileSync(options.ca, 'utf8');
  return tls;
}

export class RedisCheck {
  readonly redis: Redis;
  #firstError: unknown;

  constructor(options: CliOptions, tls: ConnectionOptions | undefined) {
    const redisOptions: RedisOptions = {
      host: options.host,
      port: options.port,
      ...(tls ? { tls } : {}),
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      reconnectOnError: () => false,
      autoResubscribe: false,
      disableClientInfo: true,
      connectTimeout: options.timeoutMs,
    };
    // ioredis 6 speaks RESP3 by default, whose HELLO a server that requires AUTH refuses; ioredis 5 ignores this.
    Object.assign(redisOptions, { protocol: 2 });
    this.redis = new Redis(redisOptions);
    this.redis.on('error', (error: unknown) => {
      this.#firstError ??= error;
    });
  }

  /** Opens the connection (TCP, then TLS when enabled). */
  async connect(): Promise<Step<void>> {
    const started = Date.now();
    try {
      await this.redis.connect();
      return { ok: true, value: undefined, ms: Date.now() - started };
    } catch (error) {
      const cause = this.#firstError ?? error;
      const code = errorCode(cause);
      return { ok: false, error: errorMessage(cause), ...(code ? { code } : {}), ms: Date.now() - started };
    }
  }

  /** Sends `AUTH username token`; `value` is the server's reply, `error` its error reply. */
  async auth(username: string, token: string): Promise<Step<string>> {
    return await this.#run(() => this.redis.auth(username, token));
  }

  async ping(): Promise<Step<string>> {
    return await this.#run(() => this.redis.ping());
  }

  async exec(args: readonly string[]): Promise<Step<unknown>> {
    const [name, ...rest] = args as [string, ...string[]];
    return await this.#run(() => this.redis.call(name, ...rest));
  }

  async #run<T>(command: () => Promise<T>): Promise<Step<T>> {
    const started = Date.now();
    try {
      const value = await command();
      return { ok: true, value, ms: Date.now() - started };
    } catch (error) {
      return { ok: false, error: errorMessage(error), ms: Date.now() - started };
    }
  }

  close(): void {
    this.redis.disconnect();
  }
}

/** Formats a reply the way redis-cli does: `(nil)`, `(integer) 1`, quoted strings, numbered arrays. */
export function formatReply(reply: unknown, indent = ''): string {
  if (reply === null || reply === undefined) return '(nil)';
  if (typeof reply === 'number' || typeof reply === 'bigint') return `(integer) ${reply}`;
  if (Buffer.isBuffer(reply)) return JSON.stringify(reply.toString('utf8'));
  if (typeof reply === 'string') return JSON.stringify(reply);
  if (Array.isArray(reply)) {
    if (reply.length === 0) return '(empty array)';
    const width = String(reply.length).length;
    return reply
      .map((item, index) => {
        const label = `${String(index + 1).padStart(width)}) `;
        const body = formatReply(item, indent + ' '.repeat(label.length));
        return `${index === 0 ? '' : indent}${label}${body}`;
      })
      .join('\n');
  }
  if (reply instanceof Error) return `(error) ${reply.message}`;
  return JSON.stringify(reply);
}

/** A JSON-safe copy of a reply (Buffers as strings). */
export function jsonReply(reply: unknown): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (Array.isArray(reply)) return reply.map(jsonReply);
  if (typeof reply === 'bigint') return reply.toString();
  return reply;
}
