import { ManagedIdentityCredential, type TokenCredentialOptions } from '@azure/identity';
import {
  createCredentialsProvider,
  type CommonCredentialsProviderOptions,
  type EntraCredentialsProvider,
} from './credentials-provider.js';
import { invalidOption, invalidOptions } from '../option-errors.js';
import { libraryCredentialOptions } from './credential-options.js';

/** Which managed identity of the Azure resource to use. */
export type ManagedIdentityType = 'system-assigned' | 'user-assigned';

/** Options of {@link createManagedIdentityCredentialsProvider}. */
export interface ManagedIdentityCredentialsProviderOptions extends CommonCredentialsProviderOptions {
  /**
   * `'system-assigned'` (the default when no id is given) or `'user-assigned'` (the default when one id is given),
   * which needs exactly one of `clientId`, `objectId` or `resourceId`.
   */
  managedIdentityType?: ManagedIdentityType;
  /** Client (application) id of a user-assigned identity. */
  clientId?: string;
  /** Object (principal) id of a user-assigned identity. */
  objectId?: string;
  /** ARM resource id of a user-assigned identity (`/subscriptions/.../userAssignedIdentities/<name>`). */
  resourceId?: string;
  /**
   * Passed to `ManagedIdentityCredential`. Internal HTTP retries are off by default (`retryOptions.maxRetries: 0`)
   * because the token manager retries; set `retryOptions` here to change that. MSAL keeps ONE managed-identity HTTP
   * client per process (that of the first ManagedIdentityCredential to fetch a token), so these options only take
   * effect if this provider's credential is the first.
   */
  credentialOptions?: TokenCredentialOptions;
}

const ID_OPTIONS = ['clientId', 'objectId', 'resourceId'] as const;

/**
 * A credentials provider for a managed identity (App Service, Functions, VMs, AKS, Container Apps, Arc...):
 * system-assigned by default, or a user-assigned identity selected by client id, object id or resource id.
 * Throws a TypeError naming the option when an option is invalid.
 */
export function createManagedIdentityCredentialsProvider(
  options: ManagedIdentityCredentialsProviderOptions = {},
): EntraCredentialsProvider {
  const raw: unknown = options; // checked: callers from JavaScript may pass anything
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    invalidOptions(options);
  }
  const { managedIdentityType, clientId, objectId, resourceId, credentialOptions, ...common } = options;
  const given = ID_OPTIONS.filter((name) => options[name] !== undefined);
  for (const name of given) {
    const value = options[name];
    if (typeof value !== 'string' || value.trim().length === 0)
      invalidOption(name, 'expected a non-empty string', value);
  }
  if (resourceId !== undefined && !/^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\//i.test(resourceId)) {
    invalidOption(
      'resourceId',
      'expected an ARM resource id like "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"',
      resourceId,
    );
  }
  const type: string = managedIdentityType ?? (given.length > 0 ? 'user-assigned' : 'system-assigned');
  if (type === 'system-assigned') {
    if (given.length > 0) {
      throw new TypeError(
        `Invalid option "managedIdentityType": "system-assigned" takes no ${quoteList(given)}; use "user-assigned" to select that identity`,
      );
    }
  } else if (type === 'user-assigned') {
    if (given.length !== 1) {
      throw new TypeError(
        `Invalid option "managedIdentityType": "user-assigned" needs exactly one of "clientId", "objectId" or "resourceId", got ${given.length === 0 ? 'none' : quoteList(given)}`,
      );
    }
  } else {
    invalidOption('managedIdentityType', 'expected "system-assigned" or "user-assigned"', managedIdentityType);
  }
  const rawCredentialOptions: unknown = credentialOptions;
  if (
    rawCredentialOptions !== undefined &&
    (typeof rawCredentialOptions !== 'object' || rawCredentialOptions === null || Array.isArray(rawCredentialOptions))
  ) {
    invalidOption('credentialOptions', 'expected an object', credentialOptions);
  }
  const selector =
    clientId !== undefined
      ? { clientId }
      : objectId !== undefined
        ? { objectId }
        : resourceId !== undefined
          ? { resourceId }
          : {};
  const credential = new ManagedIdentityCredential({ ...libraryCredentialOptions(credentialOptions), ...selector });
  return createCredentialsProvider({ ...common, credential });
}

function quoteList(names: readonly string[]): string {
  return names.map((name) => `"${name}"`).join(' and ');
}
