import {
  DefaultAzureCredential,
  type DefaultAzureCredentialClientIdOptions,
  type DefaultAzureCredentialOptions,
  type DefaultAzureCredentialResourceIdOptions,
} from '@azure/identity';
import {
  createCredentialsProvider,
  type CommonCredentialsProviderOptions,
  type EntraCredentialsProvider,
} from './credentials-provider.js';
import { invalidOption, invalidOptions } from '../option-errors.js';
import { isPlainObject } from '../plain-object.js';
import { libraryCredentialOptions } from './credential-options.js';

/** Options of {@link createDefaultAzureCredentialsProvider}. */
export interface DefaultAzureCredentialsProviderOptions extends CommonCredentialsProviderOptions {
  /**
   * Passed to `DefaultAzureCredential` (e.g. `managedIdentityClientId` or `managedIdentityResourceId` for a
   * user-assigned identity, `tenantId`). Internal HTTP retries are off
   * by default (`retryOptions.maxRetries: 0`) because the token manager retries; set `retryOptions` here to change
   * that.
   */
  credentialOptions?:
    DefaultAzureCredentialOptions | DefaultAzureCredentialClientIdOptions | DefaultAzureCredentialResourceIdOptions;
}

/**
 * A credentials provider over `DefaultAzureCredential`: environment variables, workload identity, managed identity,
 * then developer sign-ins (Azure CLI, Azure Developer CLI, Azure PowerShell), whichever works first.
 * Throws a TypeError naming the option when an option is invalid.
 */
export function createDefaultAzureCredentialsProvider(
  options: DefaultAzureCredentialsProviderOptions = {},
): EntraCredentialsProvider {
  if (!isPlainObject(options)) invalidOptions(options);
  const { credentialOptions, ...common } = options;
  if (credentialOptions !== undefined && !isPlainObject(credentialOptions))
    invalidOption('credentialOptions', 'expected an object', credentialOptions);
  const credential = new DefaultAzureCredential(libraryCredentialOptions(credentialOptions));
  return createCredentialsProvider({ ...common, credential });
}
