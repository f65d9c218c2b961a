// The https OpenID authority: per-tenant discovery, the JWKS keys, and the v2.0 token endpoint for the
// client-credentials grant (client secret, or client assertion signed by a registered certificate).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ASSERTION_TYPE, verifyClientAssertion } from './client-assertion.js';
import { isMultiTenantAlias, type Directory } from './directory.js';
import type { TokenIssuer } from './issuer.js';
import { entraError, send } from './responses.js';

/** Path of a tenant's token endpoint; the first group is the tenant. */
export const TOKEN_PATH = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;

/** What the authority needs from the emulator. */
export interface Authority {
  directory: Directory;
  issuer: TokenIssuer;
  /** https origin of the authority. */
  authorityHost: string;
  /** Lifetime of tokens issued now, seconds (the `expires_in` of the answer). */
  tokenLifetimeSeconds: () => number;
}

/** Answers one request to the authority server: discovery, keys, token endpoint; 404 otherwise. */
export function authorityRequest(
  authority: Authority,
  url: URL,
  body: string,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const discovery = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
  if (discovery && req.method === 'GET') {
    const tenant = decodeURIComponent(discovery[1] ?? '');
    if (!authority.directory.knownTenant(tenant)) {
      send(
        res,
        400,
        entraError(
          authority.authorityHost,
          'invalid_tenant',
          90002,
          `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
          req,
        ),
      );
      return;
    }
    send(res, 200, openIdConfiguration(authority.authorityHost, tenant));
    return;
  }
  const keys = /^\/([^/]+)\/discovery\/v2\.0\/keys$/.exec(url.pathname);
  if (keys && req.method === 'GET') {
    send(res, 200, authority.issuer.jwks());
    return;
  }
  const token = TOKEN_PATH.exec(url.pathname);
  if (token && req.method === 'POST') {
    tokenRequest(authority, decodeURIComponent(token[1] ?? ''), new URLSearchParams(body), req, res);
    return;
  }
  send(res, 404, {
    error: 'not_found',
    error_description: `The emulator does not serve ${req.method} ${url.pathname}`,
  });
}

/** The OpenID discovery document of `tenant`, as Entra's v2.0 endpoint serves it. */
function openIdConfiguration(authorityHost: string, tenant: string): Record<string, unknown> {
  const base = `${authorityHost}/${tenant}`;
  const issuerTenant = isMultiTenantAlias(tenant) ? '{tenantid}' : tenant;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${authorityHost}/${issuerTenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${authorityHost}/oidc/userinfo`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'oid', 'tid'],
    tenant_region_scope: 'EU',
    cloud_instance_name: 'emulated.invalid',
  };
}

/** The token endpoint: the client-credentials grant with a client secret or a client assertion. */
function tokenRequest(
  authority: Authority,
  tenant: string,
  form: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const authorityHost = authority.authorityHost;
  const fail = (status: number, error: string, code: number, description: string): void =>
    send(res, status, entraError(authorityHost, error, code, description, req));
  const grantType = form.get('grant_type');
  if (grantType !== 'client_credentials') {
    fail(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType ?? ''}'.`);
    return;
  }
  const clientId = form.get('client_id') ?? '';
  if (!clientId) {
    fail(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
    return;
  }
  if (!authority.directory.knownTenant(tenant)) {
    fail(
      400,
      'invalid_request',
      90002,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    );
    return;
  }
  const sp = authority.directory.findServicePrincipal(tenant, clientId);
  if (!sp) {
    fail(
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    );
    return;
  }
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  if (secret !== null) {
    if (sp.clientSecret === undefined || secret !== sp.clientSecret) {
      fail(
        401,
        'invalid_client',
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${sp.clientId}'.`,
      );
      return;
    }
  } else if (assertion !== null) {
    if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
      fail(
        400,
        'invalid_request',
        90014,
        "The required field 'client_assertion_type' is missing from the credential. Ensure that you have all the necessary parameters for the login request.",
      );
      return;
    }
    const problem = verifyClientAssertion(sp, assertion, `${authorityHost}/${tenant}/oauth2/v2.0/token`);
    if (problem) {
      fail(problem.status, 'invalid_client', problem.code, problem.description);
      return;
    }
  } else {
    fail(
      401,
      'invalid_client',
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    );
    return;
  }
  const scopeParam = form.get('scope') ?? '';
  const defaults = scopeParam.split(' ').filter((s) => s.endsWith('/.default'));
  if (defaults.length !== 1) {
    fail(
      400,
      'invalid_scope',
      1002012,
      `The provided value for scope ${scopeParam} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
    return;
  }
  const audience = (defaults[0] ?? '').slice(0, -'/.default'.length);
  const claims = authority.issuer.claims({
    aud: audience,
    oid: sp.oid,
    sub: sp.oid,
    tid: sp.tenantId,
    appid: sp.clientId,
    azp: sp.clientId,
  });
  const token = authority.issuer.issue(claims);
  send(res, 200, {
    token_type: 'Bearer',
    expires_in: authority.tokenLifetimeSeconds(),
    ext_expires_in: authority.tokenLifetimeSeconds(),
    access_token: token,
  });
}
