// HTTP responses in the shapes Azure uses: JSON bodies, the App Service identity endpoint's error body, and Entra's
// AADSTS error body; and reading a request body.
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';

/** Sends `body` as JSON, unless a response was already sent or the socket is gone. */
export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store, no-cache',
    'x-ms-request-id': randomUUID(),
    ...headers,
  });
  res.end(text);
}

/** The whole request body, as UTF-8. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The reason phrase of a status, as the App Service identity endpoint words it. */
export function statusMessage(status: number): string {
  return status === 429 ? 'Too many requests. Please retry later.' : (http.STATUS_CODES[status] ?? `Status ${status}`);
}

/** The error body of the App Service identity endpoint: `{"statusCode":400,"message":"...","correlationId":"..."}`. */
export function appServiceError(status: number, message: string): Record<string, unknown> {
  return { statusCode: status, message, correlationId: randomUUID() };
}

/** Entra's error body: an `AADSTS<code>` description with trace and correlation ids, as the token endpoint sends it. */
export function entraError(
  authorityHost: string,
  error: string,
  code: number,
  description: string,
  req: IncomingMessage,
): Record<string, unknown> {
  const traceId = randomUUID();
  const header = req.headers['client-request-id'];
  const correlationId = typeof header === 'string' && header ? header : randomUUID();
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  return {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `${authorityHost}/error?code=${code}`,
  };
}

/** The Entra error body for a status injected by a `status` fault on the authority. */
export function entraStatusError(authorityHost: string, status: number, req: IncomingMessage): Record<string, unknown> {
  if (status === 429)
    return entraError(
      authorityHost,
      'temporarily_unavailable',
      90055,
      'TenantThrottlingError - There are too many incoming requests. Please try again later.',
      req,
    );
  if (status === 503 || status === 408 || status === 504)
    return entraError(
      authorityHost,
      'temporarily_unavailable',
      90033,
      'A transient error has occurred. Please try again.',
      req,
    );
  if (status === 401)
    return entraError(authorityHost, 'invalid_client', 7000215, 'Invalid client secret provided.', req);
  if (status >= 400 && status < 500)
    return entraError(authorityHost, 'invalid_request', 90014, `The request was rejected with status ${status}.`, req);
  return entraError(
    authorityHost,
    'server_error',
    50000,
    'There was an error issuing a token or an issue with our sign-in service.',
    req,
  );
}
