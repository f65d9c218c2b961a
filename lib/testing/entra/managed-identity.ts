// The App Service managed-identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`): checks the request the way
// App Service does and issues a token for the selected managed identity.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Directory, ManagedIdentitySelector } from './directory.js';
import type { TokenIssuer } from './issuer.js';
import { appServiceError, send } from './responses.js';

const APP_SERVICE_API_VERSION = '2019-08-01';
/** Path of the endpoint on its server. */
export const MI_PATH = '/msi/token';

/** What the endpoint needs from the emulator. */
export interface ManagedIdentityEndpoint {
  directory: Directory;
  issuer: TokenIssuer;
  /** Tenant of managed identities. */
  tenantId: string;
  /** Secret expected in `X-IDENTITY-HEADER`. */
  identityHeader: string;
}

/** The selectors present in a query: more than one is an error. */
export function managedIdentitySelectors(query: URLSearchParams): Exclude<ManagedIdentitySelector, undefined>[] {
  return (['client_id', 'object_id', 'mi_res_id'] as const).filter((name) => query.has(name));
}

/** Answers one request to the managed-identity server. */
export function managedIdentityRequest(
  endpoint: ManagedIdentityEndpoint,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  if (url.pathname.replace(/\/$/, '') !== MI_PATH) {
    send(res, 404, appServiceError(404, 'Not Found'));
    return;
  }
  if (req.method !== 'GET') {
    send(res, 405, appServiceError(405, 'Method Not Allowed'));
    return;
  }
  if (req.headers['x-identity-header'] !== endpoint.identityHeader) {
    send(res, 401, appServiceError(401, 'Unauthorized. The X-IDENTITY-HEADER header is missing or does not match.'));
    return;
  }
  const q = url.searchParams;
  if (q.get('api-version') !== APP_SERVICE_API_VERSION) {
    send(res, 400, appServiceError(400, `The api-version "${q.get('api-version') ?? ''}" is not supported.`));
    return;
  }
  const resource = q.get('resource');
  if (!resource) {
    send(res, 400, appServiceError(400, 'The resource parameter is required.'));
    return;
  }
  const selectors = managedIdentitySelectors(q);
  if (selectors.length > 1) {
    send(res, 400, appServiceError(400, 'Only one of client_id, object_id and mi_res_id may be given.'));
    return;
  }
  const identity = endpoint.directory.findManagedIdentity(
    selectors[0],
    selectors[0] ? (q.get(selectors[0]) ?? '') : '',
  );
  if (!identity) {
    send(res, 400, appServiceError(400, 'Unable to load the proper Managed Identity.'));
    return;
  }
  const claims = endpoint.issuer.claims({
    aud: resource,
    oid: identity.oid,
    sub: identity.oid,
    tid: endpoint.tenantId,
    appid: identity.clientId,
    xms_mirid: identity.resourceId,
  });
  const token = endpoint.issuer.issue(claims);
  send(res, 200, {
    access_token: token,
    expires_on: String(claims.exp),
    resource,
    token_type: 'Bearer',
    client_id: identity.clientId,
  });
}
