import { statSync } from 'node:fs';
import type { TokenCredential } from '@azure/core-auth';
import {
  ClientCertificateCredential,
  ClientSecretCredential,
  type ClientCertificateCredentialPEMConfiguration,
  type ClientSecretCredentialOptions,
} from '@azure/identity';
import {
  createCredentialsProvider,
  type CommonCredentialsProviderOptions,
  type EntraCredentialsProvider,
} from './credentials-provider.js';
import { invalidOption, invalidOptions } from '../option-errors.js';
import { isPlainObject } from '../plain-object.js';
import { libraryCredentialOptions } from './credential-options.js';
import { pemLacks } from './pem.js';

/**
 * Where the service principal signs in; names follow go-redis-entraid's `AuthorityConfiguration`.
 * - `default`: the public cloud (`https://login.microsoftonline.com`, or `credentialOptions.authorityHost`) with
 *   the tenant id.
 * - `multi-tenant`: the tenant id (required: unlike go-redis-entraid, no `common` fallback, because MSAL refuses
 *   client-credential tokens at `common`); tokens may also be requested for any other tenant
 *   (`additionallyAllowedTenants: ['*']`).
 * - `custom`: the https `authority` URL, e.g. a sovereign cloud or a private authority. A tenant in its path
 *   (`https://login.microsoftonline.us/<tenant>`) is used when no tenant id is given.
 */
export interface AuthorityConfiguration {
  authorityType: 'default' | 'multi-tenant' | 'custom';
  /** Tenant id (or domain). Overrides the top-level `tenantId`. */
  tenantId?: string;
  /** Authority URL; required for, and only for, `custom`. */
  authority?: string;
}

/**
 * A client certificate: a PEM string holding the certificate and its private key, or the same as
 * `{ certificate }`, or a PEM file as `{ certificatePath }`. `certificatePassword` decrypts an encrypted key.
 */
export type ConfidentialCertificate =
  | string
  | { certificate: string; certificatePassword?: string }
  | { certificatePath: string; certificatePassword?: string };

/** Options of {@link createConfidentialCredentialsProvider}. Give exactly one of `clientSecret` and `certificate`. */
export interface ConfidentialCredentialsProviderOptions extends CommonCredentialsProviderOptions {
  /** Client (application) id of the app registration. */
  clientId: string;
  /** Tenant id; required unless `authority.tenantId` (or a tenant in a custom authority URL) provides it. */
  tenantId?: string;
  /** Client secret. Never appears in errors or logs of this library. */
  clientSecret?: string;
  /** Client certificate. */
  certificate?: ConfidentialCertificate;
  /** Send the certificate chain (x5c) for subject-name/issuer authentication. Certificates only. */
  sendCertificateChain?: boolean;
  /** Where to sign in. Default `{ authorityType: 'default' }`. */
  authority?: AuthorityConfiguration;
  /**
   * Passed to the credential. Internal HTTP retries are off by default (`retryOptions.maxRetries: 0`) because the
   * token manager retries; set `retryOptions` here to change that.
   */
  credentialOptions?: ClientSecretCredentialOptions;
}

const TENANT_PATTERN = /^[0-9a-zA-Z.-]+$/;

/**
 * A credentials provider for a service principal (app registration) that signs in with a client secret or a
 * client certificate. Throws a TypeError naming the option when an option is invalid; secrets are never quoted.
 */
export function createConfidentialCredentialsProvider(
  options: ConfidentialCredentialsProviderOptions,
): EntraCredentialsProvider {
  if (!isPlainObject(options)) invalidOptions(options);
  const {
    clientId,
    tenantId,
    clientSecret,
    certificate,
    sendCertificateChain,
    authority,
    credentialOptions,
    ...common
  } = options;
  if (typeof clientId !== 'string' || clientId.trim().length === 0)
    invalidOption('clientId', 'expected a non-empty string', clientId);
  if (credentialOptions !== undefined && !isPlainObject(credentialOptions))
    invalidOption('credentialOptions', 'expected an object', credentialOptions);
  const target = resolveAuthority(authority, tenantId, credentialOptions);
  const merged: ClientSecretCredentialOptions = { ...libraryCredentialOptions(credentialOptions), ...target.options };
  let credential: TokenCredential;
  if (clientSecret !== undefined && certificate !== undefined) {
    throw new TypeError('Invalid options "clientSecret" and "certificate": give one of them, not both');
  } else if (certificate !== undefined) {
    const configuration = resolveCertificate(certificate);
    if (sendCertificateChain !== undefined && typeof sendCertificateChain !== 'boolean') {
      invalidOption('sendCertificateChain', 'expected a boolean', sendCertificateChain);
    }
    // The cast picks one overload; the credential accepts every member of the union at runtime.
    credential = new ClientCertificateCredential(target.tenantId, clientId, configuration as { certificate: string }, {
      ...merged,
      sendCertificateChain,
    });
  } else {
    if (typeof clientSecret !== 'string' || clientSecret.length === 0) {
      invalidOption('clientSecret', 'expected a non-empty string (or give "certificate" instead)', clientSecret, true);
    }
    if (sendCertificateChain !== undefined) {
      invalidOption(
        'sendCertificateChain',
        'applies to "certificate" only, not to "clientSecret"',
        sendCertificateChain,
      );
    }
    credential = new ClientSecretCredential(target.tenantId, clientId, clientSecret, merged);
  }
  return createCredentialsProvider({ ...common, credential });
}

