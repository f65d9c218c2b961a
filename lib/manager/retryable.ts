/**
 * Which token-request failures are worth retrying, and how long the token service asked us to wait.
 *
 * Classified against what @azure/identity 4.5 to 4.14 really throw (see spec/identity/retryable-real-errors.test.ts):
 * - ManagedIdentityCredential wraps every failure in a `CredentialUnavailableError` whose `cause` is an MSAL
 *   `ClientAuthError` (`errorCode: 'network_error'`: refused, reset, hung-up) or `ServerError` (`status`: the HTTP
 *   status of the identity endpoint).
 * - ClientSecretCredential / ClientCertificateCredential throw an `AuthenticationRequiredError` with no status: the
 *   message tells, `"<oauth error>: Error(s): <AADSTS codes> - ... Description: AADSTS..."`, or `"network_error: ..."`
 *   (up to 4.13 with no cause; from 4.14 with MSAL's error as `cause`, which has the status but no headers). While MSAL throttles after a 429/5xx, it replays the error as `"<codes>: AADSTS..."`.
 * - A confidential credential that has not yet fetched the authority's OpenID metadata and cannot (down, 5xx, 4xx
 *   alike) throws `CredentialUnavailableError("endpoints_resolution_error: ...")` with no cause.
 * - DefaultAzureCredential / ChainedTokenCredential throw an `AggregateAuthenticationError` with `errors`.
 * - Other credentials throw `AuthenticationError` (`statusCode`, `errorResponse.error`) or core `RestError`.
 * Retry-After does not survive either wrapper; {@link retryAfterMs} reads it where an error does carry it.
 */

/** Error codes of Node, undici and core-rest-pipeline that mean the network failed, not the request. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'REQUEST_SEND_ERROR',
  'network_error',
]);

/**
 * OAuth / MSAL error codes of transient failures. `endpoints_resolution_error` is MSAL failing to fetch the
 * authority's OpenID metadata: the authority is down or unreachable (or, indistinguishably, the tenant or authority
 * URL is wrong; retrying that only repeats a reported failure).
 */
const TRANSIENT_OAUTH_ERRORS = new Set([
  'server_error',
  'temporarily_unavailable',
  'network_error',
  'endpoints_resolution_error',
]);

/** OAuth error codes that mean the request or the identity is wrong: retrying cannot help. */
const FATAL_OAUTH_ERRORS = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_request',
  'invalid_scope',
  'invalid_grant',
  'invalid_resource',
  'unsupported_grant_type',
  'access_denied',
  'interaction_required',
  'consent_required',
  'login_required',
]);

/**
 * AADSTS codes of transient failures: 50000 (sign-in service error), 90033 (transient error), 90055 (tenant
 * throttling), 50196 (request loop; back off), 90006 (external server, retryable).
 */
const TRANSIENT_AADSTS = new Set(['50000', '90033', '90055', '50196', '90006']);

const NETWORK_MESSAGE =
  /\b(socket hang up|network_error|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)\b/;
const OAUTH_PREFIX = /^([a-z]+(?:_[a-z]+)+):/;
const THROTTLED_REPLAY_PREFIX = /^(\d+(?: \d+)*): /;
const AADSTS_CODE = /AADSTS(\d+)/g;

type Verdict = 'retry' | 'fatal' | undefined;

/** Aggregates inside aggregates (or an abort caused by an aggregate...) are followed this deep. */
const MAX_NESTING = 8;

/**
 * Default `isRetryable`: true for network errors (refused, reset, timed out, DNS), timeouts (`TokenRequestTimeoutError`,
 * an abort whose reason is a timeout), HTTP 408, 429 and 5xx, and Entra's transient errors (`server_error`,
 * `temporarily_unavailable`, AADSTS50000/90033/90055); false for authentication failures (wrong secret, unknown
 * client, `invalid_client`, HTTP 400/401/403), `InvalidTokenError`, plain aborts, a credential that is not
 * available in this environment, and anything unknown. Walks `cause` chains and the `errors` of aggregate errors.
 */
export function defaultIsRetryable(error: unknown): boolean {
  return classify(error) === 'retry';
}

/** Structured facts (types, statuses, codes) anywhere in the chain win over what messages say. */
function classify(error: unknown, depth = 0): Verdict {
  if (depth > MAX_NESTING) return undefined;
  const chain = causeChain(error);
  for (const link of chain) {
    const verdict = classifyStructured(link, depth);
    if (verdict) return verdict;
  }
  for (const link of chain) {
    const verdict = typeof link.message === 'string' ? classifyMessage(link.message) : undefined;
    if (verdict) return verdict;
  }
  // A credential that is unavailable for a reason we cannot see (not configured here) will not become available.
  return chain.some((link) => nameOf(link) === 'CredentialUnavailableError') ? 'fatal' : undefined;
}

/** The error and its causes, outermost first, without cycles. */
function causeChain(error: unknown): Record<string, unknown>[] {
  const chain: Record<string, unknown>[] = [];
  let link = error;
  while (typeof link === 'object' && link !== null && !chain.includes(link as Record<string, unknown>)) {
    chain.push(link as Record<string, unknown>);
    link = (link as { cause?: unknown }).cause;
  }
  return chain;
}

