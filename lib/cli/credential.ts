/** Builds the credential the operator chose and asks it for one token, saying which credential answered. */
import { readFileSync } from 'node:fs';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import {
  AzureCliCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from '@azure/identity';
import { redactTokens } from '../token/redact-error.js';
import { pemLacks } from '../identity/pem.js';
import type { CliOptions } from './options.js';

export interface ChosenCredential {
  credential: TokenCredential;
  /** Class name of the credential. */
  name: string;
  /** What was chosen, e.g. "user-assigned, client id 1234". */
  detail: string;
}

/** A usage problem found while building the credential (a missing id, secret or file). */
export class CredentialSetupError extends Error {
  override name = 'CredentialSetupError';
}

export interface TokenOutcome {
  accessToken: AccessToken;
  /** The credential that returned the token: the chosen one, or the member of DefaultAzureCredential's chain. */
  credentialName: string;
}

/** Which managed-identity source MSAL will use in this environment, from the variables it reads. */
export function managedIdentitySource(env: NodeJS.ProcessEnv): string {
  if (env.IDENTITY_ENDPOINT && env.IMDS_ENDPOINT) return 'Azure Arc (IDENTITY_ENDPOINT, IMDS_ENDPOINT)';
  if (env.IDENTITY_ENDPOINT && env.IDENTITY_HEADER && env.IDENTITY_SERVER_THUMBPRINT)
    return 'Service Fabric (IDENTITY_ENDPOINT)';
  if (env.IDENTITY_ENDPOINT && env.IDENTITY_HEADER)
    return 'App Service, Functions or Container Apps (IDENTITY_ENDPOINT)';
  if (env.MSI_ENDPOINT) return 'Cloud Shell (MSI_ENDPOINT)';
  return 'the instance metadata service, IMDS (VMs, scale sets, AKS nodes)';
}

function need(value: string | undefined, what: string): string {
  if (value === undefined || value.length === 0) throw new CredentialSetupError(`${what} is required`);
  return value;
}

/** Builds the chosen credential. Throws {@link CredentialSetupError} when something it needs is missing. */
export function chooseCredential(options: CliOptions, env: NodeJS.ProcessEnv): ChosenCredential {
  const common = {
    ...(options.authorityHost !== undefined ? { authorityHost: options.authorityHost } : {}),
    ...(options.instanceDiscovery ? {} : { disableInstanceDiscovery: true }),
    // One attempt per request: the report shows the first failure as it is.
    retryOptions: { maxRetries: 0 },
  };
  switch (options.credential) {
    case 'managed-identity': {
      const source = managedIdentitySource(env);
      if (options.clientId !== undefined) {
        return {
          credential: new ManagedIdentityCredential({ ...common, clientId: options.clientId }),
          name: 'ManagedIdentityCredential',
          detail: `user-assigned, client id ${options.clientId}; source: ${source}`,
        };
      }
      if (options.objectId !== undefined) {
        return {
          credential: new ManagedIdentityCredential({ ...common, objectId: options.objectId }),
          name: 'ManagedIdentityCredential',
          detail: `user-assigned, object id ${options.objectId}; source: ${source}`,
        };
      }
      if (options.resourceId !== undefined) {
        return {
          credential: new ManagedIdentityCredential({ ...common, resourceId: options.resourceId }),
          name: 'ManagedIdentityCredential',
          detail: `user-assigned, resource id ${options.resourceId}; source: ${source}`,
        };
      }
      return {
        credential: new ManagedIdentityCredential(common),
        name: 'ManagedIdentityCredential',
        detail: `system-assigned; source: ${source}`,
      };
    }
    case 'workload': {
      const clientId = options.clientId ?? env.AZURE_CLIENT_ID;
      const tenantId = options.tenantId ?? env.AZURE_TENANT_ID;
      const tokenFilePath = need(
        env.AZURE_FEDERATED_TOKEN_FILE,
        'AZURE_FEDERATED_TOKEN_FILE (set by the AKS workload identity webhook)',
      );
      return {
        credential: new WorkloadIdentityCredential({
          ...common,
          clientId: need(clientId, '--client-id or AZURE_CLIENT_ID'),
          tenantId: need(tenantId, '--tenant-id or AZURE_TENANT_ID'),
          tokenFilePath,
        }),
        name: 'WorkloadIdentityCredential',
        detail: `client id ${clientId}, tenant ${tenantId}, federated token file ${tokenFilePath}`,
      };
    }
    case 'cli': {
      const tenantId = options.tenantId;
      return {
        credential: new AzureCliCredential({
          ...(tenantId ? { tenantId } : {}),
          processTimeoutInMs: options.timeoutMs,
        }),
        name: 'AzureCliCredential',
        detail: tenantId
          ? `az account get-access-token, tenant ${tenantId}`
          : 'az account get-access-token, the signed-in account',
      };
    }
    case 'secret': {
      const clientId = need(options.clientId ?? env.AZURE_CLIENT_ID, '--client-id or AZURE_CLIENT_ID');
      const tenantId = need(options.tenantId ?? env.AZURE_TENANT_ID, '--tenant-id or AZURE_TENANT_ID');
      const secret = need(
        env.AZURE_CLIENT_SECRET,
        'AZURE_CLIENT_SECRET (the client secret is read from the environment only)',
      );
      return {
        credential: new ClientSecretCredential(tenantId, clientId, secret, common),
        name: 'ClientSecretCredential',
        detail: `service principal, client id ${clientId}, tenant ${tenantId}`,
      };
    }
    case 'certificate': {
      const clientId = need(options.clientId ?? env.AZURE_CLIENT_ID, '--client-id or AZURE_CLIENT_ID');
      const tenantId = need(options.tenantId ?? env.AZURE_TENANT_ID, '--tenant-id or AZURE_TENANT_ID');
      const certificatePath = need(
        options.certificate ?? env.AZURE_CLIENT_CERTIFICATE_PATH,
        '--certificate or AZURE_CLIENT_CERTIFICATE_PATH',
      );
      let pem: string;
      try {
        pem = readFileSync(certificatePath, 'utf8');
      } catch (error) {
        throw new CredentialSetupError(
          `cannot read the certificate file ${certificatePath}: ${(error as Error).message}`,
        );
      }
      if (pemLacks(pem)) {
        throw new CredentialSetupError(
          `${certificatePath} must be a PEM file holding the certificate and its private key (convert a .pfx with: openssl pkcs12 -in cert.pfx -out cert.pem -nodes)`,
        );
      }
      const password = env.AZURE_CLIENT_CERTIFICATE_PASSWORD;
      return {
        credential: new ClientCertificateCredential(
          tenantId,
          clientId,
          { certificatePath, ...(password ? { certificatePassword: password } : {}) },
          common,
        ),
        name: 'ClientCertificateCredential',
        detail: `service principal, client id ${clientId}, tenant ${tenantId}, certificate ${certificatePath}`,
      };
    }
    case 'default':
    default: {
      const clientId = options.clientId;
      return {
        credential: new DefaultAzureCredential({
          ...common,
          ...(clientId ? { managedIdentityClientId: clientId, workloadIdentityClientId: clientId } : {}),
          ...(options.tenantId ? { tenantId: options.tenantId } : {}),
        }),
        name: 'DefaultAzureCredential',
        detail: clientId
          ? `chain, managed/workload identity client id ${clientId}`
          : 'chain: environment, workload identity, managed identity, developer sign-ins',
      };
    }
  }
}

interface ChainInternals {
  getTokenInternal(
    scopes: string[],
    options: { abortSignal?: AbortSignal },
  ): Promise<{ token: AccessToken; successfulCredential: object }>;
}

/**
 * Asks `chosen` for one token, within `timeoutMs`. For DefaultAzureCredential, reports which member of the chain
 * answered (read from the chain when it tells; otherwise the chain's own name).
 */
export async function requestToken(chosen: ChosenCredential, scope: string, timeoutMs: number): Promise<TokenOutcome> {
  const abort = new AbortController();
  const timer = setTimeout(
    () => abort.abort(new Error(`the token request did not complete within ${timeoutMs} ms`)),
    timeoutMs,
  );
  timer.unref();
  const timedOut = new Promise<never>((_, reject) => {
    abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true });
  });
  try {
    const chain = chosen.credential as unknown as Partial<ChainInternals>;
    if (typeof chain.getTokenInternal === 'function') {
      const { token, successfulCredential } = await Promise.race([
        chain.getTokenInternal([scope], { abortSignal: abort.signal }),
        timedOut,
      ]);
      const member = (successfulCredential as object | undefined)?.constructor.name;
      return { accessToken: token, credentialName: member ? `${chosen.name} > ${member}` : chosen.name };
    }
    const token = await Promise.race([chosen.credential.getToken([scope], { abortSignal: abort.signal }), timedOut]);
    if (!token) throw new Error(`${chosen.name} returned no token`);
    return { accessToken: token, credentialName: chosen.name };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The lines that explain why a credential failed: its message, and for a chain the message of every member. Token
 * shapes are removed; nothing here can hold a secret the tool was given (secrets are never put in messages).
 */
export function describeCredentialError(error: unknown): string[] {
  const lines: string[] = [];
  const visit = (err: unknown, depth: number) => {
    if (depth > 4) return;
    const e = err as { name?: unknown; message?: unknown; errors?: unknown; cause?: unknown } | null | undefined;
    const name = typeof e?.name === 'string' ? e.name : 'Error';
    const message = typeof e?.message === 'string' ? e.message : String(err);
    lines.push(
      `${'  '.repeat(depth)}${name}: ${redactTokens(message)
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .join(' ')}`,
    );
    if (Array.isArray(e?.errors)) for (const inner of e.errors) visit(inner, depth + 1);
    else if (e?.cause !== undefined && e.cause !== err) visit(e.cause, depth + 1);
  };
  visit(error, 0);
  return lines;
}
