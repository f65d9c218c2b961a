/** The resource of Azure Managed Redis and Azure Cache for Redis in the public cloud: the `aud` of their tokens. */
export const REDIS_RESOURCE = 'https://redis.azure.com';
/** Application id of Azure Cache for Redis: the audience of v2.0 tokens for its resource URI. */
export const REDIS_APPLICATION_ID = 'acca5fbb-b7e4-4009-81f1-37e38fd66d78';
/** Scope of Azure Managed Redis and Azure Cache for Redis in the public cloud. */
export const DEFAULT_REDIS_SCOPE = `${REDIS_RESOURCE}/.default`;
/** The audiences Azure's Redis accepts in the public cloud. */
export const REDIS_AUDIENCES: readonly string[] = [REDIS_RESOURCE, REDIS_APPLICATION_ID];
