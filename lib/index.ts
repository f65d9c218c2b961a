export { createEntraRedis, type EntraRedisOptions } from './create-entra-redis.js';
export type { EntraRedisExtraOptions } from './binding/redis-arguments.js';
export { createEntraCluster, type EntraClusterOptions } from './create-entra-cluster.js';
export {
  createCredentialsProvider,
  EntraCredentialsProvider,
  DEFAULT_REDIS_SCOPE,
  type CommonCredentialsProviderOptions,
  type CredentialsProviderOptions,
  type TokenSubscriber,
} from './identity/credentials-provider.js';
export {
  createManagedIdentityCredentialsProvider,
  type ManagedIdentityCredentialsProviderOptions,
  type ManagedIdentityType,
} from './identity/managed-identity.js';
export {
  createConfidentialCredentialsProvider,
  type ConfidentialCredentialsProviderOptions,
  type AuthorityConfiguration,
  type ConfidentialCertificate,
} from './identity/confidential.js';
export {
  createDefaultAzureCredentialsProvider,
  type DefaultAzureCredentialsProviderOptions,
} from './identity/default-azure.js';
export type {
  CredentialsProviderEvents,
  RefreshFailedEvent,
  ReauthenticatedEvent,
  ReauthenticationFailedEvent,
  ExpiryMismatchEvent,
  TokenInfo,
} from './identity/events.js';
export { EntraToken, type UsernameResolver } from './token/entra-token.js';
export type { EntraTokenClaims } from './token/jwt-claims.js';
export type { TokenManagerOptions, RetryOptions } from './manager/options.js';
export type { GetTokenOptions } from './manager/token-manager.js';
export {
  TOKEN_REQUEST_CHANNEL,
  REAUTH_CHANNEL,
  REAUTH_RECONNECT_CHANNEL,
  type TokenRequestTraceContext,
  type ReauthTraceContext,
  type ReauthReconnectMessage,
} from './tracing.js';
export { defaultIsRetryable } from './manager/retryable.js';
export {
  InvalidTokenError,
  TokenUnavailableError,
  TokenRequestTimeoutError,
  DisposedError,
  IoredisContractError,
} from './errors.js';