function classifyStructured(error: Record<string, unknown>, depth: number): Verdict {
  switch (nameOf(error)) {
    case 'InvalidTokenError':
    case 'DisposedError':
      return 'fatal';
    case 'TokenRequestTimeoutError':
    case 'TimeoutError':
      return 'retry';
    case 'AbortError':
      // Retry only an abort caused by a timeout; any other abort is the caller giving up.
      return classify(error.cause, depth + 1) === 'retry' || /\btime(d)? ?out\b/i.test(String(error.message))
        ? 'retry'
        : 'fatal';
    default:
      break;
  }
  const errors = error.errors;
  if (Array.isArray(errors) && errors.length > 0) {
    return errors.some((inner) => classify(inner, depth + 1) === 'retry') ? 'retry' : 'fatal';
  }
  const status = statusOf(error);
  if (status !== undefined) {
    if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return 'retry';
    if (status >= 400 && status <= 499) return 'fatal';
  }
  for (const key of ['code', 'errorCode'] as const) {
    const code = error[key];
    if (typeof code !== 'string') continue;
    if (NETWORK_CODES.has(code) || TRANSIENT_OAUTH_ERRORS.has(code)) return 'retry';
    if (FATAL_OAUTH_ERRORS.has(code)) return 'fatal';
  }
  const response = error.errorResponse;
  if (typeof response === 'object' && response !== null) {
    const oauth = (response as { error?: unknown }).error;
    if (typeof oauth === 'string' && TRANSIENT_OAUTH_ERRORS.has(oauth)) return 'retry';
    if (typeof oauth === 'string' && FATAL_OAUTH_ERRORS.has(oauth)) return 'fatal';
  }
  return undefined;
}

/** What MSAL leaves of a token-endpoint error when it is all we have: its message. */
function classifyMessage(message: string): Verdict {
  const oauth = OAUTH_PREFIX.exec(message)?.[1];
  if (oauth && TRANSIENT_OAUTH_ERRORS.has(oauth)) return 'retry';
  if (oauth && FATAL_OAUTH_ERRORS.has(oauth)) return 'fatal';
  const codes = [...message.matchAll(AADSTS_CODE)].map((m) => m[1] ?? '');
  if (codes.length === 0) {
    const replayed = THROTTLED_REPLAY_PREFIX.exec(message)?.[1];
    if (replayed) codes.push(...replayed.split(' '));
  }
  if (codes.length > 0) return codes.some((code) => TRANSIENT_AADSTS.has(code)) ? 'retry' : 'fatal';
  if (NETWORK_MESSAGE.test(message)) return 'retry';
  return undefined;
}

function nameOf(error: object): string | undefined {
  const name = (error as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

function statusOf(error: Record<string, unknown>): number | undefined {
  const response = error.response as { status?: unknown } | undefined;
  for (const candidate of [error.statusCode, error.status, error.httpStatus, response?.status]) {
    if (typeof candidate === 'number' && Number.isInteger(candidate) && candidate >= 100 && candidate <= 599)
      return candidate;
  }
  return undefined;
}

/**
 * Delay the token service asked for with Retry-After, ms, when the error carries it: a `retryAfterMs` or
 * `retryAfterInMs` property, or a `retry-after-ms`, `x-ms-retry-after-ms` or `retry-after` (seconds or HTTP date)
 * header on the error, its `response` or its `responseHeaders`. Walks `cause` chains and aggregate `errors`; the
 * longest delay found wins. A date in the past gives 0. Real @azure/identity 4.13.1 credentials drop the header
 * (see the file comment), so expect undefined from them.
 */
export function retryAfterMs(error: unknown, now = Date.now()): number | undefined {
  const found: number[] = [];
  collectRetryAfter(error, now, found, new Set());
  return found.length > 0 ? Math.max(...found) : undefined;
}

function collectRetryAfter(error: unknown, now: number, found: number[], seen: Set<unknown>): void {
  if (typeof error !== 'object' || error === null || seen.has(error)) return;
  seen.add(error);
  const e = error as Record<string, unknown>;
  for (const key of ['retryAfterMs', 'retryAfterInMs'] as const) {
    const value = e[key];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) found.push(value);
  }
  const response = e.response as { headers?: unknown } | undefined;
  for (const headers of [e.headers, e.responseHeaders, response?.headers]) {
    const ms = fromHeaders(headers, now);
    if (ms !== undefined) found.push(ms);
  }
  collectRetryAfter(e.cause, now, found, seen);
  if (Array.isArray(e.errors)) for (const inner of e.errors) collectRetryAfter(inner, now, found, seen);
}

function fromHeaders(headers: unknown, now: number): number | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const get = (name: string): string | undefined => {
    const h = headers as { get?: unknown } & Record<string, unknown>;
    if (typeof h.get === 'function') {
      const value = (h.get as (n: string) => unknown).call(headers, name);
      if (typeof value === 'string') return value;
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a header value of another type, as String() shows it
      if (value !== undefined && value !== null) return String(value);
    }
    for (const [key, value] of Object.entries(h)) {
      if (key.toLowerCase() !== name) continue;
      if (typeof value === 'string' || typeof value === 'number') return String(value);
      if (Array.isArray(value) && value.length > 0) return String(value[0]);
    }
    return undefined;
  };
  for (const name of ['retry-after-ms', 'x-ms-retry-after-ms']) {
    const ms = parseNumber(get(name));
    if (ms !== undefined) return ms;
  }
  const value = get('retry-after');
  if (value === undefined) return undefined;
  const seconds = parseNumber(value);
  if (seconds !== undefined) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseNumber(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined;
  return Number(value);
}