/** Tenant and authority options of the credential, from `authority` (go-redis-entraid semantics). */
function resolveAuthority(
  authority: AuthorityConfiguration | undefined,
  topLevelTenantId: string | undefined,
  credentialOptions: ClientSecretCredentialOptions | undefined,
): { tenantId: string; options: ClientSecretCredentialOptions } {
  if (authority !== undefined && !isPlainObject(authority)) invalidOption('authority', 'expected an object', authority);
  const type = authority?.authorityType ?? 'default';
  const tenantName = authority?.tenantId !== undefined ? 'authority.tenantId' : 'tenantId';
  const givenTenant = authority?.tenantId ?? topLevelTenantId;
  if (givenTenant !== undefined && (typeof givenTenant !== 'string' || !TENANT_PATTERN.test(givenTenant))) {
    invalidOption(tenantName, 'expected a tenant id or domain (letters, digits, "-" and "." only)', givenTenant);
  }
  if (type !== 'custom' && authority?.authority !== undefined) {
    invalidOption(
      'authority.authority',
      `applies to authorityType "custom" only, not to "${type}"`,
      authority.authority,
    );
  }
  switch (type) {
    case 'default':
      if (givenTenant === undefined)
        invalidOption(
          'tenantId',
          'expected a tenant id (or authority.tenantId) for authorityType "default"',
          givenTenant,
        );
      return { tenantId: givenTenant, options: {} };
    case 'multi-tenant':
      // go-redis-entraid falls back to "common"; MSAL refuses client-credential tokens there (missing_tenant_id_error).
      if (givenTenant === undefined || ['common', 'organizations', 'consumers'].includes(givenTenant.toLowerCase())) {
        invalidOption(
          tenantName,
          'expected a tenant id for authorityType "multi-tenant" (a service principal cannot sign in at "common" or "organizations")',
          givenTenant,
        );
      }
      return {
        tenantId: givenTenant,
        options: { additionallyAllowedTenants: [...(credentialOptions?.additionallyAllowedTenants ?? []), '*'] },
      };
    case 'custom': {
      const url = parseAuthorityUrl(authority?.authority);
      if (credentialOptions?.authorityHost !== undefined) {
        invalidOption(
          'credentialOptions.authorityHost',
          'must not be set with authorityType "custom"; give the authority once, in authority.authority',
          credentialOptions.authorityHost,
        );
      }
      const segments = url.pathname.split('/').filter(Boolean);
      const tenant = givenTenant ?? segments.at(-1);
      if (tenant === undefined || !TENANT_PATTERN.test(tenant)) {
        invalidOption(
          'tenantId',
          'expected a tenant id (or authority.tenantId, or a tenant in the path of authority.authority) for authorityType "custom"',
          givenTenant,
        );
      }
      // @azure/identity appends the tenant to the host: keep it out of the host.
      if (segments.at(-1) === tenant) segments.pop();
      return { tenantId: tenant, options: { authorityHost: [url.origin, ...segments].join('/') } };
    }
    default:
      return invalidOption('authority.authorityType', 'expected "default", "multi-tenant" or "custom"', type);
  }
}

function parseAuthorityUrl(value: unknown): { origin: string; pathname: string } {
  if (typeof value !== 'string' || value.length === 0) {
    invalidOption('authority.authority', 'expected the https URL of the authority for authorityType "custom"', value);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return invalidOption('authority.authority', 'expected an absolute https URL', value);
  }
  if (url.protocol !== 'https:') invalidOption('authority.authority', 'expected an https URL', value);
  if (url.search || url.hash || url.username || url.password) {
    invalidOption(
      'authority.authority',
      'expected a URL without credentials, query or fragment',
      `${url.origin}${url.pathname}`,
    );
  }
  return { origin: url.origin, pathname: url.pathname };
}

/** The PEM configuration ClientCertificateCredential takes. Never quotes certificate or key material. */
function resolveCertificate(certificate: unknown): ClientCertificateCredentialPEMConfiguration {
  if (typeof certificate === 'string') return { certificate: checkPem('certificate', certificate) };
  if (!isPlainObject(certificate))
    invalidOption('certificate', 'expected a PEM string, { certificate } or { certificatePath }', certificate, true);
  const { certificate: pem, certificatePath, certificatePassword } = certificate;
  if (certificatePassword !== undefined && typeof certificatePassword !== 'string') {
    invalidOption('certificate.certificatePassword', 'expected a string', certificatePassword, true);
  }
  const password = certificatePassword === undefined ? {} : { certificatePassword: certificatePassword };
  if (pem !== undefined && certificatePath !== undefined) {
    throw new TypeError('Invalid option "certificate": give "certificate" or "certificatePath", not both');
  }
  if (pem !== undefined) return { certificate: checkPem('certificate.certificate', pem), ...password };
  if (typeof certificatePath !== 'string' || certificatePath.length === 0) {
    invalidOption('certificate', 'expected a PEM string, { certificate } or { certificatePath }', certificate, true);
  }
  let isFile = false;
  try {
    isFile = statSync(certificatePath).isFile();
  } catch {
    // reported below
  }
  if (!isFile)
    invalidOption('certificate.certificatePath', 'expected the path of a readable PEM file', certificatePath);
  return { certificatePath, ...password };
}

function checkPem(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) invalidOption(name, 'expected a PEM string', value, true);
  const lacks = pemLacks(value);
  if (lacks) {
    throw new TypeError(
      `Invalid option "${name}": expected PEM text holding both a certificate and its private key, got text that lacks ${lacks}`,
    );
  }
  return value;
}
